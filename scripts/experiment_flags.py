"""Flags every experiment script shares; each script sets its dataset's defaults."""

from __future__ import annotations

import os
import shlex
import sys

from absl import flags
from absl import logging

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run from a checkout

from federated import startup  # pylint: disable=g-import-not-at-top,wrong-import-position

startup.import_tensorflow()  # first, so that its CUDA start-up noise is filtered (federated/startup.py)
from federated import experiment  # noqa: E402  pylint: disable=g-import-not-at-top,wrong-import-position
from federated.config import AggregationConfig, ClientConfig, CompareConfig, TrainConfig  # noqa: E402
from pfmsmt_tf import config as model_config  # noqa: E402
from data_pipelines import flagconfig  # noqa: E402

flags.DEFINE_string('input', '', 'The dataset\'s source file or folder.')
flags.DEFINE_boolean('paper_model', False, 'The public MMoE sizes (embedding 128, 8 experts of 512-256): slow '
                     'on CPU; the default model is sized for 2 cores.')
flagconfig.define_flags(CompareConfig, 'experiment')
flagconfig.define_flags(TrainConfig, 'experiment', exclude=('data', 'algorithm', 'output', 'seed', 'resume',
                                                            'overwrite'))
flagconfig.define_flags(ClientConfig, 'experiment')
flagconfig.define_flags(AggregationConfig, 'experiment')
FLAGS = flags.FLAGS


def set_defaults(**defaults) -> None:
  for name, value in defaults.items():
    FLAGS.set_default(name, value)


def run(prepare_cfg) -> None:
  """Builds the experiment from the flags and runs it; prints the report."""
  logging.set_verbosity(logging.WARNING)  # TFF logs every checkpoint at INFO
  compare = flagconfig.from_flags(CompareConfig, FLAGS)
  train = flagconfig.from_flags(TrainConfig, FLAGS, data='', algorithm='pfmsmtrec', output=compare.output, seed=0,
                                resume=False, overwrite=False)
  exp = experiment.Experiment(
      prepare=prepare_cfg, compare=compare, train=train,
      model=model_config.paper_config() if FLAGS.paper_model else model_config.ModelConfig(),
      client=flagconfig.from_flags(ClientConfig, FLAGS), aggregation=flagconfig.from_flags(AggregationConfig, FLAGS))
  command = ' '.join(['python'] + [shlex.quote(a) for a in sys.argv])
  print(open(experiment.run_experiment(exp, command)).read())
