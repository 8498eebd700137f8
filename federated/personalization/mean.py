"""No personalization: every client receives the example-weighted mean update (the no_personalization ablation)."""

from __future__ import annotations

import tensorflow as tf

DESCRIPTION = 'every client receives the example-weighted mean of the updates'
_EPS = 1e-12


def mixing_weights(updates: tf.Tensor, counts: tf.Tensor, cfg=None) -> tf.Tensor:
  del cfg
  mean = counts / tf.maximum(tf.reduce_sum(counts), _EPS)
  return tf.tile(mean[tf.newaxis, :], [updates.shape[0], 1])
