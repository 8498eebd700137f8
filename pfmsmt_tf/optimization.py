"""A larger step for embedding tables than for dense layers, in TFF client training and in Keras `fit`.

An embedding row of a sparse id sees only the few examples that carry that id, so at the dense layers' Adam
rate it barely moves in a round (on an 8,000-row news sample, 1,921 items: about three train rows each).
Scaling the step of embedding tables by `scale` is Adam at `scale` x the learning rate on them alone.
"""

from __future__ import annotations

from typing import Sequence, Tuple

import tensorflow as tf


def embedding_variables(model: tf.keras.Model) -> list:
  """The variables of every `tf.keras.layers.Embedding` in the model (its input embeddings, the logistic
  model's per-category weights)."""
  return [v for layer in model.submodules if isinstance(layer, tf.keras.layers.Embedding) for v in layer.weights]


def step_scales(model: tf.keras.Model, variables: Sequence[tf.Variable], scale: float) -> Tuple[float, ...]:
  """Per variable: `scale` for embedding tables, 1.0 for the rest."""
  tables = {v.ref() for v in embedding_variables(model)}
  return tuple(float(scale) if v.ref() in tables else 1.0 for v in variables)


class EmbeddingScaledAdam(tf.keras.optimizers.Adam):
  """Keras Adam whose step on `tables` is `scale` times its step elsewhere (the pooled reference's optimizer)."""

  def __init__(self, tables: Sequence[tf.Variable], scale: float, **kwargs):
    super().__init__(**kwargs)
    self._tables = {v.ref() for v in tables}
    self._scale = float(scale)

  def update_step(self, gradient, variable):
    if self._scale == 1.0 or variable.ref() not in self._tables:
      return super().update_step(gradient, variable)
    before = tf.identity(variable)
    super().update_step(gradient, variable)
    variable.assign(before + self._scale * (variable - before))
