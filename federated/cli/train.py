"""pfmsmt train: trains an algorithm federatedly (or centralized) and writes a run directory.

See federated/training.py for the run directory contract. --resume continues a killed run from its last
checkpoint; with the same settings the final metrics equal those of an uninterrupted run.
"""

from __future__ import annotations

import sys

from absl import flags

from federated import config as fed_config
from federated import reporting
from pfmsmt_tf import config as model_config
from data_pipelines import flagconfig
from federated.cli import common
from federated.config import RunSetup

flagconfig.define_flags(fed_config.TrainConfig, __name__)
flagconfig.define_flags(fed_config.ClientConfig, __name__)
flagconfig.define_flags(fed_config.AggregationConfig, __name__)
flagconfig.define_flags(model_config.ModelConfig, __name__, exclude=('seed',))  # the run's --seed seeds the model
FLAGS = flags.FLAGS


def main() -> None:
  from federated import training  # pylint: disable=g-import-not-at-top
  setup = RunSetup(
      cfg=flagconfig.from_flags(fed_config.TrainConfig, FLAGS),
      model_cfg=flagconfig.from_flags(model_config.ModelConfig, FLAGS, seed=None),
      client_cfg=flagconfig.from_flags(fed_config.ClientConfig, FLAGS),
      aggregation_cfg=flagconfig.from_flags(fed_config.AggregationConfig, FLAGS))
  result = training.train_in_runtime(setup)
  print(reporting.format_results(result))
  print(f'run directory: {setup.cfg.output}')


def run(argv) -> None:
  common.run_app(main, argv, sys.modules[__name__])
