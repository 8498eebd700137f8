"""A variant's runs pair with a report's by seed, on the mean and per task, as its rule in CHOICES asks."""

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'benchmarks'))
import variant_pairs  # noqa: E402  pylint: disable=g-import-not-at-top


def _run(folder, seed, ctr, ctcvr):
  os.makedirs(os.path.join(folder, f'seed_{seed}'))
  test = {s: {'ctr': {'auc': ctr}, 'ctcvr': {'auc': ctcvr}} for s in ('NL', 'ES')}
  with open(os.path.join(folder, f'seed_{seed}', 'metrics.json'), 'w') as f:
    json.dump({'test': test, 'mean_auc': (ctr + ctcvr) / 2}, f)


def test_differences_are_paired_by_seed_per_measure(tmp_path):
  variant, report = str(tmp_path / 'variants' / 'v'), str(tmp_path / 'runs')
  for seed in range(3):
    _run(os.path.join(report, 'ref'), seed, 0.70 + 0.01 * seed, 0.80)  # seeds differ a lot, pairs do not
    _run(variant, seed, 0.72 + 0.01 * seed, 0.79)
  _run(os.path.join(report, 'ref'), 3, 0.9, 0.9)  # a seed the variant lacks is not paired
  runs, rows = variant_pairs.pairs(variant, report, ['ref'])
  by = {r['measure']: r for r in rows}
  assert sorted(by) == ['ctcvr', 'ctr', 'mean'] and all(r['seeds'] == 3 for r in rows)
  assert by['ctr']['diff_mean'] == pytest.approx(0.02) and by['ctr']['ci_low'] == pytest.approx(0.02)
  assert by['ctcvr']['diff_mean'] == pytest.approx(-0.01) and by['mean']['diff_mean'] == pytest.approx(0.005)
  assert len(runs) == 7


def test_a_variant_without_runs_is_an_error(tmp_path):
  with pytest.raises(ValueError, match='no seed_'):
    variant_pairs.pairs(str(tmp_path / 'none'), str(tmp_path), ['ref'])
