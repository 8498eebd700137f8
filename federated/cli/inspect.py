"""pfmsmt inspect: what a run's aggregator did, from RUN/aggregation.jsonl.

Prints, per personalized group, the mean cosine between the clients' updates before and after conflict
coordination, each scenario's attention weight on itself, how much the mix tells the peers apart (peer
contrast, `telemetry.peer_contrast`), and PCGrad's projections (or CAGrad's weights) at
a few rounds; writes attention_<group>.png (heatmaps at those rounds) and conflicts.png (per round).
"""

from __future__ import annotations

import os
import sys

from absl import flags

from federated.cli import common

flags.DEFINE_string('run', '', 'The run directory (written by pfmsmt train).')
flags.DEFINE_list('rounds', [], 'Rounds to show (default: 1, 5, 10 and the last).')
flags.DEFINE_string('output', '', 'Folder for the PNGs (default: the run directory).')
FLAGS = flags.FLAGS


def main() -> None:
  from federated import telemetry  # pylint: disable=g-import-not-at-top
  if not FLAGS.run:
    raise ValueError('--run (a run directory) is required')
  path = os.path.join(FLAGS.run, 'aggregation.jsonl')
  if not os.path.exists(path):
    raise FileNotFoundError(f'{path} not found: {FLAGS.run} is not a federated run directory with telemetry '
                            '(the centralized reference has no aggregator)')
  records = telemetry.read(path)
  rounds = [int(r) for r in FLAGS.rounds]
  print(telemetry.summary(records, rounds))
  for p in telemetry.plot(records, FLAGS.output or FLAGS.run, rounds):
    print(f'wrote {p}')


def run(argv) -> None:
  common.run_app(main, argv, sys.modules[__name__])
