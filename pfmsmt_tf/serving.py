"""One scenario's model as a SavedModel for TF Serving: raw feature columns in, one probability per task out.

The `serving_default` signature replays what `pfmsmt prepare` did to the training rows, from the same spec
and vocabulary files: categorical values (strings, as the source files hold them) are looked up in the
scenario's vocabulary (unknown or empty -> the out-of-vocabulary id 0) or hashed; numericals are
transformed and standardized with the train statistics. So a client of the served model sends raw rows.
"""

from __future__ import annotations

import json
import os
import re
from typing import Dict, List

import tensorflow as tf

from data_pipelines import spec as spec_lib

EXPORT_INFO = 'pfmsmt_export.json'  # beside saved_model.pb: inputs (column -> signature name), tasks, provenance


def signature_names(columns: List[str]) -> Dict[str, str]:
  """Column -> a signature input name TF accepts (letters, digits, underscore), distinct per column."""
  out, taken = {}, set()
  for c in columns:
    base = re.sub(r'[^A-Za-z0-9_]', '_', c) or 'feature'
    if not base[0].isalpha():
      base = 'f_' + base
    name, i = base, 1
    while name in taken:
      i += 1
      name = f'{base}_{i}'
    out[c] = name
    taken.add(name)
  return out


class ServingModule(tf.Module):
  """The Keras model plus the preprocessing of one scenario, as one traceable module."""

  def __init__(self, model: tf.keras.Model, spec: spec_lib.DatasetSpec, data_dir: str, scenario: str):
    super().__init__(name='pfmsmt_serving')
    scope = spec.scope(scenario)
    # Only the variables are tracked, not the Keras model: saving a Keras model traces every layer's call
    # (about 10 s per scenario); the serving function needs none of those traces.
    self.model_variables = list(model.variables)
    self._model = model.__call__
    self.spec = spec
    self.names = signature_names([f.name for f in spec.categorical] + [f.name for f in spec.numerical])
    self.tables = []
    for f in spec.categorical:
      if f.hash_bins:
        self.tables.append(None)
        continue
      vocab = spec_lib.load_vocabulary(data_dir, f.vocabulary_files[scope])
      keys = tf.constant(vocab or [''], tf.string)
      ids = tf.range(1, len(vocab) + 1, dtype=tf.int64) if vocab else tf.zeros([1], tf.int64)
      self.tables.append(tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(keys, ids), default_value=0))
    self.normalization = [(f.normalization, *f.statistics[scope]) for f in spec.numerical]
    signature = {}
    for f in spec.categorical:
      signature[f.name] = tf.TensorSpec([None], tf.string, name=self.names[f.name])
    for f in spec.numerical:
      signature[f.name] = tf.TensorSpec([None], tf.float32, name=self.names[f.name])
    self.serve = tf.function(self._serve, input_signature=[signature])

  def preprocess(self, columns: Dict[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
    """Raw columns -> the model's {'categorical': int64 [B, C], 'numerical': float32 [B, N]}."""
    first = columns[(self.spec.categorical or self.spec.numerical)[0].name]
    batch = tf.shape(first)[0]
    cat = []
    for f, table in zip(self.spec.categorical, self.tables):
      values = columns[f.name]
      cat.append(tf.strings.to_hash_bucket_fast(values, f.hash_bins) if f.hash_bins else table.lookup(values))
    num = []
    for f, (how, mean, std) in zip(self.spec.numerical, self.normalization):
      x = tf.cast(columns[f.name], tf.float32)
      if how == 'log_standard':
        x = tf.sign(x) * tf.math.log1p(tf.abs(x))
      num.append((x - mean) / std)
    return {'categorical': tf.stack(cat, axis=1) if cat else tf.zeros([batch, 0], tf.int64),
            'numerical': tf.stack(num, axis=1) if num else tf.zeros([batch, 0], tf.float32)}

  def _serve(self, columns):
    out = self._model(self.preprocess(columns), training=False)
    return {t: tf.identity(out[t], name=t) for t in self.spec.task_names}


def export_saved_model(model: tf.keras.Model, spec: spec_lib.DatasetSpec, data_dir: str, scenario: str,
                       path: str, provenance: dict | None = None) -> str:
  """Writes the SavedModel (TF Serving layout: `path` is `<model_name>/<version>`) and its EXPORT_INFO."""
  module = ServingModule(model, spec, data_dir, scenario)
  tf.saved_model.save(module, path, signatures={'serving_default': module.serve})
  info = {'scenario': scenario, 'tasks': spec.task_names,
          'inputs': {c: {'name': n, 'dtype': 'string' if c in {f.name for f in spec.categorical} else 'float'}
                     for c, n in module.names.items()},
          **(provenance or {})}
  with open(os.path.join(path, EXPORT_INFO), 'w') as f:
    json.dump(info, f, indent=1)
  return path
