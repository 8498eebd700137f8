"""pfmsmt evaluate: re-evaluates a run's models, on its own test split or on other prepared data.

A finished run's models are the ones selected on the valid split (metrics.json `selected_round`); a run
that has not finished is evaluated at its latest checkpoint.

Other data must share the run's encoding: prepare it with `pfmsmt prepare --encoding_from=<the run's data>`.
Each scenario of that data is evaluated with the run's model of the same scenario.
"""

from __future__ import annotations

import json
import sys

from absl import flags

from federated.cli import common
from federated import reporting

flags.DEFINE_string('run', '', 'The run directory (written by pfmsmt train).')
flags.DEFINE_string('data', '', 'A prepared data folder (default: the run\'s own data).')
flags.DEFINE_string('split', 'test', 'The split to evaluate on.')
flags.DEFINE_string('output', '', 'Also write the metrics as JSON to this file.')
flags.DEFINE_boolean('verify_data', True, 'Check the split\'s shards\' SHA-256 against summary.json first '
                     '(sizes are always checked).')
FLAGS = flags.FLAGS


def main() -> None:
  from federated import api  # pylint: disable=g-import-not-at-top
  if not FLAGS.run:
    raise ValueError('--run (a run directory) is required')
  result = api.evaluate(FLAGS.run, FLAGS.data or None, FLAGS.split, FLAGS.verify_data).metrics
  print(reporting.format_results(result))
  if FLAGS.output:
    with open(FLAGS.output, 'w') as f:
      json.dump(result, f, indent=1)


def run(argv) -> None:
  common.run_app(main, argv, sys.modules[__name__])
