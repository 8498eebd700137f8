"""Attention on updates smoothed over rounds: a_kj = softmax_j(cos(m_k, m_j) / tau), m_k client k's coordinated
updates' moving average (--similarity_momentum, kept by the aggregator), applied to this round's updates as
ALGORITHM.md step 3b does. One round's updates are noisy: their cosines fall to about 0 within a few rounds,
after which the specification's attention is a constant mix (docs/CHOICES.md); a direction a scenario keeps
over rounds survives the average. Round 1 equals `attention` (m is then a multiple of the update).
"""

from __future__ import annotations

import tensorflow as tf

from federated.personalization import attention

DESCRIPTION = ('client k receives softmax_j(cos(m_k, m_j) / tau) of each client j\'s update, m the clients\' '
               'updates averaged over rounds (--tau, --similarity_momentum)')
SMOOTHED = True


def mixing_weights(smoothed: tf.Tensor, counts: tf.Tensor, cfg) -> tf.Tensor:
  del counts
  return attention.attention_weights(smoothed, cfg.tau)
