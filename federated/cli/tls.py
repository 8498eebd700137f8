"""pfmsmt tls init: a small CA and one certificate per party, for mutual TLS between coordinator and workers.

  pfmsmt tls init --output=certs --names=coordinator,silo1,silo2 [--hosts=silo1.example.com,10.0.0.7]

Writes certs/ca.pem (every party's trust anchor), certs/ca.key (keep it offline), and NAME.pem, NAME.key
per name. Give each silo its NAME.pem, NAME.key and ca.pem for `pfmsmt worker --tls_cert --tls_key
--tls_client_ca`; the coordinator its own three for `pfmsmt train --tls_cert --tls_key --tls_ca`.
"""

from __future__ import annotations

import sys

from absl import flags

from data_pipelines import flagconfig
from federated import config as fed_config
from federated.cli import common

flagconfig.define_flags(fed_config.TlsInitConfig, __name__)
ACTIONS = ('init',)


def main() -> None:
  from federated import tls  # pylint: disable=g-import-not-at-top
  cfg = flagconfig.from_flags(fed_config.TlsInitConfig, flags.FLAGS)
  written = tls.init(cfg.output, cfg.names, cfg.hosts, cfg.days, cfg.overwrite)
  for name, path in written.items():
    print(f'{name:<14} {path}' + ('  (and ca.key: keep it offline)' if name == tls.CA else f'  and {name}.key'))


def run(argv) -> None:
  if len(argv) < 2 or argv[1] not in ACTIONS + ('-h', '--help', '--helpshort'):
    print(f'usage: pfmsmt tls init --output=DIR --names=coordinator,silo1,... (got {argv[1:2] or "no action"})',
          file=sys.stderr)
    sys.exit(2)
  if argv[1] in ACTIONS:
    argv = [f'{argv[0]} {argv[1]}'] + argv[2:]
  common.run_app(main, argv, sys.modules[__name__])
