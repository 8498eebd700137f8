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


def test_the_default_rows_are_those_of_before_the_regimes():
  """The regimes draw from a stream of their own: the default data is byte for byte what it was."""
  import hashlib  # pylint: disable=g-import-not-at-top
  rows, _ = read_all(synthetic.SyntheticSource(synthetic.SyntheticConfig(seed=1, rows_per_scenario=500)), 'test')
  digest = hashlib.sha256(rows.to_csv(index=False, float_format='%.10g').encode()).hexdigest()[:16]
  assert digest == 'bea00a2d123c644e'  # computed with the generator as of commit 5c68834


def test_clustered_regime_gives_each_scenario_peers():
  from data_pipelines.config import PrepareConfig  # pylint: disable=g-import-not-at-top
  from data_pipelines.prepare import synthetic_config  # pylint: disable=g-import-not-at-top
  cfg = synthetic_config(PrepareConfig(regime='clustered'))
  assert len(cfg.scenarios) == 8 and cfg.scenario_clusters == 2
  world = synthetic.SyntheticSource(cfg).world
  cats, z, _ = world.features(0, np.random.default_rng(0), 4000)
  for task in (0, 1):
    own = np.corrcoef([world._parts(s, cats, z)[task][1] for s in range(8)])  # pylint: disable=protected-access
    peers = [own[0, s] for s in (2, 4, 6)]  # scenario i is in cluster i % 2
    others = [own[0, s] for s in (1, 3, 5, 7)]
    assert min(peers) > 0.6 and max(np.abs(others)) < 0.5, (peers, others)


def test_unequal_regime_and_its_flags():
  from data_pipelines.config import PrepareConfig  # pylint: disable=g-import-not-at-top
  from data_pipelines.prepare import synthetic_config  # pylint: disable=g-import-not-at-top
  src = synthetic.SyntheticSource(synthetic_config(PrepareConfig(regime='unequal')))
  assert [src.split_rows('train', s) for s in range(4)] == [20_000, 20_000, 20_000, 1_600]
  rows, _ = read_all(synthetic.SyntheticSource(synthetic.SyntheticConfig(scenario_rows=(50, 20, 30, 10))), 'train')
  assert rows.groupby(sources.SCENARIO).size().to_dict() == {'NL': 40, 'ES': 16, 'FR': 24, 'US': 8}
  with pytest.raises(ValueError, match='--regime=unequal sets --scenario_rows'):
    synthetic_config(PrepareConfig(regime='unequal', scenario_rows=(9, 9, 9, 9)))
  with pytest.raises(ValueError, match='one count >= 10 per scenario'):
    synthetic.SyntheticConfig(scenario_rows=(100, 100))
  with pytest.raises(ValueError, match='scenario_clusters must be in'):
    synthetic.SyntheticConfig(scenario_clusters=5)


def test_sparse_ids_regime_has_popularity_skewed_ids_and_no_numerical_feature():
  from data_pipelines.config import PrepareConfig  # pylint: disable=g-import-not-at-top
  from data_pipelines.prepare import synthetic_config  # pylint: disable=g-import-not-at-top
  cfg = synthetic_config(PrepareConfig(regime='sparse_ids'))
  src = synthetic.SyntheticSource(cfg)
  assert len(src.categorical) == 3 and not src.numerical
  rows, _ = read_all(src, 'train', chunk_rows=10_000)
  counts = rows['categorical_1'].value_counts()
  assert len(counts) > 3_000 and (counts == 1).mean() > 0.4  # most ids are rare, a few are frequent
  assert counts.iloc[:20].sum() > 0.2 * len(rows)
  assert 0.02 < rows['ctr'].mean() < 0.06
  # The ids alone set the true probabilities (no unseen latent part), so a model can learn them.
  p = rows.groupby([sources.SCENARIO, 'categorical_1', 'categorical_2', 'categorical_3'])[
      sources.true_prob_column('ctr')].nunique()
  assert p.max() == 1
  with pytest.raises(ValueError, match='latent_signal must be >= 0'):
    synthetic.SyntheticConfig(latent_signal=0.0, num_categorical=0)
  with pytest.raises(ValueError, match='categorical_vocab needs one size >= 2 per categorical feature'):
    synthetic.SyntheticConfig(num_categorical=2, categorical_vocab=(10,))
