"""Census-Income (KDD) as federated scenarios: one client per race (5), tasks income > 50K and never married.

  python scripts/run_census.py --input=../shared/data/census-income/census-income.test.gz --output=runs/census

The official test split alone (99,762 rows) is split 80/20 by a seeded draw; a folder with the .data and
.test files uses the official split. See the README for the measured results.
"""

from absl import app
from absl import flags

import experiment_flags as ef  # pylint: disable=import-error

flags.DEFINE_string('scenario_column', 'race', 'The column whose values are the scenarios.')
ef.set_defaults(input='../shared/data/census-income/census-income.test.gz', output='runs/census', rounds=10,
                eval_every=1, algorithms=list(ef.experiment.PAPER_ALGORITHMS))


def main(argv):
  del argv
  from data_pipelines.config import PrepareConfig  # pylint: disable=g-import-not-at-top
  ef.run(PrepareConfig(dataset='census', input=ef.FLAGS.input, scenario_column=ef.FLAGS.scenario_column))


if __name__ == '__main__':
  app.run(main)
