"""pfmsmt worker: serves TFF computations for the scenarios whose data lies under --data_root.

Run one per silo; the coordinator's `pfmsmt train --workers=host:port,...` sends each scenario's client
work to the worker that holds it. --data_root is a prepared folder (or a copy of only this silo's
partitions, `<split>/<scenario>/`); --state_root is where this silo's local parameters are kept.
The port is a mutual-TLS endpoint (--tls_cert, --tls_key, --tls_client_ca; `pfmsmt tls init` makes them);
TFF's executor behind it runs in a private network namespace, reachable from no host (see the README).
"""

from __future__ import annotations

import sys

from absl import flags

from data_pipelines import flagconfig
from federated import config as fed_config
from federated.cli import common

flagconfig.define_flags(fed_config.WorkerConfig, __name__)
FLAGS = flags.FLAGS


def main() -> None:
  from federated import worker  # pylint: disable=g-import-not-at-top
  sys.exit(worker.serve(flagconfig.from_flags(fed_config.WorkerConfig, FLAGS)))


def run(argv) -> None:
  common.run_app(main, argv, sys.modules[__name__])
