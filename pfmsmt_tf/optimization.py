"""A step of its own for each categorical feature's embedding table, in TFF client training and in Keras `fit`.

An embedding row of a sparse id sees only the few examples that carry that id, so at the dense layers' Adam
rate it barely moves in a round (on an 8,000-row news sample, 1,921 items: about three train rows each).
Scaling a table's step by `scale` is Adam at `scale` x the learning rate on that table alone; the scales come
per feature (`ClientConfig.table_scales`), so sparse ids can move faster while dense features keep the rate.
"""

from __future__ import annotations

from typing import List, Sequence, Tuple

import tensorflow as tf


def feature_tables(model: tf.keras.Model) -> List[Tuple[int, tf.Variable]]:
  """(categorical feature index, table) for each table in the model: the input embeddings, the logistic
  model's per-category weights. Layers that own tables list them in feature order as `feature_tables`."""
  out = []
  for layer in [model, *model.submodules]:
    for i, table in enumerate(getattr(layer, 'feature_tables', ())):
      out += [(i, v) for v in table.weights]
  return out


def embedding_variables(model: tf.keras.Model) -> list:
  """Every embedding table of the model."""
  return [v for _, v in feature_tables(model)]


def step_scales(model: tf.keras.Model, variables: Sequence[tf.Variable],
                table_scales: Sequence[float]) -> Tuple[float, ...]:
  """Per variable: its feature's scale for an embedding table, 1.0 for the rest (and for all when
  `table_scales` is empty)."""
  by_table = {v.ref(): float(table_scales[i]) for i, v in feature_tables(model)} if table_scales else {}
  return tuple(by_table.get(v.ref(), 1.0) for v in variables)


class EmbeddingScaledAdam(tf.keras.optimizers.Adam):
  """Keras Adam whose step on each embedding table of `model` is its feature's scale times its step elsewhere
  (the pooled reference's optimizer)."""

  def __init__(self, model: tf.keras.Model, table_scales: Sequence[float], **kwargs):
    super().__init__(**kwargs)
    self._scales = {v.ref(): s for v, s in zip(model.trainable_variables,
                                               step_scales(model, model.trainable_variables, table_scales))
                    if s != 1.0}

  def update_step(self, gradient, variable):
    scale = self._scales.get(variable.ref(), 1.0)
    if scale == 1.0:
      return super().update_step(gradient, variable)
    before = tf.identity(variable)
    super().update_step(gradient, variable)
    variable.assign(before + scale * (variable - before))
