import numpy as np
import pytest

from data_pipelines import metrics


def test_exact_auc_known_values():
  assert metrics.exact_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
  assert metrics.exact_auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)  # ties count half
  assert metrics.exact_auc([1, 0, 1], [0.9, 0.1, 0.8]) == 1.0
  assert np.isnan(metrics.exact_auc([1, 1], [0.2, 0.3]))


def test_exact_auc_matches_pairwise_definition():
  rng = np.random.default_rng(0)
  y = rng.random(300) < 0.3
  s = np.round(rng.random(300), 2)  # with ties
  pos, neg = s[y], s[~y]
  pairwise = ((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (len(pos) * len(neg))
  assert metrics.exact_auc(y, s) == pytest.approx(pairwise)


def test_log_loss():
  assert metrics.log_loss([1, 0], [0.5, 0.5]) == pytest.approx(np.log(2))


def test_binned_auc_streams_within_its_bound_of_the_exact_auc():
  rng = np.random.default_rng(1)
  logits = rng.normal(-4.0, 1.0, 200_000)  # a CTCVR-like rate, about 2% positives
  p = 1 / (1 + np.exp(-logits))
  y = rng.random(p.size) < p
  auc = metrics.BinnedAuc()
  for part in np.array_split(np.arange(p.size), 7):
    auc.add(y[part], p[part])
  exact = metrics.exact_auc(y, p)
  assert abs(auc.result() - exact) <= auc.max_error()
  assert 0 < auc.max_error() < 1e-4
  coarse = metrics.BinnedAuc(bins=8)  # a bound that is not vacuous is also honoured when it is wide
  coarse.add(y, p)
  assert abs(coarse.result() - exact) <= coarse.max_error()
  assert coarse.max_error() > 1e-2


def test_binned_auc_edge_cases():
  auc = metrics.BinnedAuc()
  auc.add([1, 1], [0.2, 0.3])
  assert np.isnan(auc.result())
  auc.add([0, 0], [0.0, 1.0])  # probabilities 0 and 1 land in the end bins
  assert auc.result() == pytest.approx(0.5)
  with pytest.raises(ValueError, match='differ in shape'):
    auc.add([0, 1], [0.5])
