"""pfmsmt compare: every algorithm x seed under the same settings, then report.md/.csv and two plots.

A killed comparison picks up where it stopped when run again with the same --output: finished runs are
reused, a killed run is resumed from its checkpoint.
"""

from __future__ import annotations

import shlex
import sys

from absl import flags

from federated import config as fed_config
from pfmsmt_tf import config as model_config
from data_pipelines import flagconfig
from federated.cli import common
from federated.config import RunSetup

flagconfig.define_flags(fed_config.CompareConfig, __name__)
flagconfig.define_flags(fed_config.TrainConfig, __name__, exclude=('algorithm', 'output', 'seed', 'resume',
                                                                     'overwrite'))
flagconfig.define_flags(fed_config.ClientConfig, __name__)
flagconfig.define_flags(fed_config.AggregationConfig, __name__)
flagconfig.define_flags(model_config.ModelConfig, __name__, exclude=('seed',))
FLAGS = flags.FLAGS
_COMMAND = ['pfmsmt compare']  # the command line, for the report


def main() -> None:
  from federated import comparison, runtime  # pylint: disable=g-import-not-at-top
  cfg = flagconfig.from_flags(fed_config.CompareConfig, FLAGS)
  base = RunSetup(
      cfg=flagconfig.from_flags(fed_config.TrainConfig, FLAGS, algorithm='pfmsmtrec', output=cfg.output, seed=0,
                                resume=False, overwrite=False),
      model_cfg=flagconfig.from_flags(model_config.ModelConfig, FLAGS, seed=None),
      client_cfg=flagconfig.from_flags(fed_config.ClientConfig, FLAGS),
      aggregation_cfg=flagconfig.from_flags(fed_config.AggregationConfig, FLAGS))
  with runtime.local_runtime():
    results = comparison.run_all(cfg, base)
  comparison.write_report(results, cfg.output, _COMMAND[0], reference=cfg.reference or None)
  print(open(f'{cfg.output}/report.md').read())


def run(argv) -> None:
  _COMMAND[0] = ' '.join([argv[0]] + [shlex.quote(a) for a in argv[1:]])
  common.run_app(main, argv, sys.modules[__name__])
