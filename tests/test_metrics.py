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
