"""FedHCA2's hyper cross-attention aggregation (Lu et al., 2024), for the task heads (their decoders): client
k receives its own update plus hyper_k times sum_j softmax_j(u_k . u_j / sqrt(D)) u_j, the attention of its
update over all updates. hyper_k is learned per client (federated/aggregators.py).
"""

from __future__ import annotations

import tensorflow as tf

DESCRIPTION = ('client k gets its update plus hyper_k times the cross-attention of its update over all updates, '
               'hyper_k learned from its next update (--hyper_lr, --hyper_init)')
HYPER = True


def base(updates: tf.Tensor, counts: tf.Tensor, cfg) -> tf.Tensor:
  """[K, K], row k the attention of update k over all updates (scaled dot products)."""
  del counts, cfg
  scale = tf.math.rsqrt(tf.cast(tf.shape(updates)[1], updates.dtype))
  return tf.nn.softmax(tf.matmul(updates, updates, transpose_b=True) * scale, axis=1)


def mixing_weights(updates: tf.Tensor, counts: tf.Tensor, cfg) -> tf.Tensor:
  return tf.eye(tf.shape(updates)[0], dtype=updates.dtype) + base(updates, counts, cfg)
