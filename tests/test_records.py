"""The shard layout: fixed-width rows that numpy and tf.data read alike, written in shards and finished in place
from provisional values (ids through a table, numbers normalized, OOV counted, SHA-256 of the finished bytes)."""

import json
import os

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from data_pipelines import integrity, pipeline, prepare, provisional, records, sources, statistics
from data_pipelines import spec as spec_lib
from data_pipelines.config import PipelineConfig, PrepareConfig
from data_pipelines.errors import InputError
from tests import helpers


def _columns(rng, n, categorical, numerical, tasks, true_prob):
  cat = rng.integers(0, 2**31 - 1, size=(n, categorical)).astype(np.int32)
  num = rng.normal(size=(n, numerical)).astype(np.float32)
  labels = (rng.random((n, tasks)) < 0.3).astype(np.float32)
  prob = rng.random((n, tasks)).astype(np.float32) if true_prob else None
  return cat, num, labels, prob


def _spec(categorical, numerical, tasks, true_prob):
  return spec_lib.DatasetSpec(
      dataset='test', categorical=[spec_lib.CategoricalFeature(f'c{i}') for i in range(categorical)],
      numerical=[spec_lib.NumericalFeature(f'n{i}') for i in range(numerical)],
      tasks=[spec_lib.Task(f't{i}', '') for i in range(tasks)], scenario_column='s',
      scenarios=[spec_lib.Scenario('A', 0, 'A')], splits=['train'], has_true_probabilities=true_prob)


@pytest.mark.parametrize('categorical,numerical,tasks,true_prob', [
    (3, 0, 1, False), (0, 5, 2, True), (16, 63, 2, True), (2, 2, 3, False)])
def test_rows_read_back_as_written_by_numpy_and_by_the_pipeline(tmp_path, categorical, numerical, tasks,
                                                                  true_prob):
  cat, num, labels, prob = _columns(np.random.default_rng(categorical + numerical), 250, categorical, numerical,
                                    tasks, true_prob)
  spec = _spec(categorical, numerical, tasks, true_prob)
  dtype = records.spec_record_dtype(spec)
  assert dtype.itemsize == 4 * (categorical + numerical + tasks * (2 if true_prob else 1))  # no padding
  writer = records.ShardWriter(str(tmp_path / 'train' / 'A'), rows_per_shard=100)
  packed = records.pack(dtype, cat, num, labels, prob)
  writer.write(packed[:130])
  writer.write(packed[130:])
  writer.close()
  assert writer.rows == [100, 100, 50] and [os.path.basename(p) for p in writer.shards] == [
      'part-00000.rows', 'part-00001.rows', 'part-00002.rows']
  back = np.concatenate([np.fromfile(p, dtype) for p in writer.shards])
  np.testing.assert_array_equal(back[records.CATEGORICAL], cat)
  np.testing.assert_array_equal(back[records.NUMERICAL], num)

  cfg = PipelineConfig(batch_size=64, shuffle_buffer=0, cycle_length=1, with_true_prob=true_prob)
  batches = list(pipeline.make_dataset(str(tmp_path), spec, 'train', 'A', cfg))
  features = {k: np.concatenate([f[k].numpy() for f, _ in batches]) for k in batches[0][0]}
  assert features[records.CATEGORICAL].dtype == np.int64
  np.testing.assert_array_equal(features[records.CATEGORICAL], cat)
  np.testing.assert_array_equal(features[records.NUMERICAL], num)
  for i, t in enumerate(spec.task_names):
    np.testing.assert_array_equal(np.concatenate([l[t].numpy() for _, l in batches]), labels[:, i])
  if true_prob:
    np.testing.assert_array_equal(features[records.TRUE_PROB], prob)


def test_a_shard_cut_short_fails_the_read(tmp_path):
  spec = _spec(2, 2, 1, False)
  dtype = records.spec_record_dtype(spec)
  writer = records.ShardWriter(str(tmp_path / 'train' / 'A'), rows_per_shard=100)
  writer.write(records.pack(dtype, *_columns(np.random.default_rng(0), 10, 2, 2, 1, False)))
  writer.close()
  with open(writer.shards[0], 'r+b') as f:
    f.truncate(dtype.itemsize * 10 - 3)
  with pytest.raises(tf.errors.InvalidArgumentError, match='not an exact multiple of the record length'):
    list(pipeline.make_dataset(str(tmp_path), spec, 'train', 'A', PipelineConfig(shuffle_buffer=0)))


def test_finishing_maps_ids_normalizes_counts_oov_and_hashes_the_result(tmp_path):
  rng = np.random.default_rng(3)
  n = 1000
  ids = statistics.ValueCounts()  # provisional ids: in the order values are met, across chunks
  codes, first = ids.codes(pd.Series(['a', 'b', sources.MISSING_CATEGORY, 'new', 'a']))
  codes_2, then = ids.codes(pd.Series(['new', 'c']).astype('category'))
  assert first[codes].tolist() == [0, 1, 2, 3, 0] and then[codes_2].tolist() == [3, 4]
  provisional_ids = rng.integers(0, 5, size=(n, 1)).astype(np.int32)
  offset = np.array([1.7e9])  # a timestamp: far from zero, its spread small
  raw = offset + rng.normal(scale=1e3, size=(n, 1))
  stored = (raw - offset).astype(np.float32)  # as prepare writes it, centred
  dtype = records.record_dtype(1, 1, 1, False)
  path = str(tmp_path / 'part-00000.rows')
  records.pack(dtype, provisional_ids, stored, np.zeros((n, 1), np.float32)).tofile(path)
  mean, std = raw.mean(axis=0), raw.std(axis=0)
  remap = np.array([2, 1, 0, 0, 3], np.int32)  # 'missing' and 'new' are outside the vocabulary
  finish = provisional.Finish([remap], [provisional.missing_id(ids)], [True], offset - mean, std)
  digest, oov = provisional.finish_shard(path, dtype, finish)
  rows = np.fromfile(path, dtype)
  np.testing.assert_array_equal(rows[records.CATEGORICAL], remap[provisional_ids])
  assert oov.tolist() == [int((provisional_ids == 3).sum())]  # 'new' counted, the missing value not
  # float32 keeps its precision: normalized from float64 the error is float32 rounding of the result alone
  np.testing.assert_allclose(rows[records.NUMERICAL], (raw - mean) / std, atol=1e-6)
  assert digest == integrity.sha256(path)


def test_data_of_spec_version_1_is_not_read_but_gives_its_encoding(tmp_path):
  out = str(tmp_path / 'data')
  prepare.prepare(PrepareConfig(output=out, rows_per_scenario=300), log=lambda *_: None)
  with open(os.path.join(out, spec_lib.SPEC_FILE)) as f:
    d = json.load(f)
  d['version'] = 1
  with open(os.path.join(out, spec_lib.SPEC_FILE), 'w') as f:
    json.dump(d, f)
  old = spec_lib.load_spec(out)
  with pytest.raises(InputError, match='spec version 1 .*prepare it again'):
    pipeline.make_dataset(out, old, 'train', 'NL')
  again = str(tmp_path / 'again')
  prepare.prepare(PrepareConfig(output=again, rows_per_scenario=300, seed=1, encoding_from=out), log=lambda *_: None)
  spec = spec_lib.load_spec(again)
  assert spec.version == spec_lib.SPEC_VERSION
  assert next(iter(pipeline.make_dataset(again, spec, 'train', 'NL')))[0]['categorical'].shape[1] == 16


@pytest.mark.parametrize('kw', [{}, {'statistics_scope': 'scenario', 'min_count': 3}],
                         ids=['shared', 'per_scenario_pruned'])
def test_the_encoder_serving_checks_against_writes_what_prepare_wrote(tmp_path, kw):
  """`records.Encoder` (raw rows -> model inputs, in numpy) and prepare's provisional rows finished in place
  are two codings of one encoding: the same ids, numbers within float32 rounding."""
  cfg = PrepareConfig(output=str(tmp_path / 'data'), rows_per_scenario=600, shuffle_rows=False, **kw)
  prepare.prepare(cfg, log=lambda *_: None)
  spec = spec_lib.load_spec(cfg.output)
  rows, _ = helpers.read_all(prepare.make_source(cfg), 'test')
  encoder = records.Encoder(spec, cfg.output)
  dtype = records.spec_record_dtype(spec)
  for scenario in spec.scenarios:
    raw = rows[rows[sources.SCENARIO] == scenario.name].reset_index(drop=True)
    cat, num, labels, _, _ = encoder.encode(raw, scenario.name)
    written = np.concatenate([np.fromfile(p, dtype) for p in
                              pipeline.scenario_files(cfg.output, spec, 'test', scenario.name)])
    np.testing.assert_array_equal(written[records.CATEGORICAL], cat)
    np.testing.assert_allclose(written[records.NUMERICAL], num, atol=1e-6)
    np.testing.assert_array_equal(written[records.LABELS], labels)
