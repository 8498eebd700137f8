"""The machine time the tuned benchmark (benchmarks/quality_tuned.sh) took, from what its ledger kept.

A final run's rounds.csv has each round's seconds (local training and the valid evaluation; not the process's
start nor the test evaluation after the last round). A search keeps each trial's rounds, not its seconds, so a
trial is estimated from the final runs of its algorithm on the same dataset: their median training seconds per
round, scaled by the trial's local epochs over theirs, plus their median evaluation seconds per round.

  python benchmarks/plan_time.py --ledger=benchmarks/results/ledger
"""

from __future__ import annotations

import csv
import glob
import json
import os
import statistics
from typing import Dict, List, Tuple

from absl import app
from absl import flags

FLAGS = flags.FLAGS
flags.DEFINE_string('ledger', 'benchmarks/results/ledger', 'The plan\'s ledger: <dataset>_tuned/{runs,tune}.')
flags.DEFINE_string('suffix', '_tuned', 'Which reports of the ledger: the folders <dataset><suffix>.')


def _rounds(path: str) -> List[dict]:
  with open(path, newline='') as f:
    return list(csv.DictReader(f))


def final_runs(report: str) -> Dict[str, List[List[dict]]]:
  """algorithm -> its seeds' rounds (rounds.csv rows)."""
  out: Dict[str, List[List[dict]]] = {}
  for path in sorted(glob.glob(os.path.join(report, 'runs', '*', 'seed_*', 'rounds.csv'))):
    out.setdefault(path.split(os.sep)[-3], []).append(_rounds(path))
  return out


def pace(runs: List[List[dict]]) -> Tuple[float, float]:
  """(median training seconds, median other seconds) of a round of an algorithm's final runs."""
  rows = [r for run in runs for r in run]
  return (statistics.median(float(r['train_seconds']) for r in rows),
          statistics.median(float(r['seconds']) - float(r['train_seconds']) for r in rows))


def trial_seconds(trial: dict, train: float, rest: float, epochs: int) -> float:
  """A trial's estimated seconds at its algorithm's `pace` (final runs of `epochs` local epochs)."""
  scale = trial['params'].get('local_epochs', epochs) / epochs
  return len(trial.get('rounds') or {}) * (train * scale + rest)


def report_seconds(report: str) -> dict:
  """{'runs': count, 'run_hours', 'trials': count, 'trial_hours'} of one report's folder of the ledger."""
  runs = final_runs(report)
  run_seconds = sum(float(r['seconds']) for seeds in runs.values() for run in seeds for r in run)
  trials, seconds = 0, 0.0
  for path in sorted(glob.glob(os.path.join(report, 'tune', '*', 'tuning.json'))):
    with open(path) as f:
      search = json.load(f)
    algorithm = search['algorithm']
    if algorithm not in runs:
      continue  # searched, never run to the end: no final runs to take its pace from
    epochs = search['best']['params'].get('local_epochs', 1)
    train, rest = pace(runs[algorithm])
    for trial in search['trials']:
      trials += 1
      seconds += trial_seconds(trial, train, rest, epochs)
  return {'runs': sum(len(s) for s in runs.values()), 'run_hours': run_seconds / 3600, 'trials': trials,
          'trial_hours': seconds / 3600}


def main(argv) -> None:
  del argv
  lines = ['| report | final runs | their hours (measured) | trials | their hours (estimated) | hours in all |',
           '|---|---|---|---|---|---|']
  total = {'runs': 0, 'run_hours': 0.0, 'trials': 0, 'trial_hours': 0.0}
  for report in sorted(glob.glob(os.path.join(FLAGS.ledger, '*' + FLAGS.suffix))):
    t = report_seconds(report)
    for key in total:
      total[key] += t[key]
    lines.append(f'| {os.path.basename(report)} | {t["runs"]} | {t["run_hours"]:.1f} | {t["trials"]} | '
                 f'{t["trial_hours"]:.1f} | {t["run_hours"] + t["trial_hours"]:.1f} |')
  lines.append(f'| **all** | {total["runs"]} | {total["run_hours"]:.1f} | {total["trials"]} | '
               f'{total["trial_hours"]:.1f} | **{total["run_hours"] + total["trial_hours"]:.1f}** |')
  print('\n'.join(lines))


if __name__ == '__main__':
  app.run(main)
