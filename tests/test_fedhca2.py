"""FedHCA2: the conflict-averse and cross-attention combinations on known updates, the per-client hyper-weights
learned from the next round's update, the same in TFF, and the template's split of body and heads."""

import collections

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_federated as tff

from federated import aggregators as agg
from federated import algorithms, personalization, runtime
from federated.config import AggregationConfig
from federated.conflicts import cagrad
from federated.personalization import hyper_ca, hyper_cross
from pfmsmt_tf import config as config_lib
from pfmsmt_tf import models
from pfmsmt_tf import template as T

U = np.array([[1.0, 0.0, 0.5], [-1.0, 1.0, 0.0], [0.2, -0.3, 1.0]], np.float32)
CFG = AggregationConfig(conflict='none', personalization='hyper_ca', tower_personalization='hyper_cross',
                        hyper_lr=0.1, hyper_init=0.5)


def _softmax(x):
  e = np.exp(x - x.max(axis=1, keepdims=True))
  return e / e.sum(axis=1, keepdims=True)


class FedHca2Test(tf.test.TestCase):

  def test_cross_attention_by_hand(self):
    want = _softmax(U @ U.T / np.sqrt(3))
    self.assertAllClose(hyper_cross.base(tf.constant(U), None, CFG), want, atol=1e-6)

  def test_conflict_averse_combination_is_cagrad_direction_rescaled(self):
    # In graph mode, as the aggregator runs them (the solver's loop is slow eagerly).
    b = tf.function(lambda u: hyper_ca.base(u, None, CFG))(tf.constant(U)).numpy()
    self.assertAllClose(b, np.tile(b[:1], (3, 1)))  # one direction, the same for every client
    shifted, _ = tf.function(lambda u: cagrad.shift(u, CFG.cagrad_c, 1.0, CFG.cagrad_steps))(tf.constant(U))
    d = U.mean(axis=0) + (shifted.numpy()[0] - U[0])  # g0 + c |g0| / |g_w| g_w
    self.assertAllClose(b[0] @ U, d / (1 + CFG.cagrad_c ** 2), atol=1e-5)

  def test_hyper_weights_follow_the_next_update(self):
    rng = np.random.default_rng(0)
    u1, u2 = U, rng.normal(size=U.shape).astype(np.float32)
    r1, _, s1 = agg.aggregate_group_with_stats(tf.constant(u1), tf.ones(3), 'none', tf.constant(0), CFG, 'hyper_cross')
    b1 = _softmax(u1 @ u1.T / np.sqrt(3))
    self.assertAllClose(s1['hyper'], [0.5] * 3)  # nothing added before the first round
    self.assertAllClose(r1, u1 + 0.5 * b1 @ u1, atol=1e-5)
    r2, stats, s2 = agg.aggregate_group_with_stats(tf.constant(u2), tf.ones(3), 'none', tf.constant(1), CFG,
                                                   'hyper_cross', s1)
    hyper = np.clip(0.5 + 0.1 * np.sum((b1 @ u1) * u2, axis=1), 0, 1)
    self.assertAllClose(s2['hyper'], hyper, atol=1e-5)
    b2 = _softmax(u2 @ u2.T / np.sqrt(3))
    self.assertAllClose(r2, u2 + hyper[:, None] * (b2 @ u2), atol=1e-5)
    self.assertAllClose(stats['attention'], np.eye(3) + hyper[:, None] * b2, atol=1e-5)

  def test_two_rounds_in_tff_equal_the_group_function(self):
    k, d = 3, 3
    groups = collections.OrderedDict(encoder=tff.TensorType(np.float32, [k, d]),
                                     tower__ctr=tff.TensorType(np.float32, [k, d]))
    value_type = tff.types.to_type(collections.OrderedDict([
        ('global', []), ('personalized', groups), ('counts', tff.TensorType(np.float32, [k]))]))
    rules = agg.group_rules(['encoder', 'tower/ctr'], CFG)
    self.assertEqual(rules, {'encoder': 'hyper_ca', 'tower__ctr': 'hyper_cross'})
    process = agg.TemplateAggregationFactory({'encoder': 'none', 'tower__ctr': 'none'}, CFG,
                                             group_rules=rules).create(value_type, tff.TensorType(np.float32))
    rng = np.random.default_rng(1)
    state_by_hand = {g: personalization.initial_state(rule, (k, d), CFG) for g, rule in rules.items()}
    by_hand = {g: tf.function(lambda u, st, rule=rule: agg.aggregate_group_with_stats(
        u, tf.ones(k), 'none', tf.constant(0), CFG, rule, st)) for g, rule in rules.items()}
    with runtime.local_runtime():
      state = process.initialize()
      for _ in range(2):
        updates = {g: rng.normal(size=(k, d)).astype(np.float32) for g in rules}
        values = []
        for i in range(k):
          counts = np.zeros(k, np.float32)
          counts[i] = 1.0
          values.append(collections.OrderedDict([('global', []), ('personalized', collections.OrderedDict(
              (g, np.where(np.arange(k)[:, None] == i, updates[g], 0).astype(np.float32)) for g in rules)),
                                                 ('counts', counts)]))
        out = process.next(state, values, [1.0] * k)
        state = out.state
        for g in rules:
          want, _, state_by_hand[g] = by_hand[g](tf.constant(updates[g]), state_by_hand[g])
          self.assertAllClose(out.result['personalized'][g], want, atol=1e-5)
          self.assertAllClose(state['rules'][g]['hyper'], state_by_hand[g]['hyper'], atol=1e-6)

  def test_template_personalizes_body_and_heads_and_keeps_batch_norm_local(self):
    inputs = config_lib.ModelInputs(('a',), (5,), 2, ('ctr', 'ctcvr'))
    model = models.build_model(inputs, config_lib.ModelConfig(seed=0))
    part = T.Partition(T.assign(algorithms.get('fedhca2').template_for(model), model))
    g = model.layer_groups()
    head_task = {**{name: task for task, name in g['towers'].items()}, **{name: task for task, name in g['gates'].items()}}
    roles = {a.path: (a.role, a.group) for a in part.assignments}
    for path, (role, group) in roles.items():
      if 'batch_norm' in path or 'moving_' in path:
        self.assertEqual(role, T.LOCAL, path)
      elif path.split('/')[0] in head_task:
        self.assertEqual((role, group), (T.PERSONALIZED, 'tower/' + head_task[path.split('/')[0]]), path)
      else:
        self.assertEqual((role, group), (T.PERSONALIZED, 'encoder'), path)


@pytest.mark.slow
def test_a_fedhca2_run_trains_resumes_and_exports(tmp_path):
  from data_pipelines import prepare  # pylint: disable=g-import-not-at-top
  from data_pipelines.config import PrepareConfig  # pylint: disable=g-import-not-at-top
  from federated import api  # pylint: disable=g-import-not-at-top
  data = str(tmp_path / 'data')
  prepare.prepare(PrepareConfig(output=data, rows_per_scenario=400), log=lambda *_: None)
  small = dict(embedding_dim=4, expert_units=(8,), tower_units=(4,), batch_size=128)
  run = api.train(log=lambda *_: None, data=data, algorithm='fedhca2', rounds=2, output=str(tmp_path / 'run'),
                  **small)
  assert np.isfinite(run.mean_auc)
  again = api.train(log=lambda *_: None, data=data, algorithm='fedhca2', rounds=3, output=str(tmp_path / 'run'),
                    resume=True, **small)
  assert np.isfinite(again.mean_auc) and again.metrics['rounds'] == 3
  assert api.export(run.run_dir, str(tmp_path / 'export'), scenarios=['NL'])


if __name__ == '__main__':
  tf.test.main()
