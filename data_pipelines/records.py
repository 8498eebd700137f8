"""Encoding canonical frames into TFRecord rows, and the record layout the tf.data pipeline parses.

One `tf.train.Example` per row with packed features (`categorical` int64[C], `numerical` float[N],
`labels` float[T] and, for synthetic data, `true_prob` float[T]): parsing a batch is then four tensor reads.
"""

from __future__ import annotations

import os
from typing import Dict, List

import numpy as np
import pandas as pd
import tensorflow as tf

from data_pipelines import sources
from data_pipelines import spec as spec_lib
from data_pipelines import statistics

CATEGORICAL = 'categorical'
NUMERICAL = 'numerical'
LABELS = 'labels'
TRUE_PROB = 'true_prob'
SHARD_PATTERN = 'part-{:05d}.tfrecord'


class Encoder:
  """Maps categorical strings to ids and normalizes numericals with the spec's statistics."""

  def __init__(self, spec: spec_lib.DatasetSpec, data_dir: str):
    self.spec = spec
    self._lookup: Dict[str, Dict[str, Dict[str, int]]] = {}  # scope -> feature -> value -> id
    for f in spec.categorical:
      for scope, rel in f.vocabulary_files.items():
        vocab = spec_lib.load_vocabulary(data_dir, rel)
        self._lookup.setdefault(scope, {})[f.name] = {v: i + 1 for i, v in enumerate(vocab)}

  def encode(self, frame: pd.DataFrame, scenario: str):
    """Returns (categorical int64 [n, C], numerical float32 [n, N], labels, true_prob or None, oov counts)."""
    scope = self.spec.scope(scenario)
    n = len(frame)
    cat = np.zeros((n, len(self.spec.categorical)), np.int64)
    oov = {}
    for j, f in enumerate(self.spec.categorical):
      values = frame[f.name]
      if f.hash_bins:
        cat[:, j] = tf.strings.to_hash_bucket_fast(values.to_numpy(dtype=str), f.hash_bins).numpy()
      else:
        ids = values.map(self._lookup[scope][f.name])
        unknown = ids.isna().to_numpy()
        oov[f.name] = int(unknown.sum() - (values == sources.MISSING_CATEGORY).sum())
        cat[:, j] = ids.fillna(0).to_numpy(np.int64)
    num = np.zeros((n, len(self.spec.numerical)), np.float32)
    for j, f in enumerate(self.spec.numerical):
      mean, std = f.statistics[scope]
      num[:, j] = (statistics.transform(frame[f.name].to_numpy(np.float64), f.normalization) - mean) / std
    labels = frame[self.spec.task_names].to_numpy(np.float32)
    true_prob = None
    if self.spec.has_true_probabilities:
      true_prob = frame[[sources.true_prob_column(t) for t in self.spec.task_names]].to_numpy(np.float32)
    return cat, num, labels, true_prob, oov


def serialize_rows(cat, num, labels, true_prob=None) -> List[bytes]:
  out = []
  Feature, Int64List, FloatList = tf.train.Feature, tf.train.Int64List, tf.train.FloatList
  for i in range(len(labels)):
    feature = {
        CATEGORICAL: Feature(int64_list=Int64List(value=cat[i])),
        NUMERICAL: Feature(float_list=FloatList(value=num[i])),
        LABELS: Feature(float_list=FloatList(value=labels[i])),
    }
    if true_prob is not None:
      feature[TRUE_PROB] = Feature(float_list=FloatList(value=true_prob[i]))
    out.append(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
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
    self._writer = None
    self._in_shard = 0

  def write(self, records: List[bytes]) -> None:
    for r in records:
      if self._writer is None or self._in_shard >= self.rows_per_shard:
        self._open_next()
      self._writer.write(r)
      self._in_shard += 1
      self.rows[-1] += 1

  def _open_next(self) -> None:
    self.close()
    path = os.path.join(self.directory, SHARD_PATTERN.format(len(self.shards)))
    self.shards.append(path)
    self.rows.append(0)
    self._writer = tf.io.TFRecordWriter(path)
    self._in_shard = 0

  def close(self) -> None:
    if self._writer is not None:
      self._writer.close()
      self._writer = None
