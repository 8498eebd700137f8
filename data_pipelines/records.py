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
    # scope -> feature -> its vocabulary as an index (hashed once): value -> position, id = position + 1
    self._lookup: Dict[str, Dict[str, pd.Index]] = {}
    for f in spec.categorical:
      for scope, rel in f.vocabulary_files.items():
        self._lookup.setdefault(scope, {})[f.name] = pd.Index(spec_lib.load_vocabulary(data_dir, rel), dtype=object)

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
        ids = self._lookup[scope][f.name].get_indexer(values) + 1  # unknown: -1 + 1, the OOV bucket
        oov[f.name] = int((ids == 0).sum() - (values == sources.MISSING_CATEGORY).sum())
        cat[:, j] = ids
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
  """One serialized `tf.train.Example` per row, encoded with numpy on whole columns.

  Building a proto per row cost about 100 us a row, most of prepare's time. The message is fixed but for
  the varint-encoded ids, so every row is a cached prefix (by its id bytes' length), its id bytes and its
  float features: a few slices per row. The float features are packed little-endian float32, as protobuf
  writes them; tests check the bytes parse to what `tf.train.Example` builds.
  """
  n = len(labels)
  if not n:
    return []
  floats = [(NUMERICAL, num), (LABELS, labels)] + ([(TRUE_PROB, true_prob)] if true_prob is not None else [])
  suffix = np.concatenate([_float_entry(name, np.asarray(v, np.float32).reshape(n, -1)) for name, v in floats],
                          axis=1)
  ids = np.asarray(cat).reshape(n, -1)
  payload, widths = _varints(ids)
  widths = widths.tolist()
  offsets = np.concatenate([[0], np.cumsum(widths, dtype=np.int64)]).tolist()
  size = suffix.shape[1]
  prefixes = {w: _categorical_prefix(w, ids.shape[1], size) for w in set(widths)}
  payload, suffix = payload.tobytes(), suffix.tobytes()
  return [prefixes[w] + payload[o:o + w] + suffix[i * size:(i + 1) * size]
          for i, (o, w) in enumerate(zip(offsets, widths))]


def _varint(value: int) -> bytes:
  out = bytearray()
  while True:
    byte, value = value & 0x7F, value >> 7
    out.append(byte | (0x80 if value else 0))
    if not value:
      return bytes(out)


def _field(tag: int, body: bytes) -> bytes:
  """A length-delimited protobuf field: tag byte, varint length, body."""
  return bytes([tag]) + _varint(len(body)) + body


def _entry_header(name: str, feature_tag: int, list_body_size: int) -> bytes:
  """Features' map entry {key: name, value: Feature{<list at feature_tag>: list}}, up to the list's values
  (`list_body_size` bytes of them, a packed field 1)."""
  values_header = bytes([0x0A]) + _varint(list_body_size) if list_body_size else b''
  feature = bytes([feature_tag]) + _varint(len(values_header) + list_body_size) + values_header
  feature_size = len(feature) + list_body_size
  entry = _field(0x0A, name.encode()) + bytes([0x12]) + _varint(feature_size)
  return bytes([0x0A]) + _varint(len(entry) + feature_size) + entry + feature


def _float_entry(name: str, values: np.ndarray) -> np.ndarray:
  """[n, bytes] uint8: each row's map entry of a float feature (Feature.float_list is field 2)."""
  header = np.frombuffer(_entry_header(name, 0x12, 4 * values.shape[1]), np.uint8)
  data = np.ascontiguousarray(values, '<f4').view(np.uint8).reshape(len(values), -1)
  return np.concatenate([np.broadcast_to(header, (len(values), len(header))), data], axis=1)


def _categorical_prefix(width: int, columns: int, suffix_size: int) -> bytes:
  """The Example up to a row's id bytes, for rows whose ids take `width` bytes (Feature.int64_list: field 3)."""
  entry = _entry_header(CATEGORICAL, 0x1A, width if columns else 0)
  features_size = len(entry) + width + suffix_size
  return bytes([0x0A]) + _varint(features_size) + entry


def _varints(ids: np.ndarray):
  """(the ids as protobuf varints, row after row: flat uint8; bytes per row)."""
  if ids.size and ids.min() < 0:
    raise ValueError(f'categorical ids must be >= 0, got {ids.min()}')
  v = ids.astype(np.uint64)
  length = np.ones(v.shape, np.int64)  # 7-bit groups up to the highest non-zero one; 0 takes one byte
  k = 1
  while k < 10 and v.size and (v >> np.uint64(7 * k)).any():
    length += v >= np.uint64(1 << (7 * k))
    k += 1
  groups = np.empty(v.shape + (k,), np.uint8)
  for g in range(k):
    groups[..., g] = ((v >> np.uint64(7 * g)) & np.uint64(0x7F)) | np.where(g + 1 < length, 0x80, 0).astype(np.uint64)
  return groups[np.arange(k) < length[..., None]], length.sum(axis=1)


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
