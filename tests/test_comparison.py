"""pfmsmt compare: every algorithm x seed, a report whose numbers are the runs' own, and a restartable matrix."""

import dataclasses
import json
import os

import numpy as np
import pandas as pd
import pytest

from data_pipelines import prepare
from data_pipelines.config import PrepareConfig
from federated import comparison, runtime
from federated.config import CompareConfig
from tests import helpers


@pytest.fixture(scope='module')
def compared(tmp_path_factory):
  root = tmp_path_factory.mktemp('compare')
  data = str(root / 'data')
  prepare.prepare(PrepareConfig(output=data, rows_per_scenario=400), log=lambda *_: None)
  cfg = CompareConfig(algorithms=('local',), seeds=2, output=str(root / 'cmp'))
  base = helpers.small_setup(data, cfg.output, rounds=1)
  with runtime.local_runtime():
    results = comparison.run_all(cfg, base, log=lambda *_: None)
  table = comparison.write_report(results, cfg.output, 'pfmsmt compare --test')
  return cfg, base, results, table


def test_report_numbers_are_the_runs_numbers(compared):
  cfg, _, results, table = compared
  assert len(results) == 4 and cfg.planned() == ('local', 'logistic')  # the logistic row is added
  for algorithm in cfg.planned():
    runs = [json.load(open(os.path.join(comparison.run_dir(cfg.output, algorithm, s), 'metrics.json')))
            for s in range(2)]
    aucs = [r['test']['ES']['ctcvr']['auc'] for r in runs]
    row = table[(table.algorithm == algorithm) & (table.scenario == 'ES') & (table.task == 'ctcvr')].iloc[0]
    assert row.auc_mean == pytest.approx(np.mean(aucs)) and row.auc_std == pytest.approx(np.std(aucs, ddof=1))
    mean_row = table[(table.algorithm == algorithm) & (table.scenario == 'mean')].iloc[0]
    assert mean_row.auc_mean == pytest.approx(np.mean([r['mean_auc'] for r in runs])) and mean_row.seeds == 2
  csv = pd.read_csv(os.path.join(cfg.output, 'report.csv'))
  assert set(csv.algorithm) == {'local', 'logistic', 'oracle'}
  logistic_config = json.load(open(os.path.join(comparison.run_dir(cfg.output, 'logistic', 0), 'config.json')))
  assert logistic_config['algorithm']['family'] == 'reference'
  report = open(os.path.join(cfg.output, 'report.md')).read()
  assert '| oracle |' in report and 'pfmsmt compare --test' in report and 'gap to oracle' in report
  main_table = report.split('## Paired')[0]
  columns, means, _ = comparison._wide(table)  # pylint: disable=protected-access
  best = sum(np.isclose(means[a][c], max(means[b][c] for b in means)) for c in columns for a in means)
  assert best >= 9 and main_table.count('**') == 2 * best  # the best of each column (ties all bold)
  assert '## Paired differences to local' in report and '± test set (95%)' in report
  for png in ('auc_by_round.png', 'auc_by_scenario.png'):
    with open(os.path.join(cfg.output, png), 'rb') as f:
      assert f.read(8) == b'\x89PNG\r\n\x1a\n'


def test_seeds_differ_and_a_rerun_reuses_finished_runs(compared):
  cfg, base, results, _ = compared
  by_seed = [r['mean_auc'] for r in results if r['algorithm'] == 'local']
  assert by_seed[0] != by_seed[1]
  lines = []
  with runtime.local_runtime():
    again = comparison.run_all(cfg, base, log=lines.append)
  assert lines == [] and [r['mean_auc'] for r in again] == [r['mean_auc'] for r in results]
  # A third seed that is not run yet: read-only and seed-restricted calls train nothing and skip it.
  three = dataclasses.replace(cfg, seeds=3)
  with runtime.local_runtime():
    assert len(comparison.run_all(three, base, log=lines.append, train_missing=False)) == 4
    assert len(comparison.run_all(three, base, log=lines.append, train_seeds=[1, 0])) == 4
  assert lines == []
  with pytest.raises(ValueError, match='ran 1 rounds'):
    comparison.run_all(cfg, dataclasses.replace(base, cfg=dataclasses.replace(base.cfg, rounds=2)))


def test_paired_differences_are_per_seed_with_a_t_interval(compared):
  cfg, _, results, _ = compared
  by = {(r['algorithm'], r['seed']): r['mean_auc'] for r in results}
  diffs = [by[('logistic', s)] - by[('local', s)] for s in range(2)]
  paired = comparison.paired_differences(results, 'local')
  row = paired.iloc[0]
  assert list(paired.algorithm) == ['logistic'] and row.seeds == 2
  half = 12.7062047 * np.std(diffs, ddof=1) / np.sqrt(2)  # t(0.975, 1 df)
  assert row.diff_mean == pytest.approx(np.mean(diffs))
  assert row.ci_low == pytest.approx(np.mean(diffs) - half, rel=1e-6)
  assert row.ci_high == pytest.approx(np.mean(diffs) + half, rel=1e-6)
  assert row.excludes_zero == (row.ci_low > 0 or row.ci_high < 0)
  on_disk = pd.read_csv(os.path.join(cfg.output, 'report_paired.csv'))
  assert on_disk.diff_mean.iloc[0] == pytest.approx(row.diff_mean, abs=1e-6)


def test_interval_helpers():
  mean, low, high = comparison.t_interval([0.01, 0.02, 0.03, 0.02, 0.02])
  assert mean == pytest.approx(0.02) and low == pytest.approx(0.02 - 2.7764451 * 0.00707107 / np.sqrt(5), rel=1e-5)
  assert np.isnan(comparison.t_interval([0.1])[1])
  # Hanley-McNeil: about 0.038 for AUC 0.8 with 200 positives and 2,000 negatives; shrinks with more rows.
  small = comparison.auc_half_width(0.8, 200, 2000)
  assert small == pytest.approx(0.0377, abs=5e-4) and comparison.auc_half_width(0.8, 2000, 20000) < small / 3
  assert np.isnan(comparison.auc_half_width(0.8, 0, 100))


def test_config_errors():
  with pytest.raises(ValueError, match='unknown'):
    CompareConfig(algorithms=('pfmsmtrec', 'fedsgd'), output='x')
  with pytest.raises(ValueError, match='--output'):
    CompareConfig()


def test_headline_sorts_algorithms_by_their_interval():
  paired = pd.DataFrame([
      {'algorithm': 'a', 'reference': 'r', 'seeds': 5, 'diff_mean': 0.02, 'ci_low': 0.01, 'ci_high': 0.03,
       'excludes_zero': True},
      {'algorithm': 'b', 'reference': 'r', 'seeds': 5, 'diff_mean': -0.01, 'ci_low': -0.02, 'ci_high': -0.001,
       'excludes_zero': True},
      {'algorithm': 'c', 'reference': 'r', 'seeds': 5, 'diff_mean': 0.001, 'ci_low': -0.01, 'ci_high': 0.012,
       'excludes_zero': False}])
  text = comparison.headline(paired)
  assert 'better than r: a (+0.0200 [+0.0100, +0.0300])' in text
  assert 'worse than r: b (-0.0100' in text and 'not distinguishable from it: c.' in text
