"""FedHCA2's hyper conflict-averse aggregation (Lu et al., 2024), for the shared body (their encoder): client
k receives its own update plus hyper_k times the conflict-averse combination of all updates,
d = (g0 + c ||g0|| / ||g_w|| g_w) / (1 + c^2), g0 the mean update and w CAGrad's simplex weights
(federated/conflicts/cagrad.py, --cagrad_c). hyper_k is learned per client (federated/aggregators.py).
"""

from __future__ import annotations

import tensorflow as tf

from federated.conflicts import cagrad

DESCRIPTION = ('client k gets its update plus hyper_k times the conflict-averse combination of all updates, hyper_k '
               'learned from its next update (--cagrad_c, --hyper_lr, --hyper_init)')
HYPER = True


def base(updates: tf.Tensor, counts: tf.Tensor, cfg) -> tf.Tensor:
  """[K, K], every row the coefficients of d over the clients' updates."""
  del counts
  k = tf.shape(updates)[0]
  w = cagrad.simplex_weights(tf.matmul(updates, updates, transpose_b=True), cfg.cagrad_c, cfg.cagrad_steps)
  g0 = tf.reduce_mean(updates, axis=0)
  gw = tf.linalg.matvec(updates, w, transpose_a=True)
  lam = tf.math.divide_no_nan(cfg.cagrad_c * tf.norm(g0), tf.norm(gw))
  coefficients = (1.0 / tf.cast(k, updates.dtype) + lam * w) / (1.0 + cfg.cagrad_c ** 2)
  return tf.tile(coefficients[tf.newaxis, :], [k, 1])


def mixing_weights(updates: tf.Tensor, counts: tf.Tensor, cfg) -> tf.Tensor:
  return tf.eye(tf.shape(updates)[0], dtype=updates.dtype) + base(updates, counts, cfg)
