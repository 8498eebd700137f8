"""The rows of prepared shards: their fixed-width layout, the writer of shards, and the encoding of raw rows.

A row is its features and labels as fixed-width numbers (`record_dtype`); reading a batch is a cast and four
slices. `Encoder` maps raw rows to what prepare writes: serving checks its parity with it.
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional

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
  """Maps categorical strings to ids and normalizes numericals with the spec's statistics."""

  def __init__(self, spec: spec_lib.DatasetSpec, data_dir: str):
    self.spec = spec
    # scope -> feature -> its vocabulary as an index (hashed once): value -> position, id = position + 1
    self._lookup: Dict[str, Dict[str, pd.Index]] = {}
    for f in spec.categorical:
      for scope, rel in f.vocabulary_files.items():
        index = pd.Index(spec_lib.load_vocabulary(data_dir, rel), dtype=object)
        index.get_indexer(index[:1])  # builds its hash table now, not in two encoding threads at once
        self._lookup.setdefault(scope, {})[f.name] = index
    self._by_normalization: Dict[str, List[int]] = {}
    for j, f in enumerate(spec.numerical):
      if f.normalization in statistics.TRANSFORMED:
        self._by_normalization.setdefault(f.normalization, []).append(j)
    # scope -> (means [N], standard deviations [N])
    self._moments = {scope: (np.array([f.statistics[scope][0] for f in spec.numerical], np.float64),
                             np.array([f.statistics[scope][1] for f in spec.numerical], np.float64))
                     for scope in (spec.numerical[0].statistics if spec.numerical else {})}

  def numerical_block(self, frame: pd.DataFrame) -> np.ndarray:
    """[n, N] float64: the frame's numerical columns, as `encode` reads them (one selection of a chunk, which
    copies it, for all the parts encoded from it)."""
    return frame[[f.name for f in self.spec.numerical]].to_numpy(np.float64)

  def encode(self, frame: pd.DataFrame, scenario: str, rows: Optional[np.ndarray] = None,
             numerical: Optional[np.ndarray] = None):
    """Returns (categorical int64 [n, C], numerical float32 [n, N], labels, true_prob or None, oov counts) of
    the rows at positions `rows` of `frame`, in that order (None: every row): each column is gathered once,
    by the copy its encoding makes anyway. `numerical`: `numerical_block(frame)`, when the caller has it."""
    scope = self.spec.scope(scenario)
    n = len(frame) if rows is None else len(rows)
    cat = np.zeros((n, len(self.spec.categorical)), np.int64)
    oov = {}
    for j, f in enumerate(self.spec.categorical):
      values = frame[f.name]
      if f.hash_bins:
        import tensorflow as tf  # pylint: disable=g-import-not-at-top  (only here: prepare runs without it)
        cat[:, j] = tf.strings.to_hash_bucket_fast(_taken(values.to_numpy(dtype=str), rows), f.hash_bins).numpy()
      else:
        ids = _ids(self._lookup[scope][f.name], values, rows)
        oov[f.name] = int((ids == 0).sum() - _taken((values == sources.MISSING_CATEGORY).to_numpy(), rows).sum())
        cat[:, j] = ids
    # One block, column-wise maths; a fresh array either way, so that the frame is never written to.
    values = self.numerical_block(frame) if numerical is None else numerical
    values = np.array(values) if rows is None else np.take(values, rows, axis=0)
    for how, columns in self._by_normalization.items():
      values[:, columns] = statistics.transform(values[:, columns], how)
    mean, std = self._moments[scope] if self.spec.numerical else (0.0, 1.0)
    values -= mean  # in place: two fewer [n, N] float64 temporaries
    values /= std
    num = values.astype(np.float32)
    labels = _taken(frame[self.spec.task_names].to_numpy(np.float32), rows)
    true_prob = None
    if self.spec.has_true_probabilities:
      true_prob = _taken(frame[[sources.true_prob_column(t) for t in self.spec.task_names]].to_numpy(np.float32),
                         rows)
    return cat, num, labels, true_prob, oov


def _taken(values: np.ndarray, rows: Optional[np.ndarray]) -> np.ndarray:
  return values if rows is None else np.take(values, rows, axis=0)


def _ids(vocabulary: pd.Index, values: pd.Series, rows: Optional[np.ndarray] = None) -> np.ndarray:
  """Vocabulary position + 1 of each value (of those at `rows`); 0 (the OOV bucket) for a value not in it. A
  categorical is looked up by its categories, each once."""
  if isinstance(values.dtype, pd.CategoricalDtype):
    return (vocabulary.get_indexer(values.cat.categories) + 1)[_taken(values.cat.codes.to_numpy(), rows)]
  return vocabulary.get_indexer(_taken(values.to_numpy(), rows)) + 1


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
