"""Personalization rules: one module per rule, each defining `mixing_weights` with one signature.

    mixing_weights(updates: [K, D] tf.Tensor, counts: [K] tf.Tensor, cfg: AggregationConfig) -> [K, K]

Row k says how much of each client's (coordinated) update client k receives (`--personalization`). Two
kinds of rule keep state between rounds in the aggregator (federated/aggregators.py):
- `ON_PARAMETERS = True` (FedAMP): mixes the clients' parameters, given as their offsets from the common
  start (the rows begin equal), which the aggregator keeps; client k's new parameters are row k of the mix;
- `HYPER = True` (FedHCA2): defines `base(updates, counts, cfg) -> [K, K]`; client k receives its update
  plus hyper_k times its row of base @ updates, hyper_k a per-client weight in [0, 1] learned from the
  next round's update (--hyper_lr, --hyper_init). Its `mixing_weights` is that with every hyper_k = 1;
- `SMOOTHED = True` (attention_smoothed): its `mixing_weights` sees each client's updates averaged over
  rounds, m_k <- momentum m_k + (1 - momentum) u_k (--similarity_momentum), which the aggregator keeps; the
  weights mix this round's updates.
"""

from __future__ import annotations

import collections

from federated.registry import ModuleRegistry

_REGISTRY = ModuleRegistry(__name__, __path__, 'personalization rule', 'mixing_weights')
names = _REGISTRY.names
get = _REGISTRY.get


ON_PARAMETERS, HYPER, SMOOTHED, STATELESS = 'parameters', 'hyper', 'smoothed', 'stateless'
module = _REGISTRY.module


def kind(name: str) -> str:
  m = _REGISTRY.module(name)
  for flag, value in (('ON_PARAMETERS', ON_PARAMETERS), ('HYPER', HYPER), ('SMOOTHED', SMOOTHED)):
    if getattr(m, flag, False):
      return value
  return STATELESS


def initial_state(name: str, shape, cfg) -> collections.OrderedDict:
  """What the aggregator keeps for a group of this rule, [K, D] its updates' shape: zero offsets for a rule on
  parameters; the starting hyper-weights and zero added directions for a rule with hyper-weights; zero
  averaged updates for a rule on smoothed updates."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top  (the rule names are read before TF loads)
  k, d = shape
  if kind(name) == ON_PARAMETERS:
    return collections.OrderedDict(offsets=tf.zeros([k, d]))
  if kind(name) == HYPER:
    return collections.OrderedDict(hyper=tf.fill([k], tf.constant(cfg.hyper_init, tf.float32)),
                                   added=tf.zeros([k, d]))
  if kind(name) == SMOOTHED:
    return collections.OrderedDict(smoothed=tf.zeros([k, d]))
  return collections.OrderedDict()
