"""ALGORITHM.md's attention weights, applied to the clients' parameters instead of their updates.

The specification adds to client k's personalized parameters the mix of every client's update, so clients
that start apart stay apart: nothing ever pulls them back together, and the updates' cosines fall towards 0
as they drift (docs/CHOICES.md, telemetry). Here client k's new parameters are the same mix of every
client's parameters after its update, sum_j a_kj (w_j + u_j), which also pulls k towards its peers, by as
much as the weights give them. Weights as in the specification: a_kj = softmax_j(cos(u_k, u_j) / tau) of
the coordinated updates. The variant `pfmsmtrec_param_mix` uses it (issue 14).
"""

from __future__ import annotations

from federated.personalization import attention

DESCRIPTION = ('client k gets softmax_j(cos(u_k, u_j) / tau) of each client j\'s parameters after its '
               'update (--tau), not of its update')
ON_PARAMETERS = True
WEIGHTS_FROM_UPDATES = True


def mixing_weights(updates, counts, cfg):
  del counts
  return attention.attention_weights(updates, cfg.tau)
