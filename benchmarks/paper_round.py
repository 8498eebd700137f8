"""`paper_config()` rounds against `fit` at sizes where the fixed cost of a round should no longer matter.

speed.py times the paper model (embedding 128, 8 experts of (512, 256)) at 7k and 29k train examples, where a
round took 0.46-0.76x the examples/s of a `fit` epoch, and fits a line through the round times: a fixed cost
of about 5-6 s per round (round_cost.md: the 154 MiB state that crosses to the executor every round) plus
what `fit` costs per example. By those lines a round reaches 0.8x of `fit` from about 38,000 train examples.
This script checks that prediction where the paper's datasets live, at each --paper_sizes rows per scenario
(35,000: about 100,000 train examples over 4 scenarios), with speed.py's own steps: a PF-MSMTrec round and a
`fit` epoch of the same model, batch size and pipeline, taken in turn, the median of --repeats after one
untimed.

  python benchmarks/paper_round.py --paper_sizes=35000 --repeats=3

Writes benchmarks/results/paper_round.md.
"""

from __future__ import annotations

import functools
import os
import tempfile
import time

import speed  # noqa: E402  (benchmarks/, this script's folder; imports TensorFlow first, defines --repeats)
import prepared  # noqa: E402
import report_file  # noqa: E402
from absl import app, flags, logging  # noqa: E402  pylint: disable=g-multiple-import

from federated import runtime  # noqa: E402
from pfmsmt_tf import config as model_config  # noqa: E402

flags.DEFINE_list('paper_sizes', ['35000'], 'Rows per scenario (train + test, 4 scenarios) of each timed size.')
flags.DEFINE_string('report', os.path.join(speed.REPO, 'benchmarks', 'results', 'paper_round.md'), 'Report file.')
FLAGS = flags.FLAGS

PREDICTED_FROM = 'speed.md'  # where the fitted lines this checks were published


def main(argv) -> None:
  del argv
  logging.set_verbosity(logging.WARNING)
  paper = model_config.paper_config()
  sizes = sorted(int(r) for r in FLAGS.paper_sizes)
  with tempfile.TemporaryDirectory() as work:
    data = {r: speed._prepare(work, f'paper{r}', r) for r in sizes}  # pylint: disable=protected-access
    steps = (('tff', functools.partial(speed.tff_round_step, work=work)), ('keras', speed.keras_epoch_step))
    runtime.use_model_size(speed._parameters(data[sizes[0]], paper))  # pylint: disable=protected-access
    with runtime.local_runtime():
      timed = speed.interleaved_medians({(kind, r, b): step(data[r], model=paper, batch_size=b)
                                         for r in sizes for b in speed.PAPER_BATCH_SIZES
                                         for kind, step in steps}, FLAGS.repeats)
    examples = {r: prepared.split_rows(d) for r, d in data.items()}
  cmd = (f'python benchmarks/paper_round.py --paper_sizes={",".join(map(str, sizes))} '
         f'--repeats={FLAGS.repeats}')
  lines = [
      '# `paper_config()` rounds against `fit` at larger sizes', '',
      f'Command: `{cmd}`  ',
      f'Machine: {report_file.machine(speed.tf.__version__)}  ',
      f'Date: {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}  ',
      '`paper_config()` (embedding 128, 8 experts of (512, 256)), PF-MSMTrec, 4 synthetic scenarios; every time '
      f'the median of {FLAGS.repeats} timed rounds or epochs after one untimed, a round and its `fit` epoch taken '
      'in turn; the executors with the BFC allocator `pfmsmt train` gives a model of this size. '
      f'{PREDICTED_FROM} fits lines through the round and epoch times at smaller sizes and says from how many '
      'train examples they predict 0.8x; these sizes check that prediction.', '',
      '| train examples | batch | TFF round s | TFF examples/s | `fit` epoch s | `fit` examples/s | TFF / Keras '
      '(target >= 0.8) |', '|---|---|---|---|---|---|---|',
      *[f'| {examples[r]:,} | {b} | {timed["tff", r, b]:.2f} | {examples[r] / timed["tff", r, b]:,.0f} | '
        f'{timed["keras", r, b]:.2f} | {examples[r] / timed["keras", r, b]:,.0f} | '
        f'**{timed["keras", r, b] / timed["tff", r, b]:.2f}x** |' for r in sizes for b in speed.PAPER_BATCH_SIZES],
      '',
  ]
  report_file.publish(lines, FLAGS.report)


if __name__ == '__main__':
  app.run(main)
