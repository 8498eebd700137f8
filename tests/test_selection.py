"""Model selection on the valid split: the rule, and what a trained run records and keeps."""

import json
import math
import os

import pandas as pd
import pytest

from data_pipelines import prepare
from data_pipelines.config import PrepareConfig
from federated import run_directory, selection, training
from tests import helpers

SCENARIOS, TASKS = ['A', 'B'], ['ctr', 'ctcvr']


def _row(r, aucs):
  """aucs: {scenario: (auc ctr, auc ctcvr)}."""
  row = {'round': r}
  for s, values in aucs.items():
    for t, v in zip(TASKS, values):
      row[selection.valid_column('auc', s, t)] = v
      row[selection.valid_column('logloss', s, t)] = 1 - v
  return row


ROWS = [_row(1, {'A': (0.60, 0.60), 'B': (0.70, 0.70)}),
        {'round': 2, 'loss_ctr': 0.3},  # not evaluated
        _row(3, {'A': (0.80, 0.70), 'B': (0.60, 0.60)}),
        _row(4, {'A': (0.75, 0.75), 'B': (0.65, 0.66)})]


def test_the_three_rules():
  assert selection.selected_rounds(ROWS, SCENARIOS, TASKS, 'last', 4) == {'A': 4, 'B': 4}
  # Mean over scenarios x tasks: round 1 0.65, round 3 0.675, round 4 0.7025.
  assert selection.selected_rounds(ROWS, SCENARIOS, TASKS, 'best', 4) == {'A': 4, 'B': 4}
  # A: 0.60, 0.75, 0.75 -> the earlier of the tie, round 3; B: 0.70, 0.60, 0.655 -> round 1.
  assert selection.selected_rounds(ROWS, SCENARIOS, TASKS, 'best_per_scenario', 4) == {'A': 3, 'B': 1}
  with pytest.raises(ValueError, match='unknown selection'):
    selection.selected_rounds(ROWS, SCENARIOS, TASKS, 'test', 4)


def test_undefined_auc_is_skipped_and_all_undefined_keeps_the_last_round():
  rows = [_row(1, {'A': (math.nan, 0.9), 'B': (math.nan, math.nan)}), _row(2, {'A': (0.5, 0.5), 'B': (math.nan, math.nan)})]
  assert selection.selected_rounds(rows, SCENARIOS, TASKS, 'best_per_scenario', 2) == {'A': 1, 'B': 2}
  # rounds.csv read back gives strings and empty cells.
  as_csv = [{k: ('' if isinstance(v, float) and math.isnan(v) else str(v)) for k, v in r.items()} for r in rows]
  assert selection.selected_rounds(as_csv, SCENARIOS, TASKS, 'best_per_scenario', 2) == {'A': 1, 'B': 2}
  valid = selection.valid_metrics(rows, {'A': 1, 'B': 2}, TASKS)
  assert valid['A']['ctcvr']['auc'] == 0.9 and math.isnan(valid['B']['ctr']['auc'])


@pytest.fixture(scope='module')
def run(trained_run):
  return trained_run.run, trained_run.metrics


def test_metrics_hold_the_selected_models_and_the_last_ones(run):
  out, metrics = run
  rows = pd.read_csv(os.path.join(out, 'rounds.csv')).to_dict('records')
  assert not any(k.startswith('auc/') for k in rows[0])  # test is not evaluated during training
  want = selection.selected_rounds(rows, list(metrics['test']), ['ctr', 'ctcvr'], 'best_per_scenario', 3)
  assert metrics['selection'] == 'best_per_scenario' and metrics['selected_round'] == want
  assert set(metrics) >= {'test', 'valid', 'last', 'selected_round', 'mean_auc', 'last_mean_auc'}
  for s, r in want.items():
    row = rows[r - 1]
    assert metrics['valid'][s]['ctr']['auc'] == pytest.approx(row[f'valid_auc/{s}/ctr'])
    if r == 3:  # a scenario that selected the last round deploys the last round's model
      assert metrics['test'][s]['ctr']['auc'] == pytest.approx(metrics['last'][s]['ctr']['auc'], abs=1e-6)
  # Only the selected snapshot of each scenario is kept, in its own storage.
  for s, r in want.items():
    kept = sorted(f for f in os.listdir(os.path.join(out, 'clients', s)) if f.startswith('valid_'))
    assert kept == [run_directory.snapshot_name(r)]


def test_select_needs_a_valid_split(tmp_path):
  data = str(tmp_path / 'data')
  prepare.prepare(PrepareConfig(output=data, rows_per_scenario=300, valid_fraction=0), log=lambda *_: None)
  with pytest.raises(ValueError, match='needs a valid split'):
    training.train_in_runtime(helpers.small_setup(data, str(tmp_path / 'run'), rounds=1), log=lambda *_: None)


def test_config_records_the_effective_settings(run):
  out, _ = run
  with open(os.path.join(out, 'config.json')) as f:
    config = json.load(f)
  assert config['aggregation']['conflict'] == 'pcgrad' and config['algorithm']['loss_terms'] == ['personalization_regularizer']
  setup = helpers.small_setup('unused', 'unused', algorithm='pfmsmtrec_no_conflict')
  assert training.effective_settings(setup)['aggregation']['conflict'] == 'none'
  setup = helpers.small_setup('unused', 'unused', algorithm='pfmsmtrec_no_personalization')
  assert training.effective_settings(setup)['aggregation']['personalization'] == 'mean'
