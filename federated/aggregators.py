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
  return pcgrad_with_stats(updates, seed)[0]


def pcgrad_with_stats(updates: tf.Tensor, seed: tf.Tensor):
  """`pcgrad`, and what it did: the number of projections and the norm each row lost."""
  k_static = updates.shape[0]
  order = tf.random.experimental.stateless_shuffle(tf.range(k_static), seed=tf.stack([seed, 17]))
  sq_norms = tf.reduce_sum(updates * updates, axis=1)
  rows = []
  projections = tf.constant(0, tf.int32)
  for k in range(k_static):
    u = updates[k]
    for p in range(k_static):
      j = order[p]
      other = tf.gather(updates, j)
      dot = tf.reduce_sum(u * other)
      project = tf.logical_and(tf.logical_and(tf.not_equal(j, k), dot < 0), tf.gather(sq_norms, j) > _EPS)
      u = tf.where(project, u - dot / tf.maximum(tf.gather(sq_norms, j), _EPS) * other, u)
      projections += tf.cast(project, tf.int32)
    rows.append(u)
  out = tf.stack(rows)
  return out, collections.OrderedDict(pcgrad_projections=projections,
                                      pcgrad_removed_norm=tf.norm(updates - out, axis=1))


def project_to_simplex(v: tf.Tensor) -> tf.Tensor:
  """Euclidean projection onto {w >= 0, sum w = 1} (sort-based, exact)."""
  k = v.shape[0]
  u = tf.sort(v, direction='DESCENDING')
  css = tf.cumsum(u)
  positions = tf.range(1, k + 1, dtype=v.dtype)
  support = u - (css - 1.0) / positions > 0
  rho = tf.reduce_max(tf.where(support, tf.range(k), -1))
  theta = (tf.gather(css, rho) - 1.0) / tf.cast(rho + 1, v.dtype)
  return tf.maximum(v - theta, 0.0)


def cagrad_weights(gram: tf.Tensor, c: float, max_iterations: int, tolerance: float = 1e-12) -> tf.Tensor:
  """The simplex weights w minimising F(w) = w.G m + c sqrt(m.G m) sqrt(w.G w) (m the uniform weights).

  F is convex; projected gradient descent with a backtracking step size, in float64, run until the iterate
  moves less than `tolerance` (or `max_iterations`). K is the number of clients, so each step is tiny.
  """
  g = tf.cast(gram, tf.float64)
  k = g.shape[0]
  g = g / tf.maximum(tf.reduce_max(tf.abs(g)), 1e-30)
  mean_w = tf.fill([k], tf.constant(1.0 / k, tf.float64))
  b = tf.linalg.matvec(g, mean_w)
  beta = c * tf.sqrt(tf.maximum(tf.tensordot(mean_w, b, 1), 0.0))

  def value(w):
    return tf.tensordot(w, b, 1) + beta * tf.sqrt(tf.maximum(tf.tensordot(w, tf.linalg.matvec(g, w), 1), 1e-30))

  def gradient(w):
    gw = tf.linalg.matvec(g, w)
    return b + beta * gw / tf.sqrt(tf.maximum(tf.tensordot(w, gw, 1), 1e-30))

  def step(i, w, lipschitz, moved):
    del moved
    grad, f_w = gradient(w), value(w)

    def too_long(lip, candidate):
      bound = f_w + tf.tensordot(grad, candidate - w, 1) + 0.5 * lip * tf.reduce_sum(tf.square(candidate - w))
      return tf.logical_and(value(candidate) > bound + 1e-15, lip < 1e12)

    lip = lipschitz * 0.5
    candidate = project_to_simplex(w - grad / lip)
    lip, candidate = tf.while_loop(
        too_long, lambda lip, _: (lip * 2.0, project_to_simplex(w - grad / (lip * 2.0))), (lip, candidate))
    return i + 1, candidate, lip, tf.norm(candidate - w)

  _, w, _, _ = tf.while_loop(
      lambda i, w, lip, moved: tf.logical_and(i < max_iterations, moved > tolerance), step,
      (tf.constant(0), mean_w, tf.constant(1.0, tf.float64), tf.constant(1.0, tf.float64)))
  return tf.cast(w, gram.dtype)


def cagrad(updates: tf.Tensor, c: float, alpha: float, max_iterations: int) -> tf.Tensor:
  """CAGrad across clients: every row moves by alpha (d - g0) towards the conflict-averse direction d."""
  return cagrad_with_stats(updates, c, alpha, max_iterations)[0]


def cagrad_with_stats(updates: tf.Tensor, c: float, alpha: float, max_iterations: int):
  """`cagrad`, and its simplex weights w and |d - g0|.

  g0 is the mean row; w minimises g_w . g0 + c ||g0|| ||g_w|| (g_w = sum_k w_k u_k) over the simplex
  (`cagrad_weights`); d = g0 + c ||g0|| / ||g_w|| g_w.
  """
  gram = tf.matmul(updates, updates, transpose_b=True)
  w = cagrad_weights(gram, c, max_iterations)
  g0 = tf.reduce_mean(updates, axis=0)
  gw = tf.linalg.matvec(updates, w, transpose_a=True)
  shift = tf.math.divide_no_nan(c * tf.norm(g0), tf.norm(gw)) * gw
  return updates + alpha * shift[tf.newaxis, :], collections.OrderedDict(cagrad_weights=w,
                                                                         cagrad_shift_norm=tf.norm(shift))


def coordinate(updates: tf.Tensor, method: str, seed: tf.Tensor, cfg: AggregationConfig) -> tf.Tensor:
  return coordinate_with_stats(updates, method, seed, cfg)[0]


def coordinate_with_stats(updates: tf.Tensor, method: str, seed: tf.Tensor, cfg: AggregationConfig):
  if method == 'pcgrad':
    return pcgrad_with_stats(updates, seed)
  if method == 'cagrad':
    return cagrad_with_stats(updates, cfg.cagrad_c, cfg.cagrad_alpha, cfg.cagrad_steps)
  if method == 'none':
    return updates, collections.OrderedDict()
  raise ValueError(f'unknown conflict method {method!r}')


def cosine_matrix(updates: tf.Tensor) -> tf.Tensor:
  unit = tf.math.l2_normalize(updates, axis=1, epsilon=_EPS)
  return tf.matmul(unit, unit, transpose_b=True)


def attention_weights(updates: tf.Tensor, tau: float) -> tf.Tensor:
  """a_kj = softmax_j(cos(u_k, u_j) / tau)."""
  return tf.nn.softmax(cosine_matrix(updates) / tau, axis=1)


def mixing_weights(updates: tf.Tensor, counts: tf.Tensor, cfg: AggregationConfig) -> tf.Tensor:
  """[K, K]: row k says how much of each client's update client k receives."""
  if cfg.personalization == 'attention':
    return attention_weights(updates, cfg.tau)
  mean = counts / tf.maximum(tf.reduce_sum(counts), _EPS)  # example-weighted mean, the same for every client
  return tf.tile(mean[tf.newaxis, :], [updates.shape[0], 1])


def personalize(updates: tf.Tensor, counts: tf.Tensor, cfg: AggregationConfig) -> tf.Tensor:
  """Row k of the result is what client k adds to its own personalized parameters."""
  return tf.matmul(mixing_weights(updates, counts, cfg), updates)


def aggregate_group(updates: tf.Tensor, counts: tf.Tensor, conflict: str, seed: tf.Tensor,
                    cfg: AggregationConfig) -> tf.Tensor:
  return aggregate_group_with_stats(updates, counts, conflict, seed, cfg)[0]


def aggregate_group_with_stats(updates: tf.Tensor, counts: tf.Tensor, conflict: str, seed: tf.Tensor,
                               cfg: AggregationConfig):
  """The group's [K, D] result and the measurements of each step (federated/telemetry.py reads them)."""
  coordinated, conflict_stats = coordinate_with_stats(updates, conflict, seed, cfg)
  weights = mixing_weights(coordinated, counts, cfg)
  stats = collections.OrderedDict(
      update_norm=tf.norm(updates, axis=1), cosine_before=cosine_matrix(updates),
      cosine_after=cosine_matrix(coordinated), attention=weights)
  stats.update(conflict_stats)
  return tf.matmul(weights, coordinated), stats


# ------------------------------------------------------------------------------------------ the factory


class TemplateAggregationFactory(tff.aggregators.WeightedAggregationFactory):
  """Aggregates <global, personalized: {group: [K, D]}, counts: [K]> client values by the template's roles.

  `group_conflicts` maps each personalized group key to its conflict method (experts: pcgrad, towers: none by
  default). The result at the server is <global: weighted mean update, personalized: {group: [K, D]}>; the
  measurements hold the global factory's (DP's, for instance) and, per group, what coordination and
  personalization did (`aggregate_group_with_stats`).
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
      out = collections.OrderedDict(
          (g, aggregate_group_with_stats(matrices[g], counts, conflicts[g], round_num, cfg)) for g in groups)
      return collections.OrderedDict(result=collections.OrderedDict((g, r) for g, (r, _) in out.items()),
                                     stats=collections.OrderedDict((g, m) for g, (_, m) in out.items()))

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
        personalized_out = tff.federated_map(server_personalize, (gathered, counts, state.round))
        personalized = personalized_out.result
        measurements['personalized'] = personalized_out.stats
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
