"""A variant's runs against a tuned report's runs, paired by seed: the test a variant's rule in docs/CHOICES.md
asks for (mean test AUC, and per task, with 95% t intervals).

  python benchmarks/variant_pairs.py --variant_runs=benchmarks/results/ledger/census_tuned/variants/pfmsmtrec_personal_tasks \
      --report_runs=benchmarks/results/ledger/census_tuned/runs --references=pfmsmtrec_personal_inputs,fedavg,ditto
"""

from __future__ import annotations

import glob
import json
import os
import re
import sys
from typing import Dict, List, Tuple

from absl import app
from absl import flags

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from federated import comparison  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string('variant_runs', '', 'Folder of the variant\'s seed_<S>/metrics.json.')
flags.DEFINE_string('report_runs', '', 'The report\'s runs folder: <algorithm>/seed_<S>/metrics.json.')
flags.DEFINE_list('references', [], 'Algorithms of the report to pair the variant with.')


def _task_means(metrics: dict) -> Dict[str, float]:
  """The run's mean test AUC over all cells and per task, as its report computes `mean_auc`."""
  cells = [(task, m['auc']) for scenario in metrics['test'].values() if isinstance(scenario, dict)
           for task, m in scenario.items() if isinstance(m, dict) and 'auc' in m]
  out = {'mean': metrics['mean_auc']}
  for task in dict.fromkeys(t for t, _ in cells):
    values = [a for t, a in cells if t == task]
    out[task] = sum(values) / len(values)
  return out


def load(folder: str, algorithm: str) -> List[dict]:
  """{'algorithm', 'seed', <measure>: AUC} of every finished seed under `folder`."""
  rows = []
  for path in sorted(glob.glob(os.path.join(folder, 'seed_*', 'metrics.json'))):
    with open(path) as f:
      metrics = json.load(f)
    seed = int(re.search(r'seed_(\d+)', path).group(1))
    rows.append({'algorithm': algorithm, 'seed': seed, **_task_means(metrics)})
  return rows


def pairs(variant_runs: str, report_runs: str, references: List[str]) -> Tuple[List[dict], List[dict]]:
  """(the runs, one row per reference and measure: {reference, measure, seeds, diff_mean, ci_low, ci_high})."""
  variant = os.path.basename(os.path.normpath(variant_runs))
  runs = load(variant_runs, variant)
  if not runs:
    raise ValueError(f'no seed_*/metrics.json under {variant_runs}')
  for reference in references:
    runs += load(os.path.join(report_runs, reference), reference)
  rows = []
  for reference in references:
    for measure in [k for k in runs[0] if k not in ('algorithm', 'seed')]:
      table = comparison.paired_differences(
          [{'algorithm': r['algorithm'], 'seed': r['seed'], 'mean_auc': r[measure]} for r in runs
           if measure in r and r['algorithm'] in (variant, reference)], reference)
      row = table[table['algorithm'] == variant].iloc[0]
      rows.append({'reference': reference, 'measure': measure, **{k: row[k] for k in (
          'seeds', 'diff_mean', 'ci_low', 'ci_high')}})
  return runs, rows


def main(argv) -> None:
  del argv
  if not FLAGS.variant_runs or not FLAGS.report_runs or not FLAGS.references:
    raise app.UsageError('--variant_runs, --report_runs and --references are required')
  variant = os.path.basename(os.path.normpath(FLAGS.variant_runs))
  runs, rows = pairs(FLAGS.variant_runs, FLAGS.report_runs, FLAGS.references)
  for r in rows:
    print(f'{variant} - {r["reference"]} ({r["measure"]}, {r["seeds"]} seeds): {r["diff_mean"]:+.4f} '
          f'[{r["ci_low"]:+.4f}, {r["ci_high"]:+.4f}]')
  measures = [k for k in runs[0] if k not in ('algorithm', 'seed')]
  for algorithm in [variant] + FLAGS.references:
    mine = [r for r in runs if r['algorithm'] == algorithm]
    print(f'{algorithm}: ' + ', '.join(f'{m} {sum(r[m] for r in mine) / len(mine):.4f}' for m in measures)
          + f' ({len(mine)} seeds)')


if __name__ == '__main__':
  app.run(main)
