"""Attention with a learned strength per client (issue 14): client k receives its update plus hyper_k times
(its attention mix less its own update), the mix that of --personalization=attention, softmax_j(cos / tau).

hyper_k = 1 is PF-MSMTrec's attention, hyper_k = 0 local training; each hyper_k is learned from the next
round's update as FedHCA2 learns its hyper-weights (federated/aggregators.py): a client whose next update
goes on the way the mix moved it gets more of the mix, one that turns back gets less. So a scenario whose
data the others explain leans on them, and one they mislead keeps to itself.
"""

from __future__ import annotations

import tensorflow as tf

from federated.personalization import attention

DESCRIPTION = ('client k gets its update plus hyper_k times (its attention mix less its update), hyper_k learned '
               'from its next update (--tau, --hyper_lr, --hyper_init)')
HYPER = True


def base(updates: tf.Tensor, counts: tf.Tensor, cfg) -> tf.Tensor:
  """[K, K]: the attention weights less the identity (each row sums to 0)."""
  del counts
  return attention.attention_weights(updates, cfg.tau) - tf.eye(tf.shape(updates)[0], dtype=updates.dtype)


def mixing_weights(updates: tf.Tensor, counts: tf.Tensor, cfg) -> tf.Tensor:
  return attention.mixing_weights(updates, counts, cfg)
