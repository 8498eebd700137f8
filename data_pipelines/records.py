"""Encoding canonical frames into TFRecord rows, and the record layout the tf.data pipeline parses.

One `tf.train.Example` per row with packed features (`categorical` int64[C], `numerical` float[N],
`labels` float[T] and, for synthetic data, `true_prob` float[T]): parsing a batch is then four tensor reads.
"""

from __future__ import annotations

import hashlib
import os
from typing import Dict, List, Optional

import numpy as np
import pandas as pd

from data_pipelines import crc32c
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


def serialize_rows(cat, num, labels, true_prob=None) -> np.ndarray:
  """[n, width] uint8: row i is the serialized `tf.train.Example` of row i, encoded with numpy on whole columns.

  Building a proto per row cost about 100 us a row, most of prepare's time. The message is fixed but for the
  varint-encoded ids, and each id column is written at the width its largest id needs: smaller ids carry
  continuation bytes (0x80) before their last, which protobuf parsers read as the same value. So every row of
  a call has one width, and TFRecord framing and its checksums are computed on whole columns too
  (`frame_records`). The float features are packed little-endian float32, as protobuf writes them; tests check
  the bytes parse to what `tf.train.Example` builds.
  """
  n = len(labels)
  if not n:
    return np.zeros((0, 0), np.uint8)
  floats = [(NUMERICAL, num), (LABELS, labels)] + ([(TRUE_PROB, true_prob)] if true_prob is not None else [])
  suffix = np.concatenate([_float_entry(name, np.asarray(v, np.float32).reshape(n, -1)) for name, v in floats],
                          axis=1)
  ids = np.asarray(cat).reshape(n, -1)
  id_bytes = _varints(ids)
  prefix = np.frombuffer(_categorical_prefix(id_bytes.shape[1], ids.shape[1], suffix.shape[1]), np.uint8)
  return np.concatenate([np.broadcast_to(prefix, (n, len(prefix))), id_bytes, suffix], axis=1)


def frame_records(rows: np.ndarray) -> np.ndarray:
  """[n, width + 16] uint8: TFRecord framing of each row (uint64 length, masked CRC-32C of the length, the row,
  masked CRC-32C of the row), so that the file is the rows' bytes in order."""
  n, width = rows.shape
  length = int(width).to_bytes(8, 'little')
  header = np.frombuffer(length + int(crc32c.masked(crc32c.crc32c(length))).to_bytes(4, 'little'), np.uint8)
  framed = np.empty((n, width + 16), np.uint8)
  framed[:, :12] = header
  framed[:, 12:12 + width] = rows
  framed[:, 12 + width:] = crc32c.masked(crc32c.crc32c_rows(rows)).astype('<u4').view(np.uint8).reshape(n, 4)
  return framed


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


def _varints(ids: np.ndarray) -> np.ndarray:
  """[n, bytes] uint8: each row's ids as protobuf varints, column c at the width its largest id needs."""
  if ids.size and ids.min() < 0:
    raise ValueError(f'categorical ids must be >= 0, got {ids.min()}')
  v = ids.astype(np.uint64)
  largest = v.max(axis=0) if len(v) else np.zeros(v.shape[1], np.uint64)
  width = np.ones(v.shape[1], np.int64)  # 7-bit groups up to the highest non-zero one of the largest id
  for k in range(1, 10):
    width += largest >= np.uint64(1 << (7 * k))
  groups = np.empty(v.shape + (int(width.max(initial=1)),), np.uint8)
  for g in range(groups.shape[2]):
    more = np.where(g + 1 < width, 0x80, 0).astype(np.uint64)  # continuation bit on all but a column's last
    groups[..., g] = ((v >> np.uint64(7 * g)) & np.uint64(0x7F)) | more
  keep = np.arange(groups.shape[2]) < width[:, None]  # [columns, groups]
  return groups[:, keep].reshape(len(v), int(width.sum()) if v.shape[1] else 0)


class ShardWriter:
  """Writes one partition's rows into shards of at most `rows_per_shard` rows."""

  def __init__(self, directory: str, rows_per_shard: int):
    if rows_per_shard < 1:
      raise ValueError(f'rows_per_shard must be positive, got {rows_per_shard}')
    os.makedirs(directory, exist_ok=True)
    self.directory, self.rows_per_shard = directory, rows_per_shard
    self.shards: List[str] = []
    self.rows: List[int] = []  # rows per shard
    # SHA-256 per shard, of the bytes as written: hashed here, beside the encoding threads (hashlib releases
    # the GIL), rather than by reading every shard back at the end (about a second for 1M AliExpress-layout
    # rows, with nothing to overlap it).
    self.sha256: List[str] = []
    self._file = None
    self._digest = None
    self._in_shard = 0

  def write(self, rows: np.ndarray) -> None:
    """Appends `rows` (serialize_rows' output), opening the next shard whenever one is full."""
    self.write_framed(frame_records(rows))

  def write_framed(self, framed: np.ndarray) -> None:
    """Appends rows already framed (frame_records' output); a record never spans two shards."""
    start = 0
    while start < len(framed):
      if self._file is None or self._in_shard >= self.rows_per_shard:
        self._open_next()
      take = min(len(framed) - start, self.rows_per_shard - self._in_shard)
      block = framed[start:start + take].data
      self._file.write(block)
      self._digest.update(block)
      self._in_shard += take
      self.rows[-1] += take
      start += take

  def _open_next(self) -> None:
    self.close()
    path = os.path.join(self.directory, SHARD_PATTERN.format(len(self.shards)))
    self.shards.append(path)
    self.rows.append(0)
    self._file = open(path, 'wb')  # pylint: disable=consider-using-with
    self._digest = hashlib.sha256()
    self._in_shard = 0

  def close(self) -> None:
    if self._file is not None:
      self._file.close()
      self._file = None
      self.sha256.append(self._digest.hexdigest())
