"""Personalization rules: one module per rule, each defining `mixing_weights` with one signature.

    mixing_weights(updates: [K, D] tf.Tensor, counts: [K] tf.Tensor, cfg: AggregationConfig) -> [K, K]

Row k says how much of each client's (coordinated) update client k receives (`--personalization`).
"""

from __future__ import annotations

from federated.registry import ModuleRegistry

_REGISTRY = ModuleRegistry(__name__, __path__, 'personalization rule', 'mixing_weights')
names = _REGISTRY.names
get = _REGISTRY.get
