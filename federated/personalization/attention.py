"""Attention personalization (ALGORITHM.md): a_kj = softmax_j(cos(u_k, u_j) / tau)."""

from __future__ import annotations

import tensorflow as tf

DESCRIPTION = 'client k receives softmax_j(cos(u_k, u_j) / tau) of each client j\'s update (--tau)'
_EPS = 1e-12


def cosine_matrix(updates: tf.Tensor) -> tf.Tensor:
  unit = tf.math.l2_normalize(updates, axis=1, epsilon=_EPS)
  return tf.matmul(unit, unit, transpose_b=True)


def attention_weights(updates: tf.Tensor, tau: float) -> tf.Tensor:
  return tf.nn.softmax(cosine_matrix(updates) / tau, axis=1)


def mixing_weights(updates: tf.Tensor, counts: tf.Tensor, cfg) -> tf.Tensor:
  del counts
  return attention_weights(updates, cfg.tau)
