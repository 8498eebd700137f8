"""FedAMP (Huang et al., 2021): attentive message passing on parameters. Client k's new parameters are
sum_j xi_kj w_j, with xi_kj = alpha exp(-||w_k - w_j||^2 / sigma) / sigma for j != k (similar clients weigh
more) and xi_kk = 1 - sum_{j != k} xi_kj. Where the others' weights would sum past 1 they are scaled to sum
to 1, so that every row stays a convex combination.
"""

from __future__ import annotations

import tensorflow as tf

DESCRIPTION = ('client k gets sum_j xi_kj w_j of the clients\' parameters, xi_kj = alpha exp(-||w_k - w_j||^2 / '
               'sigma) / sigma, the rest on itself (--fedamp_alpha, --fedamp_sigma)')
ON_PARAMETERS = True


def squared_distances(params: tf.Tensor) -> tf.Tensor:
  """[K, K] ||w_k - w_j||^2, in float64 (the expansion cancels digits when the rows are close)."""
  x = tf.cast(params, tf.float64)
  sq = tf.reduce_sum(tf.square(x), axis=1)
  d2 = tf.maximum(sq[:, None] + sq[None, :] - 2.0 * tf.matmul(x, x, transpose_b=True), 0.0)
  return tf.cast(d2, params.dtype)


def mixing_weights(params: tf.Tensor, counts: tf.Tensor, cfg) -> tf.Tensor:
  del counts
  k = tf.shape(params)[0]
  others = cfg.fedamp_alpha * tf.exp(-squared_distances(params) / cfg.fedamp_sigma) / cfg.fedamp_sigma
  others *= 1.0 - tf.eye(k)
  total = tf.reduce_sum(others, axis=1, keepdims=True)
  others /= tf.maximum(total, 1.0)
  return others + tf.linalg.diag(1.0 - tf.reduce_sum(others, axis=1))
