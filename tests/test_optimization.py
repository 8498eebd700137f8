"""Per-feature embedding step scales: feature i's table moves `table_scales[i]` times the optimizer's step,
everything else as before, in client training (TFF's Adam) and in Keras `fit` (the pooled reference's Adam)."""

import numpy as np
import tensorflow as tf
import tensorflow_federated as tff

from data_pipelines import spec as spec_lib
from federated import client_work
from federated.config import ClientConfig
from pfmsmt_tf import config as config_lib
from pfmsmt_tf import linear, models, optimization

INPUTS = config_lib.ModelInputs(('a', 'b'), (5, 7), 2, ('ctr',))


def _model():
  return models.build_model(INPUTS, config_lib.ModelConfig(embedding_dim=3, expert_units=(4,), tower_units=(2,),
                                                           dropout=0.0, batch_norm=False, seed=0))


def _batch():
  rng = np.random.default_rng(0)
  features = {'categorical': tf.constant(rng.integers(0, 5, (16, 2))), 'numerical': tf.constant(
      rng.normal(size=(16, 2)).astype(np.float32))}
  return features, {'ctr': tf.constant((rng.random(16) < 0.3).astype(np.float32))}


def _deltas(train):
  """Per variable of a fresh model: its change after `train(model)`, and its feature's index if it is an
  embedding table (None otherwise)."""
  model = _model()
  model(_batch()[0])
  before = [v.numpy() for v in model.trainable_variables]
  tables = {v.ref(): i for i, v in optimization.feature_tables(model)}
  train(model)
  return [(v.numpy() - b, tables.get(v.ref())) for v, b in zip(model.trainable_variables, before)]


SCALES = (3.0, 1.0)  # feature a's table steps 3x, b's as the dense layers


def _assert_scaled(plain, scaled):
  assert sum(f is not None for _, f in plain) == 2
  for (d1, feature), (d3, _) in zip(plain, scaled):
    np.testing.assert_allclose(d3, SCALES[feature] * d1 if feature is not None else d1, atol=1e-6)
    assert np.abs(d1).max() > 0


class EmbeddingScaleTest(tf.test.TestCase):

  def test_feature_tables_are_the_tables_of_both_models_in_feature_order(self):
    model = _model()
    self.assertEqual([(i, v.shape[0]) for i, v in optimization.feature_tables(model)], [(0, 5), (1, 7)])
    logistic = linear.build_logistic(INPUTS)
    self.assertEqual([(i, v.shape[0]) for i, v in optimization.feature_tables(logistic)], [(0, 5), (1, 7)])
    self.assertEqual(optimization.step_scales(logistic, logistic.trainable_variables, (4.0, 2.0))[:2], (4.0, 2.0))
    self.assertEqual(set(optimization.step_scales(model, model.trainable_variables, ())), {1.0})

  def test_sparse_features_take_the_sparse_scale(self):
    features = [spec_lib.CategoricalFeature('user', train_rows_per_value=3.0),
                spec_lib.CategoricalFeature('city', train_rows_per_value=400.0),
                spec_lib.CategoricalFeature('older_data')]  # prepared before the rate was recorded: dense
    self.assertEqual([f.sparse for f in features], [True, False, False])
    cfg = ClientConfig(embedding_lr_scale=2.0, sparse_embedding_lr_scale=10.0)
    self.assertEqual(cfg.table_scales(features), (10.0, 2.0, 2.0))

  def test_client_training_scales_the_embedding_step_only(self):
    def train(scale):
      return lambda model: client_work._train(  # pylint: disable=protected-access
          model, tf.data.Dataset.from_tensors(_batch()), ['ctr'], tff.learning.optimizers.build_adam(1e-2),
          lambda: tf.constant(0.0), tf.constant([0, 0], tf.int64), table_scales=scale)
    _assert_scaled(_deltas(train(())), _deltas(train(SCALES)))

  def test_keras_optimizer_scales_the_embedding_step_only(self):
    def fit(scale):
      def train(model):
        model.compile(optimization.EmbeddingScaledAdam(model, scale, learning_rate=1e-2),
                      loss=tf.keras.losses.BinaryCrossentropy())
        features, labels = _batch()
        model.fit(features, labels, batch_size=16, epochs=1, verbose=0, shuffle=False)
      return train
    _assert_scaled(_deltas(fit((1.0, 1.0))), _deltas(fit(SCALES)))


if __name__ == '__main__':
  tf.test.main()
