"""Personalization rules: one module per rule, each defining `mixing_weights` with one signature.

    mixing_weights(updates: [K, D] tf.Tensor, counts: [K] tf.Tensor, cfg: AggregationConfig) -> [K, K]

Row k says how much of each client's (coordinated) update client k receives (`--personalization`). Two
kinds of rule keep state between rounds in the aggregator (federated/aggregators.py):
- `ON_PARAMETERS = True` (FedAMP): mixes the clients' parameters, given as their offsets from the common
  start (the rows begin equal), which the aggregator keeps; client k's new parameters are row k of the mix;
- `HYPER = True` (FedHCA2): defines `base(updates, counts, cfg) -> [K, K]`; client k receives its update
  plus hyper_k times its row of base @ updates, hyper_k a per-client weight in [0, 1] learned from the
  next round's update (--hyper_lr, --hyper_init). Its `mixing_weights` is that with every hyper_k = 1.
"""

from __future__ import annotations

import collections

from federated.registry import ModuleRegistry

_REGISTRY = ModuleRegistry(__name__, __path__, 'personalization rule', 'mixing_weights')
names = _REGISTRY.names
get = _REGISTRY.get


ON_PARAMETERS, HYPER, STATELESS = 'parameters', 'hyper', 'stateless'
module = _REGISTRY.module


def kind(name: str) -> str:
  m = _REGISTRY.module(name)
  return ON_PARAMETERS if getattr(m, 'ON_PARAMETERS', False) else HYPER if getattr(m, 'HYPER', False) else STATELESS


def initial_state(name: str, shape, cfg) -> collections.OrderedDict:
  """What the aggregator keeps for a group of this rule, [K, D] its updates' shape: zero offsets for a rule on
  parameters; the starting hyper-weights and zero added directions for a rule with hyper-weights."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top  (the rule names are read before TF loads)
  k, d = shape
  if kind(name) == ON_PARAMETERS:
    return collections.OrderedDict(offsets=tf.zeros([k, d]))
  if kind(name) == HYPER:
    return collections.OrderedDict(hyper=tf.fill([k], tf.constant(cfg.hyper_init, tf.float32)),
                                   added=tf.zeros([k, d]))
  return collections.OrderedDict()
