"""The tuned plan's machine time: final runs summed from their rounds, trials estimated from their pace."""

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'benchmarks'))
import plan_time  # noqa: E402  pylint: disable=g-import-not-at-top


def _final_run(report, algorithm, seed, rounds, train_seconds, seconds):
  folder = os.path.join(report, 'runs', algorithm, f'seed_{seed}')
  os.makedirs(folder)
  with open(os.path.join(folder, 'rounds.csv'), 'w') as f:
    f.write('round,train_seconds,seconds\n')
    f.writelines(f'{r},{train_seconds},{seconds}\n' for r in range(1, rounds + 1))


def test_runs_are_summed_and_trials_scaled_by_their_local_epochs(tmp_path):
  report = str(tmp_path / 'synthetic_tuned')
  for seed in range(2):
    _final_run(report, 'ditto', seed, rounds=10, train_seconds=3.0, seconds=4.0)  # 1 s of evaluation a round
  _final_run(report, 'fedavg', 0, rounds=5, train_seconds=1.0, seconds=1.0)
  search = {'algorithm': 'ditto', 'best': {'params': {'local_epochs': 1}},
            'trials': [{'params': {'local_epochs': 2}, 'rounds': {str(r): 0.7 for r in range(1, 4)}},  # 3 x (6 + 1)
                       {'params': {'local_epochs': 1}, 'rounds': None}]}  # pruned before its first round
  os.makedirs(os.path.join(report, 'tune', 'ditto'))
  with open(os.path.join(report, 'tune', 'ditto', 'tuning.json'), 'w') as f:
    json.dump(search, f)
  t = plan_time.report_seconds(report)
  assert t['runs'] == 3 and t['run_hours'] == pytest.approx((2 * 10 * 4.0 + 5 * 1.0) / 3600)
  assert t['trials'] == 2 and t['trial_hours'] == pytest.approx(3 * 7.0 / 3600)
