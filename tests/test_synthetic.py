"""The synthetic generator: rates, determinism, and the scenario differences it promises."""

import numpy as np
import pandas as pd
import pytest

from data_pipelines import sources, synthetic
from data_pipelines import metrics
from tests.helpers import read_all

CFG = synthetic.SyntheticConfig(seed=3, rows_per_scenario=25_000)


@pytest.fixture(scope='module')
def train():
  rows, _ = read_all(synthetic.SyntheticSource(CFG), 'train', chunk_rows=10_000)
  return rows


def test_shape_rates_and_conversion_only_after_click(train):
  assert len(train) == 4 * 20_000
  assert sorted(train[sources.SCENARIO].unique()) == ['ES', 'FR', 'NL', 'US']
  assert sum(c.startswith('categorical_') for c in train) == 16
  assert sum(c.startswith('numerical_') for c in train) == 63
  assert (train['ctcvr'] <= train['ctr']).all()
  assert abs(train['ctr'].mean() - CFG.ctr_rate) < 0.02
  assert abs(train['ctcvr'].mean() - CFG.ctcvr_rate) < 0.006
  # The recorded true probabilities are calibrated: their mean matches the label rate.
  for t in ('ctr', 'ctcvr'):
    assert abs(train[t].mean() - train[sources.true_prob_column(t)].mean()) < 0.004


def test_same_seed_same_rows_other_seed_other_rows():
  a, _ = read_all(synthetic.SyntheticSource(synthetic.SyntheticConfig(seed=1, rows_per_scenario=500)), 'test')
  b, _ = read_all(synthetic.SyntheticSource(synthetic.SyntheticConfig(seed=1, rows_per_scenario=500)), 'test')
  c, _ = read_all(synthetic.SyntheticSource(synthetic.SyntheticConfig(seed=2, rows_per_scenario=500)), 'test')
  pd.testing.assert_frame_equal(a, b)
  assert not np.allclose(a['numerical_1'], c['numerical_1'])


def test_feature_shift(train):
  by = train.groupby(sources.SCENARIO)
  means = by['numerical_1'].mean()
  assert means.max() - means.min() > 0.5  # per-scenario offsets
  top = by['categorical_2'].agg(lambda s: s.value_counts().index[0])
  assert top.nunique() > 1 or by['categorical_5'].agg(lambda s: s.value_counts().index[0]).nunique() > 1


def test_concept_shift_and_shared_structure():
  """The true CTR function differs between scenarios (concept shift) but is strongly related (shared part)."""
  world = synthetic._World(CFG)  # pylint: disable=protected-access
  cats, z, _ = world.features(0, np.random.default_rng(0), 20_000)
  nl, _ = world._logits(0, cats, z)  # pylint: disable=protected-access
  es, _ = world._logits(1, cats, z)  # pylint: disable=protected-access
  r = np.corrcoef(nl, es)[0, 1]
  assert 0.3 < r < 0.97
  no_shift = synthetic._World(synthetic.SyntheticConfig(seed=3, concept_shift=0.0))  # pylint: disable=protected-access
  a, _ = no_shift._logits(0, cats, z)  # pylint: disable=protected-access
  b, _ = no_shift._logits(1, cats, z)  # pylint: disable=protected-access
  assert np.corrcoef(a, b)[0, 1] > 0.99


def test_tasks_partly_conflict():
  world = synthetic._World(CFG)  # pylint: disable=protected-access
  conflicting = [np.corrcoef(c, v)[0, 1] for c, v in zip(world.cat_click[:4], world.cat_conv[:4])]
  aligned = [np.corrcoef(c, v)[0, 1] for c, v in zip(world.cat_click[4:], world.cat_conv[4:])]
  assert np.mean(conflicting) < -0.2 and np.mean(aligned) > 0.2


def test_oracle_auc_is_high_and_a_noisy_score_is_worse(train):
  nl = train[train[sources.SCENARIO] == 'NL']
  oracle = metrics.exact_auc(nl['ctr'], nl[sources.true_prob_column('ctr')])
  noisy = nl[sources.true_prob_column('ctr')] + np.random.default_rng(0).normal(scale=0.1, size=len(nl))
  assert 0.7 < oracle < 0.95
  assert metrics.exact_auc(nl['ctr'], noisy) < oracle


def test_config_validation():
  with pytest.raises(ValueError, match='ctcvr_rate < ctr_rate'):
    synthetic.SyntheticConfig(ctr_rate=0.01, ctcvr_rate=0.02)
  with pytest.raises(ValueError, match='distinct'):
    synthetic.SyntheticConfig(scenarios=('NL', 'NL'))
