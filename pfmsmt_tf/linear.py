"""Logistic regression on the encoded features: the non-neural reference every comparison reports.

One weight per category value of each categorical feature (its id: the value's row of a one-column
embedding per task) and per numerical feature, plus a bias, per task: p(task) = sigmoid(sum of the row's
weights). It has no hidden layer, no interaction and no BatchNorm, so whatever a neural model scores above
it is what its depth buys.
"""

from __future__ import annotations

import dataclasses
from typing import Dict

import tensorflow as tf

from pfmsmt_tf import layers
from pfmsmt_tf.config import ModelConfig, ModelInputs


@tf.keras.utils.register_keras_serializable(package=layers.PACKAGE)
class LogisticRegression(tf.keras.Model):
  """Returns {task: probability [B]} from {'categorical': int64 [B, C], 'numerical': float32 [B, N]}."""

  def __init__(self, model_inputs: ModelInputs, **kwargs):
    kwargs.setdefault('name', 'logistic')
    super().__init__(**kwargs)
    self.model_inputs = model_inputs
    k = len(model_inputs.tasks)
    self.category_weights = [
        tf.keras.layers.Embedding(dim, k, embeddings_initializer='zeros', name=f'weights_{i}')
        for i, dim in enumerate(model_inputs.categorical_dims)]
    self.numerical_weights = (tf.keras.layers.Dense(k, kernel_initializer='zeros', use_bias=False,
                                                    name='numerical_weights') if model_inputs.num_numerical else None)
    self.bias = self.add_weight(name='bias', shape=[k], initializer='zeros', trainable=True)

  @property
  def feature_tables(self):
    """The weights per categorical feature, in feature order (for per-feature step scales)."""
    return self.category_weights

  def call(self, inputs, training=False):
    del training
    logits = tf.zeros([tf.shape(inputs['categorical'])[0], len(self.model_inputs.tasks)]) + self.bias
    for i, weights in enumerate(self.category_weights):
      logits += weights(inputs['categorical'][:, i])
    if self.numerical_weights is not None:
      logits += self.numerical_weights(inputs['numerical'])
    return {t: tf.sigmoid(logits[:, j]) for j, t in enumerate(self.model_inputs.tasks)}

  def dummy_inputs(self, batch_size: int = 2) -> Dict[str, tf.Tensor]:
    return {'categorical': tf.zeros([batch_size, len(self.model_inputs.categorical_dims)], tf.int64),
            'numerical': tf.zeros([batch_size, self.model_inputs.num_numerical], tf.float32)}

  def get_config(self):
    return {'name': self.name, 'model_inputs': dataclasses.asdict(self.model_inputs)}

  @classmethod
  def from_config(cls, config, custom_objects=None):
    del custom_objects
    return cls(ModelInputs(**config['model_inputs']), name=config.get('name'))


def build_logistic(model_inputs: ModelInputs, config: ModelConfig = ModelConfig()) -> LogisticRegression:
  """The reference model with its variables created (`config` is the neural models'; only its name is shared)."""
  del config
  model = LogisticRegression(model_inputs)
  model(model.dummy_inputs(), training=False)
  return model
