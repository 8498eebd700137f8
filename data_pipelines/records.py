"""The rows of prepared shards: their fixed-width layout, the writer of shards, and the encoding of raw rows.

A row is its features and labels as fixed-width numbers (`record_dtype`); reading a batch is a cast and four
slices. `Encoder` maps raw rows to what prepare writes: serving checks its parity with it.
"""

from __future__ import annotations

import os
from typing import Dict, List, Tuple

import numpy as np
import pandas as pd

from data_pipelines import sources
from data_pipelines import spec as spec_lib
from data_pipelines import statistics
from data_pipelines.errors import InputError

CATEGORICAL = 'categorical'
NUMERICAL = 'numerical'
LABELS = 'labels'
TRUE_PROB = 'true_prob'
SHARD_SUFFIX = '.rows'
SHARD_PATTERN = 'part-{:05d}' + SHARD_SUFFIX
SHARD_GLOB = '*' + SHARD_SUFFIX


class Encoder:
  """Raw values -> what prepare writes, from the spec: final ids (vocabulary position + 1 with 0 the OOV bucket,
  or a hash bin) and normalized numbers. Prepare finishes its shards with `ids` and `moments`; serving is
  checked against `encode`."""

  def __init__(self, spec: spec_lib.DatasetSpec, data_dir: str):
    self.spec = spec
    # scope -> feature -> its vocabulary as an index (hashed once): value -> position, id = position + 1
    self._lookup: Dict[str, Dict[str, pd.Index]] = {}
    for f in spec.categorical:
      for scope, rel in f.vocabulary_files.items():
        index = pd.Index(spec_lib.load_vocabulary(data_dir, rel), dtype=object)
        index.get_indexer(index[:1])  # builds its hash table now, not in two finishing threads at once
        self._lookup.setdefault(scope, {})[f.name] = index
    self._by_normalization: Dict[str, List[int]] = {}
    for j, f in enumerate(spec.numerical):
      if f.normalization in statistics.TRANSFORMED:
        self._by_normalization.setdefault(f.normalization, []).append(j)

  def ids(self, scope: str, feature: spec_lib.CategoricalFeature, values) -> np.ndarray:
    """[k] int64: the final id of each of `values` (raw values) in `scope`."""
    if feature.hash_bins:
      import tensorflow as tf  # pylint: disable=g-import-not-at-top  (only here: prepare runs without it)
      return tf.strings.to_hash_bucket_fast(np.asarray(values, dtype=str).reshape(-1), feature.hash_bins).numpy()
    return self._lookup[scope][feature.name].get_indexer(pd.Index(values, dtype=object)) + 1

  def moments(self, scope: str) -> Tuple[np.ndarray, np.ndarray]:
    """([N] means, [N] standard deviations) of the transformed numbers in `scope`."""
    return (np.array([f.statistics[scope][0] for f in self.spec.numerical], np.float64),
            np.array([f.statistics[scope][1] for f in self.spec.numerical], np.float64))

  def encode(self, frame: pd.DataFrame, scenario: str):
    """Returns (categorical int64 [n, C], numerical float32 [n, N], labels, true_prob or None, oov counts) of
    the rows of `frame` (canonical, of `scenario`)."""
    scope = self.spec.scope(scenario)
    cat = np.zeros((len(frame), len(self.spec.categorical)), np.int64)
    oov = {}
    for j, f in enumerate(self.spec.categorical):
      values = frame[f.name]
      if isinstance(values.dtype, pd.CategoricalDtype):  # each category looked up once
        cat[:, j] = self.ids(scope, f, values.cat.categories)[values.cat.codes.to_numpy()]
      else:
        cat[:, j] = self.ids(scope, f, values.to_numpy())
      if not f.hash_bins:
        oov[f.name] = int((cat[:, j] == 0).sum() - (values == sources.MISSING_CATEGORY).sum())
    values = sources.column_block(frame, [f.name for f in self.spec.numerical])  # a fresh array: written to
    for how, columns in self._by_normalization.items():
      values[:, columns] = statistics.transform(values[:, columns], how)
    mean, std = self.moments(scope)
    values -= mean
    values /= std
    labels = sources.column_block(frame, self.spec.task_names, np.float32)
    true_prob = None
    if self.spec.has_true_probabilities:
      true_prob = sources.column_block(frame, [sources.true_prob_column(t) for t in self.spec.task_names],
                                       np.float32)
    return cat, values.astype(np.float32), labels, true_prob, oov


def record_dtype(categorical: int, numerical: int, tasks: int, true_prob: bool) -> np.dtype:
  """The layout of one row in a shard: fixed width, little-endian, no padding.

  `categorical` int32 ids, `numerical` float32 values, `labels` float32 and, on synthetic data, `true_prob`
  float32, in that order. A shard is its rows back to back: `np.fromfile(path, record_dtype(...))` reads it,
  `tf.data.FixedLengthRecordDataset` streams it. (TFRecord framing, which this replaced, made prepare compute
  a CRC-32C of every row in numpy: 1.8 CPU-s of 1M AliExpress rows; shards are checked by size and SHA-256
  instead, data_pipelines/integrity.py.)
  """
  fields = [(CATEGORICAL, '<i4', (categorical,)), (NUMERICAL, '<f4', (numerical,)), (LABELS, '<f4', (tasks,))]
  if true_prob:
    fields.append((TRUE_PROB, '<f4', (tasks,)))
  return np.dtype(fields)


def spec_record_dtype(spec: spec_lib.DatasetSpec) -> np.dtype:
  if spec.version != spec_lib.SPEC_VERSION:
    raise InputError(f'this data was prepared in the format of spec version {spec.version} (TFRecord shards), which '
                     f'this version no longer reads', hint='prepare it again with `pfmsmt prepare` (its summary.json '
                     '"config" holds the settings it was prepared with)')
  return record_dtype(len(spec.categorical), len(spec.numerical), len(spec.tasks), spec.has_true_probabilities)


def pack(dtype: np.dtype, cat, num, labels, true_prob=None) -> np.ndarray:
  """[n] rows of `dtype` from the columns' arrays ([n, width] each); `num` None leaves the numbers for the caller
  to write in place."""
  out = np.empty(len(labels), dtype)
  out[CATEGORICAL] = cat
  if num is not None:
    out[NUMERICAL] = num
  out[LABELS] = labels
  if true_prob is not None:
    out[TRUE_PROB] = true_prob
  return out


class ShardWriter:
  """Writes one partition's rows into shards of at most `rows_per_shard` rows."""

  def __init__(self, directory: str, rows_per_shard: int):
    if rows_per_shard < 1:
      raise ValueError(f'rows_per_shard must be positive, got {rows_per_shard}')
    os.makedirs(directory, exist_ok=True)
    self.directory, self.rows_per_shard = directory, rows_per_shard
    self.shards: List[str] = []
    self.rows: List[int] = []  # rows per shard
    self._file = None
    self._in_shard = 0

  def write(self, rows: np.ndarray) -> None:
    """Appends `rows` (record_dtype), opening the next shard whenever one is full."""
    start = 0
    while start < len(rows):
      if self._file is None or self._in_shard >= self.rows_per_shard:
        self._open_next()
      take = min(len(rows) - start, self.rows_per_shard - self._in_shard)
      self._file.write(rows[start:start + take].data)
      self._in_shard += take
      self.rows[-1] += take
      start += take

  def _open_next(self) -> None:
    self.close()
    path = os.path.join(self.directory, SHARD_PATTERN.format(len(self.shards)))
    self.shards.append(path)
    self.rows.append(0)
    self._file = open(path, 'wb')  # pylint: disable=consider-using-with
    self._in_shard = 0

  def close(self) -> None:
    if self._file is not None:
      self._file.close()
      self._file = None
