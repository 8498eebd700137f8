"""Attention with a size prior (the variant pfmsmtrec_sized): a_kj = softmax_j(cos(u_k, u_j) / tau + log n_j).

n_j is client j's example count of the round, so a scenario borrows from the others in proportion to their
rows: a small scenario's mix leans on the large ones, a large one keeps mostly its own. With clients of equal
size the prior is a constant and this is the specification's attention.
"""

from __future__ import annotations

import tensorflow as tf

from federated.personalization import attention

DESCRIPTION = 'client k receives softmax_j(cos(u_k, u_j) / tau + log n_j) of each client j\'s update (--tau)'
_MIN_COUNT = 1.0  # a client that trained on nothing this round gets the weight of one example, not -inf


def mixing_weights(updates: tf.Tensor, counts: tf.Tensor, cfg) -> tf.Tensor:
  prior = tf.math.log(tf.maximum(tf.cast(counts, tf.float32), _MIN_COUNT))
  return tf.nn.softmax(attention.cosine_matrix(updates) / cfg.tau + prior[tf.newaxis, :], axis=1)
