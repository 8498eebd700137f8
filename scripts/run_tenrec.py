"""Tenrec: one client per scenario file (QK-video, QK-article, QB-video, QB-article), tasks click and like.

  python scripts/run_tenrec.py --input=DIR --output=runs/tenrec [--tasks=click,like,share]
"""

from absl import app
from absl import flags

import experiment_flags as ef  # pylint: disable=import-error

flags.DEFINE_list('tasks', ['click', 'like'], 'Feedback columns used as tasks.')
ef.set_defaults(output='runs/tenrec', rounds=10, eval_every=1, algorithms=list(ef.experiment.PAPER_ALGORITHMS))


def main(argv):
  del argv
  from data_pipelines.config import PrepareConfig  # pylint: disable=g-import-not-at-top
  if not ef.FLAGS.input:
    raise app.UsageError('--input (the Tenrec folder) is required')
  ef.run(PrepareConfig(dataset='tenrec', input=ef.FLAGS.input, tasks=tuple(ef.FLAGS.tasks)))


if __name__ == '__main__':
  app.run(main)
