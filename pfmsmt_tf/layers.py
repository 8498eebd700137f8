"""Keras layers of the template-structured MMoE, each serializable through `get_config`."""

from __future__ import annotations

import contextlib
import threading
from typing import Iterator, Optional, Sequence

import tensorflow as tf

PACKAGE = 'pfmsmt'
_STEP = threading.local()  # the seed of the training step being traced, if any (`step_seed`)


def _init(seed: Optional[int], offset: int):
  return tf.keras.initializers.GlorotUniform(seed=None if seed is None else seed + offset)


@tf.keras.utils.register_keras_serializable(package=PACKAGE)
class FeatureInput(tf.keras.layers.Layer):
  """One embedding per categorical feature (id 0 is the OOV bucket) and one projection of the numericals."""

  def __init__(self, categorical_names: Sequence[str], categorical_dims: Sequence[int], num_numerical: int,
               embedding_dim: int, seed: Optional[int] = None, **kwargs):
    super().__init__(**kwargs)
    self.categorical_names, self.categorical_dims = list(categorical_names), [int(d) for d in categorical_dims]
    self.num_numerical, self.embedding_dim, self.seed = int(num_numerical), int(embedding_dim), seed
    self.embeddings = [
        tf.keras.layers.Embedding(dim, embedding_dim, name=f'embedding_{i}',
                                  embeddings_initializer=tf.keras.initializers.RandomUniform(
                                      -0.05, 0.05, seed=None if seed is None else seed + i))
        for i, dim in enumerate(self.categorical_dims)]
    self.numerical_projection = (
        tf.keras.layers.Dense(embedding_dim, name='numerical_projection', kernel_initializer=_init(seed, 997))
        if num_numerical else None)

  @property
  def output_dim(self) -> int:
    return self.embedding_dim * (len(self.embeddings) + (1 if self.numerical_projection else 0))

  @property
  def feature_tables(self):
    """The embedding per categorical feature, in feature order (for per-feature step scales)."""
    return self.embeddings

  def call(self, inputs):
    parts = []
    if self.embeddings:
      cat = inputs['categorical']
      parts += [emb(cat[:, i]) for i, emb in enumerate(self.embeddings)]
    if self.numerical_projection is not None:
      parts.append(self.numerical_projection(inputs['numerical']))
    return tf.concat(parts, axis=-1)

  def get_config(self):
    return {**super().get_config(), 'categorical_names': self.categorical_names,
            'categorical_dims': self.categorical_dims, 'num_numerical': self.num_numerical,
            'embedding_dim': self.embedding_dim, 'seed': self.seed}


@contextlib.contextmanager
def step_seed(seed: tf.Tensor) -> Iterator[None]:
  """Layers called (traced) inside it draw their dropout masks from `seed`, an int64 [2] tensor."""
  previous = getattr(_STEP, 'seed', None)
  _STEP.seed = seed
  try:
    yield
  finally:
    _STEP.seed = previous


@tf.keras.utils.register_keras_serializable(package=PACKAGE)
class SeededDropout(tf.keras.layers.Dropout):
  """Keras' Dropout, except inside `step_seed`: there the mask is a function of the step's seed and of this
  layer's `seed` alone (stateless). Why: a TFF worker keeps a stateful random op's state from one call to the
  next in whichever session it lends a client, so the masks, and the run, would depend on that lending.
  Outside `step_seed` (`model.fit`, eager calls) it is Keras' Dropout."""

  def call(self, inputs, training=None):
    seed = getattr(_STEP, 'seed', None)
    if seed is None or training is None or training is False or self.rate == 0:
      return super().call(inputs, training=training)

    def dropped():
      layer_seed = tf.random.experimental.stateless_fold_in(seed, self.seed or 0)
      return tf.nn.experimental.stateless_dropout(inputs, self.rate, layer_seed,
                                                  noise_shape=self._get_noise_shape(inputs))

    if training is True:
      return dropped()
    return tf.cond(tf.cast(training, tf.bool), dropped, lambda: tf.identity(inputs))


@tf.keras.utils.register_keras_serializable(package=PACKAGE)
class MLP(tf.keras.layers.Layer):
  """Blocks of Dense -> [BatchNorm] -> ReLU -> Dropout: an expert, a shared bottom or a tower body."""

  def __init__(self, units: Sequence[int], dropout: float = 0.0, batch_norm: bool = False,
               seed: Optional[int] = None, **kwargs):
    super().__init__(**kwargs)
    self.units, self.dropout, self.batch_norm, self.seed = [int(u) for u in units], float(dropout), bool(batch_norm), seed
    self.dense = [tf.keras.layers.Dense(u, name=f'dense_{i}', kernel_initializer=_init(seed, i))
                  for i, u in enumerate(self.units)]
    self.norms = [tf.keras.layers.BatchNormalization(name=f'batch_norm_{i}') for i in range(len(self.units))] \
        if batch_norm else []
    self.drops = [SeededDropout(dropout, seed=None if seed is None else seed + 100 + i)
                  for i in range(len(self.units))] if dropout else []

  def call(self, x, training=None):
    for i, dense in enumerate(self.dense):
      x = dense(x)
      if self.norms:
        x = self.norms[i](x, training=training)
      x = tf.nn.relu(x)
      if self.drops:
        x = self.drops[i](x, training=training)
    return x

  def get_config(self):
    return {**super().get_config(), 'units': self.units, 'dropout': self.dropout, 'batch_norm': self.batch_norm,
            'seed': self.seed}


@tf.keras.utils.register_keras_serializable(package=PACKAGE)
class Tower(tf.keras.layers.Layer):
  """A task tower: an MLP and a one-unit logit."""

  def __init__(self, units: Sequence[int], dropout: float = 0.0, seed: Optional[int] = None, **kwargs):
    super().__init__(**kwargs)
    self.units, self.dropout, self.seed = [int(u) for u in units], float(dropout), seed
    self.body = MLP(self.units, dropout, batch_norm=False, seed=seed, name='mlp') if self.units else None
    self.logit = tf.keras.layers.Dense(1, name='logit', kernel_initializer=_init(seed, 50))

  def call(self, x, training=None):
    if self.body is not None:
      x = self.body(x, training=training)
    return tf.squeeze(self.logit(x), axis=-1)

  def get_config(self):
    return {**super().get_config(), 'units': self.units, 'dropout': self.dropout, 'seed': self.seed}


@tf.keras.utils.register_keras_serializable(package=PACKAGE)
class Gate(tf.keras.layers.Layer):
  """Softmax weights over the experts a task sees, and their mixture."""

  def __init__(self, num_experts: int, seed: Optional[int] = None, **kwargs):
    super().__init__(**kwargs)
    self.num_experts, self.seed = int(num_experts), seed
    self.dense = tf.keras.layers.Dense(num_experts, name='dense', kernel_initializer=_init(seed, 70))

  def call(self, inputs, experts):
    weights = tf.nn.softmax(self.dense(inputs), axis=-1)  # [B, E]
    return tf.einsum('be,bed->bd', weights, tf.stack(experts, axis=1))

  def get_config(self):
    return {**super().get_config(), 'num_experts': self.num_experts, 'seed': self.seed}
