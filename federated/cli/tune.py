"""pfmsmt tune: searches an algorithm's settings on the valid split with a fixed budget of runs.

Writes OUTPUT/best.flags (use it: `pfmsmt train --flagfile=OUTPUT/best.flags --algorithm=... --data=...`),
OUTPUT/tuning.json (every trial) and OUTPUT/trials/; run again with the same --output and a killed search
continues (federated/tuning.py).
"""

from __future__ import annotations

import sys

from absl import flags

from federated import config as fed_config
from pfmsmt_tf import config as model_config
from data_pipelines import flagconfig
from federated.cli import common
from federated.config import RunSetup

flagconfig.define_flags(fed_config.TuneConfig, __name__)
flagconfig.define_flags(fed_config.TrainConfig, __name__, exclude=('resume', 'overwrite'))
flagconfig.define_flags(fed_config.ClientConfig, __name__)
flagconfig.define_flags(fed_config.AggregationConfig, __name__)
flagconfig.define_flags(model_config.ModelConfig, __name__, exclude=('seed',))
FLAGS = flags.FLAGS


def main() -> None:
  from federated import runtime, training, tuning  # pylint: disable=g-import-not-at-top
  tune_cfg = flagconfig.from_flags(fed_config.TuneConfig, FLAGS)
  setup = RunSetup(
      cfg=flagconfig.from_flags(fed_config.TrainConfig, FLAGS, resume=False, overwrite=True),
      model_cfg=flagconfig.from_flags(model_config.ModelConfig, FLAGS, seed=None),
      client_cfg=flagconfig.from_flags(fed_config.ClientConfig, FLAGS),
      aggregation_cfg=flagconfig.from_flags(fed_config.AggregationConfig, FLAGS))
  with runtime.local_runtime():
    best = tuning.tune(setup, tune_cfg, setup.cfg.output, training.train_trial)
  print(f'best of {tune_cfg.budget} trials: valid mean AUC {best["score"]:.4f} with ' +
        ', '.join(f'--{k}={v:.4g}' for k, v in best['params'].items()))
  print(f'flagfile: {setup.cfg.output}/{tuning.BEST_FLAGS}')


def run(argv) -> None:
  common.run_app(main, argv, sys.modules[__name__])
