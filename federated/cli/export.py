"""pfmsmt export: one SavedModel per scenario, for TF Serving, from a run's latest checkpoint.

Writes OUTPUT/<scenario>/<version>/ (the layout TF Serving's --model_base_path expects). The serving_default
signature takes the raw feature columns (categorical values as strings, numericals as floats) and returns
one probability per task; OUTPUT/<scenario>/<version>/pfmsmt_export.json lists the input names.
"""

from __future__ import annotations

import sys

from absl import flags

from federated.cli import common

flags.DEFINE_string('run', '', 'The run directory (written by pfmsmt train).')
flags.DEFINE_string('output', '', 'Export folder: one model folder per scenario.')
flags.DEFINE_list('scenarios', [], 'Scenarios to export (default: all).')
flags.DEFINE_integer('version', 1, 'Model version folder (TF Serving serves the highest).')
flags.DEFINE_boolean('overwrite', False, 'Replace an existing version folder.')
FLAGS = flags.FLAGS


def main() -> None:
  from federated import api  # pylint: disable=g-import-not-at-top
  if not FLAGS.run or not FLAGS.output:
    raise ValueError('--run and --output are required')
  exported = api.export(FLAGS.run, FLAGS.output, FLAGS.scenarios, FLAGS.version, FLAGS.overwrite)
  for name, path in exported.items():
    print(f'{name}: {path}')


def run(argv) -> None:
  common.run_app(main, argv, sys.modules[__name__])
