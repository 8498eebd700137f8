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
                               cfg: AggregationConfig, offsets: tf.Tensor | None = None):
  """The group's [K, D] result and the measurements of each step (federated/telemetry.py reads them).

  With `offsets` (each client's parameters less their common start, for a rule on parameters), the rule
  mixes offsets + coordinated updates, and row k of the result is client k's new offset less its old one.
  """
  coordinated, conflict_stats = conflicts.get(conflict)(updates, seed, cfg)
  mixed = coordinated if offsets is None else offsets + coordinated
  weights = personalization.get(cfg.personalization)(mixed, counts, cfg)
  stats = collections.OrderedDict(
      update_norm=tf.norm(updates, axis=1), cosine_before=cosine_matrix(updates),
      cosine_after=cosine_matrix(coordinated), attention=weights)
  stats.update(conflict_stats)
  result = tf.matmul(weights, mixed)
  return (result if offsets is None else result - offsets), stats


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
               tff.aggregators.UnweightedAggregationFactory | None = None):
    self._conflicts = dict(group_conflicts)
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

    # A rule on parameters (FedAMP) needs each client's parameters: the aggregator keeps their offsets from
    # the common start, the sum of every result it has returned.
    on_parameters = bool(groups) and personalization.on_parameters(cfg.personalization)

    @tff.tensorflow.computation
    def zero_offsets():
      return collections.OrderedDict((g, tf.zeros(personalized_type[g].shape, personalized_type[g].dtype))
                                     for g in groups)

    @tff.federated_computation
    def init_fn():
      global_state = global_process.initialize() if has_global else tff.federated_value((), tff.SERVER)
      parts = collections.OrderedDict(global_state=global_state, round=tff.federated_eval(zero_round, tff.SERVER))
      if on_parameters:
        parts['offsets'] = tff.federated_eval(zero_offsets, tff.SERVER)
      return tff.federated_zip(parts)

    def personalize_groups(matrices, counts, round_num, offsets):
      out = collections.OrderedDict(
          (g, aggregate_group_with_stats(matrices[g], counts, conflicts[g], round_num, cfg,
                                         offsets[g] if offsets is not None else None)) for g in groups)
      return collections.OrderedDict(result=collections.OrderedDict((g, r) for g, (r, _) in out.items()),
                                     stats=collections.OrderedDict((g, m) for g, (_, m) in out.items()))

    if on_parameters:
      offsets_type = zero_offsets.type_signature.result

      @tff.tensorflow.computation(personalized_type, counts_type, tf.int32, offsets_type)
      def server_personalize(matrices, counts, round_num, offsets):
        out = personalize_groups(matrices, counts, round_num, offsets)
        out['offsets'] = collections.OrderedDict((g, offsets[g] + out['result'][g]) for g in groups)
        return out
    else:
      @tff.tensorflow.computation(personalized_type, counts_type, tf.int32)
      def server_personalize(matrices, counts, round_num):
        return personalize_groups(matrices, counts, round_num, None)

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
        personalize_args = (gathered, counts, state.round) + ((state.offsets,) if on_parameters else ())
        personalized_out = tff.federated_map(server_personalize, personalize_args)
        personalized = personalized_out.result
        measurements['personalized'] = personalized_out.stats
      else:
        personalized = tff.federated_value(collections.OrderedDict(), tff.SERVER)
      parts = collections.OrderedDict(global_state=global_state, round=tff.federated_map(increment, state.round))
      if on_parameters:
        parts['offsets'] = personalized_out.offsets
      new_state = tff.federated_zip(parts)
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
