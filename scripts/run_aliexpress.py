"""AliExpress (Tianchi 74690): one client per country (NL, ES, FR, US), tasks CTR and CTCVR, as in the paper.

  python scripts/run_aliexpress.py --input=DIR --output=runs/aliexpress [--paper_model]

DIR holds either the processed layout (AliExpress_<CC>/{train,test}.csv) or the raw Tianchi files; see
`pfmsmt prepare --help`. The full data is about 100M rows: prepare streams it, and --rows_per_scenario is not
applied (use --countries to run a subset).
"""

from absl import app
from absl import flags

import experiment_flags as ef  # pylint: disable=import-error

flags.DEFINE_list('countries', ['NL', 'ES', 'FR', 'US'], 'Countries (scenarios) to run.')
ef.set_defaults(output='runs/aliexpress', rounds=10, eval_every=1, algorithms=list(ef.experiment.PAPER_ALGORITHMS))


def main(argv):
  del argv
  from data_pipelines.config import PrepareConfig  # pylint: disable=g-import-not-at-top
  if not ef.FLAGS.input:
    raise app.UsageError('--input (the AliExpress folder) is required')
  ef.run(PrepareConfig(dataset='aliexpress', input=ef.FLAGS.input, scenarios=tuple(ef.FLAGS.countries)))


if __name__ == '__main__':
  app.run(main)
