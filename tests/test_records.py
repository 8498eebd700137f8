"""The columnar Example encoder: every row parses to the message `tf.train.Example` builds from the same values,
for every layout prepare writes (no categorical or numerical feature, 1 to 3 tasks, ids of 1 to 9 varint
bytes and 0), and `tf.io.parse_example` reads the same tensors."""

import numpy as np
import pytest
import tensorflow as tf

from data_pipelines import crc32c, integrity, records


def _reference(cat, num, labels, true_prob=None):
  feature, int64s, floats = tf.train.Feature, tf.train.Int64List, tf.train.FloatList
  out = []
  for i in range(len(labels)):
    f = {records.CATEGORICAL: feature(int64_list=int64s(value=cat[i])),
         records.NUMERICAL: feature(float_list=floats(value=num[i])),
         records.LABELS: feature(float_list=floats(value=labels[i]))}
    if true_prob is not None:
      f[records.TRUE_PROB] = feature(float_list=floats(value=true_prob[i]))
    out.append(tf.train.Example(features=tf.train.Features(feature=f)))
  return out


@pytest.mark.parametrize('categorical,numerical,tasks,true_prob', [
    (3, 0, 1, False), (0, 5, 2, True), (16, 63, 2, True), (2, 2, 3, False)])
def test_rows_parse_to_the_protos_of_the_same_values(categorical, numerical, tasks, true_prob):
  rng = np.random.default_rng(categorical + numerical)
  n = 300
  bits = rng.integers(1, 63, size=(n, categorical))  # every varint width, 1 to 9 bytes
  cat = rng.integers(0, np.int64(2) ** bits, dtype=np.int64)
  cat[:4] = 0
  num = rng.normal(size=(n, numerical)).astype(np.float32)
  labels = (rng.random((n, tasks)) < 0.3).astype(np.float32)
  prob = rng.random((n, tasks)).astype(np.float32) if true_prob else None
  rows = [r.tobytes() for r in records.serialize_rows(cat, num, labels, prob)]
  assert [tf.train.Example.FromString(r) for r in rows] == _reference(cat, num, labels, prob)
  spec = {records.CATEGORICAL: tf.io.FixedLenFeature([categorical], tf.int64),
          records.NUMERICAL: tf.io.FixedLenFeature([numerical], tf.float32),
          records.LABELS: tf.io.FixedLenFeature([tasks], tf.float32)}
  parsed = tf.io.parse_example(rows, spec)
  np.testing.assert_array_equal(parsed[records.CATEGORICAL].numpy(), cat)
  np.testing.assert_array_equal(parsed[records.NUMERICAL].numpy(), num)
  np.testing.assert_array_equal(parsed[records.LABELS].numpy(), labels)


def test_no_rows_and_negative_ids():
  assert records.serialize_rows(np.zeros((0, 2), np.int64), np.zeros((0, 1)), np.zeros((0, 1))).shape[0] == 0
  with pytest.raises(ValueError, match='categorical ids must be >= 0'):
    records.serialize_rows(np.array([[1, -1]]), np.zeros((1, 0)), np.zeros((1, 1)))


def _bitwise_crc32c(data: bytes) -> int:
  crc = 0xFFFFFFFF
  for byte in data:
    crc ^= byte
    for _ in range(8):
      crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
  return crc ^ 0xFFFFFFFF


def test_crc32c_of_rows_matches_the_bitwise_definition(monkeypatch):
  assert crc32c.crc32c(b'123456789') == 0xE3069283  # the standard check value
  rng = np.random.default_rng(0)
  for width in (0, 1, 2, 7, 64, 65):
    rows = rng.integers(0, 256, size=(20, width), dtype=np.uint8)
    rows[:, ::3] = 0x5A  # positions where every row agrees fold into the constant
    rows[:, 10:14] = 0xC3  # and so do pairs of them
    assert crc32c.crc32c_rows(rows).tolist() == [_bitwise_crc32c(r.tobytes()) for r in rows]
  # Rows are taken in blocks: several blocks, the last one short, give the checksums of the rows one by one.
  monkeypatch.setattr(crc32c, 'BLOCK_ROWS', 3)
  rows = rng.integers(0, 256, size=(8, 9), dtype=np.uint8)
  rows[:, 4] = 7
  assert crc32c.crc32c_rows(rows).tolist() == [_bitwise_crc32c(r.tobytes()) for r in rows]
  last_varies = np.zeros((3, 5), np.uint8)
  last_varies[:, -1] = [1, 2, 3]
  assert crc32c.crc32c_rows(last_varies).tolist() == [_bitwise_crc32c(r.tobytes()) for r in last_varies]


def test_shards_read_back_with_tensorflow(tmp_path):
  rng = np.random.default_rng(1)
  cat = rng.integers(0, 5000, size=(250, 3))
  num = rng.normal(size=(250, 4)).astype(np.float32)
  labels = (rng.random((250, 2)) < 0.5).astype(np.float32)
  writer = records.ShardWriter(str(tmp_path), rows_per_shard=100)
  rows = records.serialize_rows(cat, num, labels)
  writer.write(rows[:130])
  writer.write(rows[130:])
  writer.close()
  assert writer.rows == [100, 100, 50] and len(writer.shards) == 3
  assert writer.sha256 == [integrity.sha256(p) for p in writer.shards]  # hashed as written, as read back
  # TFRecordDataset checks every length and data CRC; a wrong one fails the read.
  read = [r.numpy() for r in tf.data.TFRecordDataset(writer.shards)]
  assert read == [r.tobytes() for r in rows]
