"""Two settings of `pfmsmt prepare` on one AliExpress-layout CSV, timed in turn and paired.

On a machine as noisy as ours, one run of each setting says nothing. This script alternates them (A B, B A, A B,
...), so that a slow stretch of the machine falls on both, and prints each setting's median seconds and CPU
seconds and the paired differences. Each run is the command a user runs, start-up included.

  python benchmarks/prepare_ab.py --a=--encode_threads=1 --b=--encode_threads=2 --csv_rows=1000000 --repeats=5

`--csv=FOLDER` times an AliExpress-layout folder already written (by an earlier run's `_write_aliexpress_csv`)
instead of writing one first. `--a_tree`/`--b_tree` run a setting with the code of another checkout, to time two
versions of prepare against each other:

  git worktree add /tmp/before <commit>
  python benchmarks/prepare_ab.py --a_tree=/tmp/before --csv=FOLDER --repeats=5
"""

from __future__ import annotations

import os
import shlex
import statistics
import tempfile

import data_pipeline  # noqa: E402  (benchmarks/, this script's folder; defines --csv_rows and --repeats)
from absl import app, flags  # pylint: disable=g-multiple-import

flags.DEFINE_string('a', '', 'Flags of setting A, as one shell-quoted string.')
flags.DEFINE_string('b', '', 'Flags of setting B, as one shell-quoted string.')
flags.DEFINE_string('a_tree', data_pipeline.REPO, 'The checkout whose code setting A runs.')
flags.DEFINE_string('b_tree', data_pipeline.REPO, 'The checkout whose code setting B runs.')
FLAGS = flags.FLAGS


def _run(csv: str, out: str, extra: str, tree: str) -> tuple:
  """(seconds, CPU seconds) of one `pfmsmt prepare`."""
  m = data_pipeline.run_prepare_command(csv, out, shlex.split(extra), tree)
  return m['seconds'], data_pipeline.cpu_seconds(m)


def main(argv) -> None:
  del argv
  if (FLAGS.a, FLAGS.a_tree) == (FLAGS.b, FLAGS.b_tree):
    raise app.UsageError(f'A and B are the same setting ({FLAGS.a!r} of {FLAGS.a_tree})')
  with tempfile.TemporaryDirectory() as work:
    csv = FLAGS.csv  # an AliExpress-layout folder already written (--csv_rows is then not used)
    if not csv:
      csv = os.path.join(work, 'csv')
      data_pipeline._write_aliexpress_csv(csv, FLAGS.csv_rows)  # pylint: disable=protected-access
      os.sync()  # the CSV's write-back done before any timing
    runs = {'A': [], 'B': []}
    for repeat in range(FLAGS.repeats):
      for name in ('AB' if repeat % 2 == 0 else 'BA'):
        runs[name].append(_run(csv, os.path.join(work, 'out'), *((FLAGS.a, FLAGS.a_tree) if name == 'A' else
                                                                 (FLAGS.b, FLAGS.b_tree))))
        print(f'{name}: {runs[name][-1][0]:.2f} s, {runs[name][-1][1]:.2f} CPU-s', flush=True)
  print(f'{FLAGS.csv or f"{FLAGS.csv_rows:,} rows"}, {FLAGS.repeats} runs of each, taken in turn')
  for name, setting, tree in (('A', FLAGS.a, FLAGS.a_tree), ('B', FLAGS.b, FLAGS.b_tree)):
    print(f'{name} ({setting or "defaults"}, code of {tree}): '
          f'median {statistics.median(s for s, _ in runs[name]):.2f} s, '
          f'{statistics.median(c for _, c in runs[name]):.2f} CPU-s')
  print('paired differences B - A, s:', ', '.join(f'{b[0] - a[0]:+.2f}' for a, b in zip(runs['A'], runs['B'])))


if __name__ == '__main__':
  app.run(main)
