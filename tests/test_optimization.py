"""The embedding step scale: embedding tables move `scale` times the optimizer's step, everything else as before,
in client training (TFF's Adam) and in Keras `fit` (the pooled reference's Adam)."""

import numpy as np
import tensorflow as tf
import tensorflow_federated as tff

from federated import client_work
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
  """Per variable of a fresh model: its change after `train(model)`, and whether it is an embedding table."""
  model = _model()
  model(_batch()[0])
  before = [v.numpy() for v in model.trainable_variables]
  tables = {v.ref() for v in optimization.embedding_variables(model)}
  train(model)
  return [(v.numpy() - b, v.ref() in tables) for v, b in zip(model.trainable_variables, before)]


class EmbeddingScaleTest(tf.test.TestCase):

  def test_embedding_variables_are_the_tables_of_both_models(self):
    self.assertLen(optimization.embedding_variables(_model()), 2)
    logistic = linear.build_logistic(INPUTS)
    self.assertLen(optimization.embedding_variables(logistic), 2)
    self.assertEqual(optimization.step_scales(logistic, logistic.trainable_variables, 4.0)[:2], (4.0, 4.0))

  def test_client_training_scales_the_embedding_step_only(self):
    def train(scale):
      return lambda model: client_work._train(  # pylint: disable=protected-access
          model, tf.data.Dataset.from_tensors(_batch()), ['ctr'], tff.learning.optimizers.build_adam(1e-2),
          lambda: tf.constant(0.0), embedding_scale=scale)
    plain, scaled = _deltas(train(1.0)), _deltas(train(3.0))
    self.assertEqual(sum(t for _, t in plain), 2)
    for (d1, table), (d3, _) in zip(plain, scaled):
      self.assertAllClose(d3, 3.0 * d1 if table else d1, atol=1e-6)
      self.assertGreater(np.abs(d1).max(), 0)

  def test_keras_optimizer_scales_the_embedding_step_only(self):
    def fit(scale):
      def train(model):
        model.compile(optimization.EmbeddingScaledAdam(optimization.embedding_variables(model), scale,
                                                       learning_rate=1e-2), loss=tf.keras.losses.BinaryCrossentropy())
        features, labels = _batch()
        model.fit(features, labels, batch_size=16, epochs=1, verbose=0, shuffle=False)
      return train
    plain, scaled = _deltas(fit(1.0)), _deltas(fit(3.0))
    for (d1, table), (d3, _) in zip(plain, scaled):
      self.assertAllClose(d3, 3.0 * d1 if table else d1, atol=1e-6)
      self.assertGreater(np.abs(d1).max(), 0)


if __name__ == '__main__':
  tf.test.main()
