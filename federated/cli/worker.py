"""pfmsmt worker: serves TFF computations for the scenarios whose data lies under --data_root.

Run one per silo; the coordinator's `pfmsmt train --workers=host:port,...` sends each scenario's client
work to the worker that holds it. --data_root is a prepared folder (or a copy of only this silo's
partitions, `<split>/<scenario>/`); --state_root is where this silo's local parameters are kept.
The service speaks plain gRPC: keep the port inside a private network or a TLS tunnel (see the README).
"""

from __future__ import annotations

import sys

from absl import flags

from federated.cli import common

flags.DEFINE_integer('port', 8000, 'Port to serve on.')
flags.DEFINE_string('data_root', '', 'This silo\'s prepared data folder.')
flags.DEFINE_string('state_root', '', 'Where this silo\'s local parameters are kept (default: --data_root/../state).')
flags.DEFINE_boolean('verify_data', True, 'Check the held shards\' SHA-256 against summary.json at start-up '
                     '(sizes are always checked).')
FLAGS = flags.FLAGS


def main() -> None:
  import os  # pylint: disable=g-import-not-at-top
  from federated import worker  # pylint: disable=g-import-not-at-top
  if not FLAGS.data_root:
    raise ValueError('--data_root is required')
  state_root = FLAGS.state_root or os.path.join(os.path.dirname(os.path.abspath(FLAGS.data_root)), 'state')
  sys.exit(worker.serve(FLAGS.port, FLAGS.data_root, state_root, verify_data=FLAGS.verify_data))


def run(argv) -> None:
  common.run_app(main, argv, sys.modules[__name__])
