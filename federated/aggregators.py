"""Template-based aggregation: a `tff.aggregators` factory for the global and personalized parameters.

Global updates get the example-weighted mean of an inner factory (by default `tff.aggregators.MeanFactory`,
which a differentially private factory can replace). Each personalized group arrives as a [K, D] matrix in
which client k filled row k (so one `federated_sum` gathers the K individual updates at the server, which
personalized aggregation needs, as in ALGORITHM.md); the server coordinates conflicts between the rows
(PCGrad or CAGrad) and returns to each client the attention-weighted combination of all rows.
"""

from __future__ import annotations

import collections
from typing import Dict, Mapping

import tensorflow as tf
import tensorflow_federated as tff

from federated.config import AggregationConfig

GLOBAL, PERSONALIZED, COUNTS = 'global', 'personalized', 'counts'
_EPS = 1e-12


# ------------------------------------------------------------------------------------------ the update math


def pcgrad(updates: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
  """PCGrad across clients: each row loses its component along every other row it conflicts with.

  For each k and each j != k in a pseudo-random order fixed by `seed`: if <u_k, u_j> < 0 then
  u_k <- u_k - <u_k, u_j> / ||u_j||^2 u_j, against the original u_j.
  """
  k_static = updates.shape[0]
  order = tf.random.experimental.stateless_shuffle(tf.range(k_static), seed=tf.stack([seed, 17]))
  sq_norms = tf.reduce_sum(updates * updates, axis=1)
  rows = []
  for k in range(k_static):
    u = updates[k]
    for p in range(k_static):
      j = order[p]
      other = tf.gather(updates, j)
      dot = tf.reduce_sum(u * other)
      project = tf.logical_and(tf.logical_and(tf.not_equal(j, k), dot < 0), tf.gather(sq_norms, j) > _EPS)
      u = tf.where(project, u - dot / tf.maximum(tf.gather(sq_norms, j), _EPS) * other, u)
    rows.append(u)
  return tf.stack(rows)


def cagrad(updates: tf.Tensor, c: float, alpha: float, steps: int) -> tf.Tensor:
  """CAGrad across clients: every row moves by alpha (d - g0) towards the conflict-averse direction d.

  g0 is the mean row; w on the simplex minimizes g_w . g0 + c ||g0|| ||g_w|| (g_w = sum_k w_k u_k), solved by
  gradient descent on softmax logits; d = g0 + c ||g0|| / ||g_w|| g_w.
  """
  k_static = updates.shape[0]
  gram = tf.matmul(updates, updates, transpose_b=True)
  mean_w = tf.fill([k_static], 1.0 / k_static)
  g0_norm = tf.sqrt(tf.maximum(tf.tensordot(mean_w, tf.linalg.matvec(gram, mean_w), 1), 0.0))
  scale = tf.maximum(tf.reduce_max(tf.abs(gram)), _EPS)

  def objective(logits):
    w = tf.nn.softmax(logits)
    gw_g0 = tf.tensordot(w, tf.linalg.matvec(gram, mean_w), 1)
    gw_norm = tf.sqrt(tf.maximum(tf.tensordot(w, tf.linalg.matvec(gram, w), 1), _EPS))
    return (gw_g0 + c * g0_norm * gw_norm) / scale

  logits = tf.zeros([k_static])
  for _ in range(steps):
    with tf.GradientTape() as tape:
      tape.watch(logits)
      value = objective(logits)
    logits = logits - 1.0 * tape.gradient(value, logits)
  w = tf.nn.softmax(logits)
  g0 = tf.reduce_mean(updates, axis=0)
  gw = tf.linalg.matvec(updates, w, transpose_a=True)
  gw_norm = tf.norm(gw)
  d = g0 + tf.math.divide_no_nan(c * g0_norm, gw_norm) * gw
  return updates + alpha * (d - g0)[tf.newaxis, :]


def coordinate(updates: tf.Tensor, method: str, seed: tf.Tensor, cfg: AggregationConfig) -> tf.Tensor:
  if method == 'pcgrad':
    return pcgrad(updates, seed)
  if method == 'cagrad':
    return cagrad(updates, cfg.cagrad_c, cfg.cagrad_alpha, cfg.cagrad_steps)
  if method == 'none':
    return updates
  raise ValueError(f'unknown conflict method {method!r}')


def attention_weights(updates: tf.Tensor, tau: float) -> tf.Tensor:
  """a_kj = softmax_j(cos(u_k, u_j) / tau)."""
  unit = tf.math.l2_normalize(updates, axis=1, epsilon=_EPS)
  return tf.nn.softmax(tf.matmul(unit, unit, transpose_b=True) / tau, axis=1)


def personalize(updates: tf.Tensor, counts: tf.Tensor, cfg: AggregationConfig) -> tf.Tensor:
  """Row k of the result is what client k adds to its own personalized parameters."""
  if cfg.personalization == 'attention':
    weights = attention_weights(updates, cfg.tau)
  else:  # example-weighted mean, the same for every client
    mean = counts / tf.maximum(tf.reduce_sum(counts), _EPS)
    weights = tf.tile(mean[tf.newaxis, :], [updates.shape[0], 1])
  return tf.matmul(weights, updates)


def aggregate_group(updates: tf.Tensor, counts: tf.Tensor, conflict: str, seed: tf.Tensor,
                    cfg: AggregationConfig) -> tf.Tensor:
  return personalize(coordinate(updates, conflict, seed, cfg), counts, cfg)


# ------------------------------------------------------------------------------------------ the factory


class TemplateAggregationFactory(tff.aggregators.WeightedAggregationFactory):
  """Aggregates <global, personalized: {group: [K, D]}, counts: [K]> client values by the template's roles.

  `group_conflicts` maps each personalized group key to its conflict method (experts: pcgrad, towers: none by
  default). The result at the server is <global: weighted mean update, personalized: {group: [K, D]}>.
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

    @tff.federated_computation
    def init_fn():
      global_state = global_process.initialize() if has_global else tff.federated_value((), tff.SERVER)
      return tff.federated_zip(collections.OrderedDict(
          global_state=global_state, round=tff.federated_eval(zero_round, tff.SERVER)))

    @tff.tensorflow.computation(personalized_type, counts_type, tf.int32)
    def server_personalize(matrices, counts, round_num):
      return collections.OrderedDict(
          (g, aggregate_group(matrices[g], counts, conflicts[g], round_num, cfg)) for g in groups)

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
        personalized = tff.federated_map(server_personalize, (gathered, counts, state.round))
      else:
        personalized = tff.federated_value(collections.OrderedDict(), tff.SERVER)
      new_state = tff.federated_zip(collections.OrderedDict(
          global_state=global_state, round=tff.federated_map(increment, state.round)))
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
