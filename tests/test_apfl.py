"""APFL: the personal model trained through its mix with the shared one, and the mix the client deploys."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_federated as tff

from federated import algorithms, client_work
from federated.algorithm import Algorithm, uniform_template
from pfmsmt_tf import config as config_lib
from pfmsmt_tf import models

INPUTS = config_lib.ModelInputs(('a', 'b'), (5, 7), 3, ('ctr', 'ctcvr'))


def _model(seed):
  return models.build_model(INPUTS, config_lib.ModelConfig(expert_units=(4,), tower_units=(2,), dropout=0.0,
                                                           batch_norm=False, seed=seed))


def _batch():
  rng = np.random.default_rng(0)
  features = {'categorical': rng.integers(0, 5, size=(32, 2)), 'numerical': rng.normal(size=(32, 3)).astype('f4')}
  return features, {t: (rng.random(32) < 0.3).astype('f4') for t in INPUTS.tasks}


def test_declaration():
  apfl = algorithms.get('apfl')
  assert apfl.personal_model and apfl.personal_mixing and apfl.family == 'baseline' and not apfl.paper
  with pytest.raises(ValueError, match='personal_mixing needs personal_model'):
    Algorithm('x', 'baseline', '', uniform_template('global'), personal_mixing=True)


def test_one_step_follows_the_gradients_through_the_mix():
  """With plain SGD: v' = v - lr alpha g and alpha' = alpha - lr <v - w, g>, g the gradient at the mix."""
  features, labels = _batch()
  personal, shared, mixed, reference = _model(1), _model(2), _model(3), _model(4)
  for m in (personal, shared, mixed, reference):
    m(features)
  alpha, lr = tf.Variable(0.3), 0.05
  v0, w0 = [v.numpy() for v in personal.weights], [w.numpy() for w in shared.weights]
  reference.set_weights([0.3 * v + 0.7 * w for v, w in zip(v0, w0)])
  with tf.GradientTape() as tape:
    out = reference(features, training=True)
    bce = tf.keras.losses.BinaryCrossentropy()
    loss = (bce(labels['ctr'], out['ctr']) + bce(labels['ctcvr'], out['ctcvr'])) / 2
  g = [tf.convert_to_tensor(x).numpy() for x in tape.gradient(loss, reference.trainable_variables)]
  v_train = [v.numpy() for v in personal.trainable_variables]
  w_train = [w.numpy() for w in shared.trainable_variables]
  data = tf.data.Dataset.from_tensors((features, labels))
  client_work._train_mixed(personal, shared, mixed, alpha, data, list(INPUTS.tasks),  # pylint: disable=protected-access
                           tff.learning.optimizers.build_sgdm(lr), tf.constant([0, 0], tf.int64))
  for after, v, gi in zip(personal.trainable_variables, v_train, g):
    np.testing.assert_allclose(after.numpy(), v - lr * 0.3 * gi, atol=1e-6)
  d_alpha = sum(float(np.sum((v - w) * gi)) for v, w, gi in zip(v_train, w_train, g))
  np.testing.assert_allclose(alpha.numpy(), np.clip(0.3 - lr * d_alpha, 0, 1), atol=1e-5)
  for w, w_before in zip(shared.weights, w0):
    np.testing.assert_array_equal(w.numpy(), w_before)  # the shared model is fixed in this phase


def test_the_deployed_model_is_the_mix_of_the_stored_personal_model_and_the_received_one(tmp_path):
  personal, received, stored_alpha = _model(1), _model(2), tf.Variable(0.25)
  path = tf.constant(str(tmp_path / 'k.state'))
  client_work.save_state(path, list(personal.weights) + [stored_alpha])
  expected = [0.25 * v.numpy() + 0.75 * w.numpy() for v, w in zip(personal.weights, received.weights)]
  client_work.load_mixed(path, received.weights, _model(5).weights, tf.Variable(0.9))
  for w, e in zip(received.weights, expected):
    np.testing.assert_allclose(w.numpy(), e, atol=1e-6)


@pytest.mark.slow
def test_an_apfl_run_trains_evaluates_and_exports(tmp_path):
  from data_pipelines import prepare  # pylint: disable=g-import-not-at-top
  from data_pipelines.config import PrepareConfig  # pylint: disable=g-import-not-at-top
  from federated import api  # pylint: disable=g-import-not-at-top
  data = str(tmp_path / 'data')
  prepare.prepare(PrepareConfig(output=data, rows_per_scenario=400), log=lambda *_: None)
  run = api.train(log=lambda *_: None, data=data, algorithm='apfl', rounds=2, output=str(tmp_path / 'run'),
                  **dict(embedding_dim=4, expert_units=(8,), tower_units=(4,), batch_size=128))
  assert np.isfinite(run.mean_auc)
  again = api.evaluate(run.run_dir)
  assert abs(again.mean_auc - run.mean_auc) < 1e-6
  assert api.export(run.run_dir, str(tmp_path / 'export'), scenarios=['NL'])
