"""Conflict coordination and personalized aggregation on hand-made updates with known answers."""

import collections

import numpy as np
import tensorflow as tf
import tensorflow_federated as tff

from federated import aggregators as agg
from federated import conflicts, personalization
from federated.conflicts import cagrad, pcgrad
from federated.personalization import attention
from federated import runtime
from federated.config import AggregationConfig


def _t(rows):
  return tf.constant(rows, tf.float32)


class ConflictTest(tf.test.TestCase):

  def test_pcgrad_opposed_orthogonal_identical(self):
    seed = tf.constant(3)
    self.assertAllClose(pcgrad.project(_t([[1, 0], [-1, 0]]), seed)[0], [[0, 0], [0, 0]])
    self.assertAllClose(pcgrad.project(_t([[1, 0], [0, 2]]), seed)[0], [[1, 0], [0, 2]])
    self.assertAllClose(pcgrad.project(_t([[1, 2], [1, 2]]), seed)[0], [[1, 2], [1, 2]])

  def test_pcgrad_partial_conflict_projects_on_the_normal_plane(self):
    out = pcgrad.project(_t([[1, 1], [-1, 0]]), tf.constant(0))[0]
    self.assertAllClose(out, [[0, 1], [-0.5, 0.5]])
    # After projection no row conflicts with the original other row.
    self.assertAllGreaterEqual(tf.reduce_sum(out * _t([[-1, 0], [1, 1]]), axis=1), -1e-6)

  def test_pcgrad_three_clients_is_deterministic_per_seed(self):
    rng = np.random.default_rng(0)
    u = _t(rng.normal(size=(3, 5)))
    out = pcgrad.project(u, tf.constant(1))[0]
    self.assertEqual(out.shape, (3, 5))
    self.assertAllClose(pcgrad.project(u, tf.constant(1))[0], out)  # deterministic per seed

  def test_cagrad(self):
    cfg = AggregationConfig(conflict='cagrad', cagrad_c=0.4, cagrad_alpha=1.0)
    u = _t([[1, 0], [0, 1]])
    g0 = np.array([0.5, 0.5])
    # Symmetric orthogonal rows: w = (1/2, 1/2), so d = (1 + c) g0 and every row moves by c g0.
    self.assertAllClose(cagrad.shift(u, 0.4, 1.0, 100)[0], np.array([[1, 0], [0, 1]]) + 0.4 * g0, atol=1e-3)
    self.assertAllClose(cagrad.shift(_t([[1, 0], [-1, 0]]), 0.4, 1.0, 50)[0], [[1, 0], [-1, 0]])  # g0 = 0
    self.assertAllClose(cagrad.shift(u, 0.0, 1.0, 50)[0], u)  # c = 0 is the plain mean direction
    self.assertAllClose(conflicts.get('cagrad')(u, tf.constant(0), cfg)[0], cagrad.shift(u, 0.4, 1.0, 2000)[0], atol=1e-4)
    self.assertAllClose(conflicts.get('none')(u, tf.constant(0), cfg)[0], u)


class PersonalizationTest(tf.test.TestCase):

  def test_tau_to_zero_is_local_and_large_tau_is_the_mean(self):
    u = _t([[1, 0], [0, 1], [1, 1]])
    counts = _t([1, 1, 1])
    local = agg.personalize(u, counts, AggregationConfig(tau=1e-4))
    self.assertAllClose(local, u, atol=1e-4)
    mean = agg.personalize(u, counts, AggregationConfig(tau=1e6))
    self.assertAllClose(mean, np.tile(np.mean(u, axis=0), (3, 1)), atol=1e-4)

  def test_attention_weights(self):
    w = attention.attention_weights(_t([[1, 0], [1, 0], [0, 1]]), 0.5)
    self.assertAllClose(tf.reduce_sum(w, axis=1), [1, 1, 1])
    e2 = np.exp(2.0)
    self.assertAllClose(w[0], [e2 / (2 * e2 + 1), e2 / (2 * e2 + 1), 1 / (2 * e2 + 1)])
    same = agg.personalize(_t([[2, 1], [2, 1]]), _t([1, 1]), AggregationConfig())
    self.assertAllClose(same, [[2, 1], [2, 1]])

  def test_attention_counts_adds_the_log_of_each_clients_examples(self):
    u = _t([[1, 0], [1, 0], [0, 1]])
    cfg = AggregationConfig(personalization='attention_counts')
    w = personalization.get('attention_counts')(u, _t([1, 1, 1]), cfg)
    self.assertAllClose(w, attention.attention_weights(u, cfg.tau))  # equal sizes: the specification's
    w = personalization.get('attention_counts')(u, _t([100, 1, 0]), cfg)
    # cos / tau: 2 for the same direction, 0 for orthogonal ones; then + log n (a count of 0 counts as 1)
    logits = np.array([[2 + np.log(100), 2, 0], [2 + np.log(100), 2, 0], [np.log(100), 0, 2]])
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    self.assertAllClose(w, expected, atol=1e-5)
    self.assertGreater(w[1, 0], 0.95)  # the small client leans on the large one

  def test_mean_is_example_weighted(self):
    out = agg.personalize(_t([[1, 0], [0, 1]]), _t([3, 1]), AggregationConfig(personalization='mean'))
    self.assertAllClose(out, [[0.75, 0.25], [0.75, 0.25]])


class FactoryTest(tf.test.TestCase):

  def test_factory_in_tff(self):
    k = 3
    value_type = tff.types.to_type(collections.OrderedDict([
        ('global', [tff.TensorType(np.float32, [2])]),
        ('personalized', collections.OrderedDict(experts=tff.TensorType(np.float32, [k, 2]))),
        ('counts', tff.TensorType(np.float32, [k]))]))
    cfg = AggregationConfig()
    factory = agg.TemplateAggregationFactory({'experts': 'pcgrad'}, cfg)
    process = factory.create(value_type, tff.TensorType(np.float32))
    updates = np.array([[1, 1], [-1, 0], [0, 2]], np.float32)
    weights = [1.0, 3.0, 4.0]
    values = []
    for i in range(k):
      scattered = np.zeros((k, 2), np.float32)
      scattered[i] = updates[i]
      counts = np.zeros(k, np.float32)
      counts[i] = weights[i]
      values.append(collections.OrderedDict([('global', [np.float32([i, 2 * i])]),
                                             ('personalized', collections.OrderedDict(experts=scattered)),
                                             ('counts', counts)]))
    with runtime.local_runtime():
      state = process.initialize()
      out = process.next(state, values, weights)
    self.assertAllClose(out.result['global'][0], np.average([[0, 0], [1, 2], [2, 4]], axis=0, weights=weights))
    want = agg.aggregate_group(tf.constant(updates), tf.constant(weights), 'pcgrad', tf.constant(0), cfg)
    self.assertAllClose(out.result['personalized']['experts'], want)
    self.assertEqual(out.state['round'], 1)
    self.assertEqual(agg.group_conflicts(['experts', 'tower/ctr'], cfg), {'experts': 'pcgrad', 'tower__ctr': 'none'})


class HandComputedTest(tf.test.TestCase):

  def test_pcgrad_three_clients_by_hand(self):
    u = _t([[1, 0, 0], [-1, 1, 0], [-1, 0, 1]])
    seed = tf.constant(5)
    order = tf.random.experimental.stateless_shuffle(tf.range(3), seed=tf.stack([seed, 17])).numpy().tolist()
    # Row 0 conflicts with rows 1 and 2, each projection against the original row, in the seed's order.
    first = [j for j in order if j != 0][0]
    row0 = [0.25, 0.5, 0.25] if first == 1 else [0.25, 0.25, 0.5]
    out, stats = pcgrad.project(u, seed)
    self.assertAllClose(out, [row0, [0, 1, 0], [0, 0, 1]])
    self.assertEqual(int(stats['pcgrad_projections']), 4)  # 0<-1, 0<-2, 1<-0, 2<-0
    self.assertAllClose(stats['pcgrad_removed_norm'], np.linalg.norm(u.numpy() - out.numpy(), axis=1))


def _reference_cagrad(u, c):
  """An independent solution: SLSQP from several starts on the same simplex problem, in float64."""
  from scipy import optimize  # pylint: disable=g-import-not-at-top
  g = u @ u.T
  k = len(u)
  m = np.full(k, 1 / k)
  b, beta = g @ m, c * np.sqrt(m @ g @ m)
  best = None
  for s in range(6):
    start = np.random.default_rng(s).dirichlet(np.ones(k))
    r = optimize.minimize(lambda w: w @ b + beta * np.sqrt(max(w @ g @ w, 1e-30)), start, method='SLSQP',
                          bounds=[(0, 1)] * k, constraints=[{'type': 'eq', 'fun': lambda w: w.sum() - 1}],
                          options={'ftol': 1e-15, 'maxiter': 1000})
    best = r if best is None or r.fun < best.fun else best
  gw = best.x @ u
  g0 = u.mean(axis=0)
  return g0 + c * np.linalg.norm(g0) / np.linalg.norm(gw) * gw


class ExactCagradTest(tf.test.TestCase):

  def test_matches_an_independent_solver_on_asymmetric_updates(self):
    rng = np.random.default_rng(7)
    solve = tf.function(lambda x: cagrad.shift(x, 0.4, 1.0, 2000))
    for k in (2, 3, 4, 6):
      u = rng.normal(size=(k, 12)) * rng.uniform(0.1, 5.0, size=(k, 1)) + rng.normal(size=12)
      out, stats = solve(tf.constant(u, tf.float32))
      d = out.numpy()[0] - u[0] + u.mean(axis=0)
      want = _reference_cagrad(u, 0.4)
      self.assertLess(np.linalg.norm(d - want) / np.linalg.norm(want), 1e-3)
      self.assertAllClose(np.sum(stats['cagrad_weights']), 1.0, atol=1e-5)
      self.assertAllClose(stats['cagrad_shift_norm'], 0.4 * np.linalg.norm(u.mean(axis=0)), rtol=1e-4)

  def test_simplex_projection(self):
    self.assertAllClose(cagrad.project_to_simplex(tf.constant([0.2, 0.3, 0.5], tf.float64)), [0.2, 0.3, 0.5])
    self.assertAllClose(cagrad.project_to_simplex(tf.constant([2.0, 0.0, -1.0], tf.float64)), [1, 0, 0])
    self.assertAllClose(cagrad.project_to_simplex(tf.constant([1.0, 1.0], tf.float64)), [0.5, 0.5])
