"""Template-based aggregation: a `tff.aggregators` factory for the global and personalized parameters.

Global updates get the example-weighted mean of an inner factory (by default `tff.aggregators.MeanFactory`,
which a differentially private factory can replace). Each personalized group arrives as a [K, D] matrix in
which client k filled row k (so one `federated_sum` gathers the K individual updates at the server, which
personalized aggregation needs, as in ALGORITHM.md); the server coordinates conflicts between the rows
(a method of federated/conflicts/) and returns to each client its combination of all rows (a rule of
federated/personalization/).
"""

from __future__ import annotations

import collections
from typing import Dict, Mapping

import tensorflow as tf
import tensorflow_federated as tff

from federated import conflicts
from federated import personalization
from federated.config import AggregationConfig
from federated.personalization.attention import cosine_matrix

GLOBAL, PERSONALIZED, COUNTS = 'global', 'personalized', 'counts'


# ------------------------------------------------------------------------------------------ one group


def personalize(updates: tf.Tensor, counts: tf.Tensor, cfg: AggregationConfig) -> tf.Tensor:
  """Row k of the result is what client k adds to its own personalized parameters."""
  return tf.matmul(personalization.get(cfg.personalization)(updates, counts, cfg), updates)


def aggregate_group(updates: tf.Tensor, counts: tf.Tensor, conflict: str, seed: tf.Tensor,
                    cfg: AggregationConfig) -> tf.Tensor:
  return aggregate_group_with_stats(updates, counts, conflict, seed, cfg)[0]


def aggregate_group_with_stats(updates: tf.Tensor, counts: tf.Tensor, conflict: str, seed: tf.Tensor,
                               cfg: AggregationConfig, rule: str | None = None, state=None):
  """The group's [K, D] result, the measurements of each step (federated/telemetry.py reads them) and the
  rule's new state (personalization.initial_state: empty for a rule without one).

  The personalization `rule` (default --personalization) mixes the coordinated updates; a rule on
  parameters mixes state['offsets'] + coordinated updates (each client's parameters less their common
  start), and row k of the result is client k's new offset less its old one; a rule with hyper-weights
  (FedHCA2) adds to each update hyper_k times its row of the rule's base combination, each hyper_k first
  moved by --hyper_lr times <what was added to client k last round, its update now> (its next update going
  the same way says more of it helps), within [0, 1].
  """
  rule = rule or cfg.personalization
  kind = personalization.kind(rule)
  if state is None:  # a single round from the rule's starting state
    state = personalization.initial_state(rule, updates.shape, cfg)
  coordinated, conflict_stats = conflicts.get(conflict)(updates, seed, cfg)
  new_state = collections.OrderedDict()
  if kind == personalization.ON_PARAMETERS:
    mixed = state['offsets'] + coordinated
    weights = personalization.get(rule)(mixed, counts, cfg)
    result = tf.matmul(weights, mixed) - state['offsets']
    new_state['offsets'] = state['offsets'] + result
  elif kind == personalization.HYPER:
    hyper = tf.clip_by_value(
        state['hyper'] + cfg.hyper_lr * tf.reduce_sum(state['added'] * coordinated, axis=1), 0.0, 1.0)
    base = personalization.module(rule).base(coordinated, counts, cfg)
    weights = tf.eye(tf.shape(base)[0], dtype=base.dtype) + hyper[:, tf.newaxis] * base
    new_state['hyper'], new_state['added'] = hyper, tf.matmul(base, coordinated)
    result = tf.matmul(weights, coordinated)
  else:
    weights = personalization.get(rule)(coordinated, counts, cfg)
    result = tf.matmul(weights, coordinated)
  stats = collections.OrderedDict(
      update_norm=tf.norm(updates, axis=1), cosine_before=cosine_matrix(updates),
      cosine_after=cosine_matrix(coordinated), attention=weights)
  stats.update(conflict_stats)
  return result, stats, new_state


# ------------------------------------------------------------------------------------------ the factory


class TemplateAggregationFactory(tff.aggregators.WeightedAggregationFactory):
  """Aggregates <global, personalized: {group: [K, D]}, counts: [K]> client values by the template's roles.

  Args:
    group_conflicts: each personalized group key to its conflict method (a name of federated/conflicts/;
      experts: --conflict, towers: --tower_conflict, see `group_conflicts`).
    cfg: the aggregation settings (personalization rule, tau, CAGrad's parameters).
    global_factory: aggregates the global updates (default: the example-weighted mean; a differentially
      private factory, weighted or not, may replace it).

  `create(value_type, weight_type)` returns a `tff.templates.AggregationProcess` whose result at the server
  is <global: mean update, personalized: {group: [K, D], row k what client k adds}> and whose measurements
  hold the global factory's (DP's, for instance) and, per group, what coordination and personalization did
  (`aggregate_group_with_stats`; federated/telemetry.py reads them).
  """

  def __init__(self, group_conflicts: Mapping[str, str], cfg: AggregationConfig = AggregationConfig(),
               global_factory: tff.aggregators.WeightedAggregationFactory |
               tff.aggregators.UnweightedAggregationFactory | None = None,
               group_rules: Mapping[str, str] | None = None):
    self._conflicts = dict(group_conflicts)
    self._rules = {g: (group_rules or {}).get(g, cfg.personalization) for g in self._conflicts}
    self._cfg = cfg
    self._global_factory = global_factory or tff.aggregators.MeanFactory()

  def create(self, value_type, weight_type) -> tff.templates.AggregationProcess:
    has_global = len(value_type[GLOBAL]) > 0
    groups = list(self._conflicts)
    weighted = isinstance(self._global_factory, tff.aggregators.WeightedAggregationFactory)
    global_process = None
    if has_global:  # an unweighted factory (differential privacy) ignores the example counts
      global_process = (self._global_factory.create(value_type[GLOBAL], weight_type) if weighted
                        else self._global_factory.create(value_type[GLOBAL]))
    cfg, conflicts = self._cfg, self._conflicts
    personalized_type = value_type[PERSONALIZED]
    counts_type = value_type[COUNTS]

    @tff.tensorflow.computation
    def zero_round():
      return tf.constant(0, tf.int32)

    # A rule with state (FedAMP's offsets, FedHCA2's hyper-weights) keeps it in the aggregator's state.
    rules = self._rules

    @tff.tensorflow.computation
    def initial_rule_state():
      return collections.OrderedDict(
          (g, personalization.initial_state(rules[g], personalized_type[g].shape, cfg)) for g in groups)

    @tff.federated_computation
    def init_fn():
      global_state = global_process.initialize() if has_global else tff.federated_value((), tff.SERVER)
      return tff.federated_zip(collections.OrderedDict(
          global_state=global_state, round=tff.federated_eval(zero_round, tff.SERVER),
          rules=tff.federated_eval(initial_rule_state, tff.SERVER)))

    @tff.tensorflow.computation(personalized_type, counts_type, tf.int32, initial_rule_state.type_signature.result)
    def server_personalize(matrices, counts, round_num, rule_state):
      out = collections.OrderedDict(
          (g, aggregate_group_with_stats(matrices[g], counts, conflicts[g], round_num, cfg, rules[g], rule_state[g]))
          for g in groups)
      return collections.OrderedDict(result=collections.OrderedDict((g, r) for g, (r, _, _) in out.items()),
                                     stats=collections.OrderedDict((g, m) for g, (_, m, _) in out.items()),
                                     rules=collections.OrderedDict((g, st) for g, (_, _, st) in out.items()))

    @tff.tensorflow.computation(tf.int32)
    def increment(r):
      return r + 1

    @tff.federated_computation(init_fn.type_signature.result, tff.FederatedType(value_type, tff.CLIENTS),
                               tff.FederatedType(weight_type, tff.CLIENTS))
    def next_fn(state, value, weight):
      measurements = collections.OrderedDict()
      if has_global:
        out = (global_process.next(state.global_state, value[GLOBAL], weight) if weighted
               else global_process.next(state.global_state, value[GLOBAL]))
        global_state, global_result = out.state, out.result
        measurements['global'] = out.measurements
      else:
        global_state, global_result = state.global_state, tff.federated_value((), tff.SERVER)
      if groups:
        gathered = tff.federated_sum(value[PERSONALIZED])
        counts = tff.federated_sum(value[COUNTS])
        personalized_out = tff.federated_map(server_personalize, (gathered, counts, state.round, state.rules))
        personalized = personalized_out.result
        measurements['personalized'] = personalized_out.stats
        rule_state = personalized_out.rules
      else:
        personalized = tff.federated_value(collections.OrderedDict(), tff.SERVER)
        rule_state = state.rules
      new_state = tff.federated_zip(collections.OrderedDict(
          global_state=global_state, round=tff.federated_map(increment, state.round), rules=rule_state))
      result = tff.federated_zip(collections.OrderedDict([(GLOBAL, global_result), (PERSONALIZED, personalized)]))
      return tff.templates.MeasuredProcessOutput(
          state=new_state, result=result,
          measurements=tff.federated_zip(measurements) if measurements else tff.federated_value((), tff.SERVER))

    return tff.templates.AggregationProcess(init_fn, next_fn)


def group_key(group: str) -> str:
  """A template group ('tower/ctr') as a struct field name."""
  return group.replace('/', '__')


def group_conflicts(groups, cfg: AggregationConfig) -> Dict[str, str]:
  return {group_key(g): (cfg.tower_conflict if g.startswith('tower/') else cfg.conflict) for g in groups}


def group_rules(groups, cfg: AggregationConfig) -> Dict[str, str]:
  """Each group's personalization rule: the towers' own (--tower_personalization) where one is set."""
  tower = cfg.tower_personalization or cfg.personalization
  return {group_key(g): (tower if g.startswith('tower/') else cfg.personalization) for g in groups}
