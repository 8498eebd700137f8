"""Personalization rules: one module per rule, each defining `mixing_weights` with one signature.

    mixing_weights(updates: [K, D] tf.Tensor, counts: [K] tf.Tensor, cfg: AggregationConfig) -> [K, K]

Row k says how much of each client's (coordinated) update client k receives (`--personalization`). A rule
whose module sets `ON_PARAMETERS = True` mixes the clients' parameters instead (FedAMP): it is given each
client's parameters as their offset from the common start (the rows begin equal), and client k's new
parameters are row k of the product.
"""

from __future__ import annotations

from federated.registry import ModuleRegistry

_REGISTRY = ModuleRegistry(__name__, __path__, 'personalization rule', 'mixing_weights')
names = _REGISTRY.names
get = _REGISTRY.get


def on_parameters(name: str) -> bool:
  return bool(getattr(_REGISTRY.module(name), 'ON_PARAMETERS', False))
