"""What the aggregator did in the quality benchmark's PF-MSMTrec runs, at rounds 1, 5 and 10.

Reads RUN/aggregation.jsonl of every seed of an algorithm (default pfmsmtrec) under the quality benchmark's
work folder and writes benchmarks/results/telemetry_<dataset>.md: per personalized group and round, the mean
(over seeds) of the mean cosine between different clients' updates before and after conflict coordination, the
attention weight each client keeps on its own update, the PCGrad projections (of K(K-1) possible) and the
share of the update norm they removed.

  python benchmarks/telemetry.py --datasets=synthetic,census
"""

from __future__ import annotations

import glob
import os
import sys

import numpy as np
from absl import app, flags

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from benchmarks import report_file  # noqa: E402
from federated import telemetry  # noqa: E402

flags.DEFINE_list('datasets', ['synthetic', 'census'], 'Work folders under --workdir to read.')
flags.DEFINE_string('algorithm', 'pfmsmtrec', 'Whose runs.')
flags.DEFINE_list('rounds', ['1', '5', '10'], 'Rounds to report.')
flags.DEFINE_string('workdir', os.path.join(REPO, 'runs', 'bench-quality'), 'The quality benchmark\'s runs.')
flags.DEFINE_string('results', os.path.join(REPO, 'benchmarks', 'results'), 'Where the reports are written.')
FLAGS = flags.FLAGS


def table(runs, rounds):
  """Markdown rows: group x round, each value the mean over seeds."""
  lines = ['| group | round | cosine before | cosine after | attention on self | PCGrad projections | '
           'norm removed by PCGrad |', '|---|---|---|---|---|---|---|']
  groups = list(runs[0][0].get('groups', {}))
  for group in groups:
    for r in rounds:
      picked = [next(x for x in records if x['round'] == r)['groups'][group] for records in runs
                if any(x['round'] == r for x in records)]
      if not picked:
        continue
      k = len(picked[0]['update_norm'])
      before = np.mean([telemetry.off_diagonal_mean(g['cosine_before']) for g in picked])
      after = np.mean([telemetry.off_diagonal_mean(g['cosine_after']) for g in picked])
      self_weight = np.mean([np.mean(np.diag(np.asarray(g['attention']))) for g in picked])
      if 'pcgrad_projections' in picked[0]:
        projections = f'{np.mean([g["pcgrad_projections"] for g in picked]):.1f} of {k * (k - 1)}'
        removed = f'{np.mean([np.sum(g["pcgrad_removed_norm"]) / np.sum(g["update_norm"]) for g in picked]):.1%}'
      else:
        projections = removed = '(no conflict step)'
      lines.append(f'| {group} | {r} | {before:+.3f} | {after:+.3f} | {self_weight:.3f} | {projections} | {removed} |')
  return lines


def main(argv) -> None:
  del argv
  rounds = [int(r) for r in FLAGS.rounds]
  for dataset in FLAGS.datasets:
    paths = sorted(glob.glob(os.path.join(FLAGS.workdir, dataset, 'runs', FLAGS.algorithm, 'seed_*',
                                          'aggregation.jsonl')))
    runs = [telemetry.read(p) for p in paths]
    runs = [r for r in runs if r]
    if not runs:
      print(f'{dataset}: no {FLAGS.algorithm} runs with telemetry under {FLAGS.workdir}')
      continue
    names = runs[0][0]['scenarios']
    lines = [f'# Aggregation telemetry: {FLAGS.algorithm} on {dataset}', '',
             f'Mean over {len(runs)} seed(s) of what the aggregator did (RUN/aggregation.jsonl), scenarios '
             f'{", ".join(names)}. Cosine: mean over pairs of different clients. Attention on self: the weight a '
             'client keeps on its own update (1/K is the plain mean). Norm removed: the summed norm PCGrad '
             'took from the updates over their summed norm.', '', *table(runs, rounds), '',
             'Command:', '', '```', 'python ' + ' '.join(sys.argv), '```', '']
    report_file.publish(lines, os.path.join(FLAGS.results, f'telemetry_{dataset}.md'))


if __name__ == '__main__':
  app.run(main)
