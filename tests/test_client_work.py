"""Client work's parts: the local state files, the loss terms an algorithm declares, task-level PCGrad."""

import numpy as np
import tensorflow as tf

from federated import client_work, loss_terms
from federated.config import ClientConfig
from federated.layout import ModelLayout
from federated import algorithms
from pfmsmt_tf import config as config_lib
from pfmsmt_tf import models

INPUTS = config_lib.ModelInputs(('a',), (5,), 2, ('ctr', 'ctcvr'))


def _layout(algorithm):
  model_fn = lambda: models.build_model(INPUTS, config_lib.ModelConfig(seed=0))
  return ModelLayout.from_model_fn(model_fn, algorithms.get(algorithm).template_for(model_fn()), 2)


class StateFilesTest(tf.test.TestCase):

  def test_save_then_load_restores_every_variable(self):
    path = tf.constant(self.get_temp_dir() + '/k.state')
    saved = [tf.Variable(np.arange(6, dtype=np.float32).reshape(2, 3)), tf.Variable([7], dtype=tf.int64)]
    client_work.save_state(path, saved)
    loaded = [tf.Variable(tf.zeros([2, 3])), tf.Variable([0], dtype=tf.int64)]
    client_work.load_state(path, loaded)
    for a, b in zip(saved, loaded):
      self.assertAllEqual(a, b)

  def test_a_missing_file_keeps_the_initial_values(self):
    v = tf.Variable([1.0, 2.0])
    client_work.load_state(tf.constant(self.get_temp_dir() + '/none.state'), [v])
    self.assertAllEqual(v, [1.0, 2.0])


class LossTermsTest(tf.test.TestCase):

  def _context(self, algorithm, shift):
    layout = _layout(algorithm)
    model = layout.model_fn()
    weights = model.weights
    received_global = [tf.identity(weights[i]) for i in layout.global_idx]
    received = {k: layout.flatten_group(k, weights) for k in layout.group_idx}
    for v in model.trainable_weights:
      v.assign_add(tf.fill(v.shape, shift))
    return loss_terms.LossContext(weights, layout, received_global, received)

  def test_personalization_regularizer_is_lambda_half_squared_distance(self):
    ctx = self._context('pfmsmtrec', 0.1)
    moved = sum(ctx.layout.group_size(k) for k in ctx.layout.group_idx)  # every personalized value is trainable
    value = loss_terms.personalization_regularizer(ctx, ClientConfig(reg_lambda=0.5))
    self.assertAllClose(value, 0.5 * 0.5 * moved * 0.01, rtol=1e-4)
    self.assertIsNone(loss_terms.personalization_regularizer(ctx, ClientConfig(reg_lambda=0.0)))

  def test_proximal_term_covers_the_trainable_global_values(self):
    ctx = self._context('fedprox', 0.2)
    trainable = {id(v) for v in ctx.layout.model_fn().trainable_weights}  # a fresh model: ids differ; count instead
    del trainable
    moved = sum(int(np.prod(ctx.weights[i].shape)) for i in ctx.layout.global_idx if ctx.weights[i].trainable)
    value = loss_terms.proximal(ctx, ClientConfig(prox_mu=0.1))
    self.assertAllClose(value, 0.5 * 0.1 * moved * 0.04, rtol=1e-4)
    self.assertIsNone(loss_terms.proximal(ctx, ClientConfig(prox_mu=0.0)))
    self.assertIsNone(loss_terms.personalization_regularizer(ctx, ClientConfig()))  # fedprox has no groups


class TaskPCGradTest(tf.test.TestCase):

  def test_conflicting_task_gradients_are_projected_on_shared_parameters_only(self):
    shared = tf.Variable([1.0, 1.0])
    own = tf.Variable([1.0])
    with tf.GradientTape(persistent=True) as tape:
      losses = [tf.reduce_sum(shared * [1.0, 0.0]) + own[0], tf.reduce_sum(shared * [-1.0, 1.0])]
      extra = tf.constant(0.0)
    grads = client_work._task_pcgrad_gradients(tape, losses, extra, (shared, own), tf.constant(0))  # pylint: disable=protected-access
    # Task gradients on `shared`, each /2: g1 = (0.5, 0), g2 = (-0.5, 0.5): they conflict (dot < 0), so each
    # loses its component along the other; `own` is reached by one task only and keeps its plain gradient.
    g1, g2 = np.array([0.5, 0.0]), np.array([-0.5, 0.5])
    p1 = g1 - g1.dot(g2) / g2.dot(g2) * g2
    p2 = g2 - g2.dot(g1) / g1.dot(g1) * g1
    self.assertAllClose(grads[0], p1 + p2)
    self.assertAllClose(grads[1], [0.5])


class FoldBatchesTest(tf.test.TestCase):

  def test_folds_like_dataset_reduce_in_order_and_on_no_batches(self):
    def fn(carry, x):
      total, last = carry
      return total * 2 + x, x  # order matters

    @tf.function
    def fold(dataset):
      return client_work.fold_batches(dataset, fn, (tf.constant(0, tf.int64), tf.constant(-1, tf.int64)))

    for n in (0, 1, 5):
      dataset = tf.data.Dataset.range(n)
      self.assertAllEqual(fold(dataset), dataset.reduce((tf.constant(0, tf.int64), tf.constant(-1, tf.int64)), fn))
