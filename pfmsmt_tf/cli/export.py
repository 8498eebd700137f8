"""pfmsmt export: one SavedModel per scenario, for TF Serving, from a run's latest checkpoint.

Writes OUTPUT/<scenario>/<version>/ (the layout TF Serving's --model_base_path expects). The serving_default
signature takes the raw feature columns (categorical values as strings, numericals as floats) and returns
one probability per task; OUTPUT/<scenario>/<version>/pfmsmt_export.json lists the input names.
"""

from __future__ import annotations

import os
import sys

from absl import flags

from pfmsmt_tf.cli import common

flags.DEFINE_string('run', '', 'The run directory (written by pfmsmt train).')
flags.DEFINE_string('output', '', 'Export folder: one model folder per scenario.')
flags.DEFINE_list('scenarios', [], 'Scenarios to export (default: all).')
flags.DEFINE_integer('version', 1, 'Model version folder (TF Serving serves the highest).')
flags.DEFINE_boolean('overwrite', False, 'Replace an existing version folder.')
FLAGS = flags.FLAGS


def main() -> None:
  from federated import restore, runtime  # pylint: disable=g-import-not-at-top
  from pfmsmt_tf import serving  # pylint: disable=g-import-not-at-top
  if not FLAGS.run or not FLAGS.output:
    raise ValueError('--run and --output are required')
  with runtime.local_runtime():
    finished = restore.FinishedRun(FLAGS.run)
    names = FLAGS.scenarios or finished.spec.scenario_names
    targets = []
    for name in names:
      path = os.path.join(os.path.abspath(FLAGS.output), finished.spec.scenario(name).directory, str(FLAGS.version))
      if os.path.exists(path) and not FLAGS.overwrite:
        raise FileExistsError(f'{path} exists; pass --overwrite or another --version')
      targets.append((name, path))
    for name, path in targets:
      serving.export_saved_model(
          finished.scenario_model(name), finished.spec, finished.data, name, path,
          provenance={'run': finished.run.root, 'algorithm': finished.algorithm, 'round': finished.round})
      print(f'{name}: {path}')


def run(argv) -> None:
  common.run_app(main, argv, sys.modules[__name__])
