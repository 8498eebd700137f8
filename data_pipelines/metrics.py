"""Exact metrics in numpy, the reference that TF metrics are checked against."""

from __future__ import annotations

import numpy as np


def exact_auc(labels, scores) -> float:
  """ROC AUC by the rank-sum (Mann-Whitney) formula, ties counted half; NaN when a class is absent."""
  labels = np.asarray(labels).astype(bool).ravel()
  scores = np.asarray(scores, dtype=np.float64).ravel()
  if labels.shape != scores.shape:
    raise ValueError(f'labels {labels.shape} and scores {scores.shape} differ in shape')
  n_pos = int(labels.sum())
  n_neg = labels.size - n_pos
  if n_pos == 0 or n_neg == 0:
    return float('nan')
  # (here: importing scipy.stats took prepare, which never calls this, half a second at start-up)
  from scipy import stats  # pylint: disable=g-import-not-at-top
  ranks = stats.rankdata(scores)
  return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def log_loss(labels, probabilities, eps: float = 1e-7) -> float:
  labels = np.asarray(labels, dtype=np.float64).ravel()
  p = np.clip(np.asarray(probabilities, dtype=np.float64).ravel(), eps, 1 - eps)
  return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))


class BinnedAuc:
  """ROC AUC of probabilities streamed in chunks, in memory that does not grow with the rows: positives and
  negatives are counted per bin of the score's logit, and pairs in one bin count half. `max_error` bounds the
  distance to `exact_auc` of the same rows (each same-bin pair is off by at most a half)."""

  def __init__(self, bins: int = 1 << 16, logit_range: float = 16.0):
    self.bins, self.logit_range = bins, logit_range
    self.positives = np.zeros(bins, np.int64)
    self.negatives = np.zeros(bins, np.int64)

  def add(self, labels, probabilities) -> None:
    labels = np.asarray(labels).astype(bool).ravel()
    p = np.asarray(probabilities, dtype=np.float64).ravel()
    if labels.shape != p.shape:
      raise ValueError(f'labels {labels.shape} and probabilities {p.shape} differ in shape')
    with np.errstate(divide='ignore'):
      logit = np.clip(np.log(p) - np.log1p(-p), -self.logit_range, self.logit_range)
    index = np.minimum(((logit + self.logit_range) * (self.bins / (2 * self.logit_range))).astype(np.int64),
                       self.bins - 1)
    self.positives += np.bincount(index[labels], minlength=self.bins)
    self.negatives += np.bincount(index[~labels], minlength=self.bins)

  def result(self) -> float:
    """NaN when a class is absent."""
    n_pos, n_neg = self.positives.sum(), self.negatives.sum()
    if n_pos == 0 or n_neg == 0:
      return float('nan')
    negatives_below = np.cumsum(self.negatives) - self.negatives
    return float((self.positives * negatives_below).sum() + 0.5 * (self.positives * self.negatives).sum()) / (
        n_pos * n_neg)

  def max_error(self) -> float:
    n_pos, n_neg = self.positives.sum(), self.negatives.sum()
    if n_pos == 0 or n_neg == 0:
      return 0.0
    return float(0.5 * (self.positives * self.negatives).sum() / (n_pos * n_neg))
