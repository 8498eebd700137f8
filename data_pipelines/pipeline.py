"""tf.data from scenario partitions (TFF's ClientData over the same files: federated/client_data.py).

A dataset yields `(features, labels)` batches: `features = {'categorical': int64 [B, C], 'numerical':
float32 [B, N]}` and `labels = {task: float32 [B]}` (plus `features['true_prob']` float32 [B, T] when asked
for on synthetic data). Batches are parsed after batching, which is what keeps parsing cheap.
"""

from __future__ import annotations

import os
from typing import Callable, List

import tensorflow as tf

from data_pipelines import records
from data_pipelines import spec as spec_lib
from data_pipelines.config import PipelineConfig


def partition_pattern(data_dir: str, spec: spec_lib.DatasetSpec, split: str, scenario: str) -> str:
  if split not in spec.splits:
    raise ValueError(f'unknown split {split!r}; the data has {spec.splits}')
  return os.path.join(data_dir, split, spec.scenario(scenario).directory, records.SHARD_GLOB)


def parse_fn(spec: spec_lib.DatasetSpec, with_true_prob: bool = False) -> Callable:
  """Parses a batch of rows (records.record_dtype, as strings) into (features, labels)."""
  n_cat, n_num, tasks = len(spec.categorical), len(spec.numerical), spec.task_names
  if with_true_prob and not spec.has_true_probabilities:
    raise ValueError(f'{spec.dataset} data has no true probabilities (only synthetic data has)')
  width = records.spec_record_dtype(spec).itemsize // 4  # every field is 4 bytes wide

  def parse(serialized):
    words = tf.reshape(tf.io.decode_raw(serialized, tf.float32), [-1, width])  # [B, width], the ids bitcast
    features = {
        records.CATEGORICAL: tf.cast(tf.bitcast(words[:, :n_cat], tf.int32), tf.int64),
        records.NUMERICAL: words[:, n_cat:n_cat + n_num],
    }
    labels = words[:, n_cat + n_num:n_cat + n_num + len(tasks)]
    if with_true_prob:
      features[records.TRUE_PROB] = words[:, n_cat + n_num + len(tasks):]
    return features, {t: labels[:, i] for i, t in enumerate(tasks)}

  return parse


def dataset_from_pattern(pattern, spec: spec_lib.DatasetSpec, cfg: PipelineConfig, seed=None) -> tf.data.Dataset:
  """The streaming pipeline: interleave shards, shuffle rows, batch, parse in parallel, prefetch.

  The interleave is sequential on purpose: a parallel one hands records between threads one at a time,
  which measured 3x slower here (benchmarks/data_pipeline.py); parsing after batching is the parallel part.
  """
  seed = cfg.seed if seed is None else seed  # a tensor inside TFF computations (e.g. derived from the round)
  record_bytes = records.spec_record_dtype(spec).itemsize
  files = tf.data.Dataset.list_files(pattern, shuffle=cfg.shuffle_buffer > 0, seed=seed)
  ds = files.interleave(lambda f: tf.data.FixedLengthRecordDataset(f, record_bytes), cycle_length=cfg.cycle_length,
                        block_length=1)
  if cfg.num_epochs != 1:
    ds = ds.repeat(cfg.num_epochs if cfg.num_epochs > 0 else None)
  if cfg.shuffle_buffer > 0 and cfg.shuffle_block > 1:
    # Shuffling blocks of consecutive records costs a fraction of shuffling records one by one, and
    # `prepare` already wrote each partition's rows in a seeded random order.
    ds = ds.batch(cfg.shuffle_block).shuffle(max(1, cfg.shuffle_buffer // cfg.shuffle_block), seed=seed,
                                             reshuffle_each_iteration=True)
    ds = ds.rebatch(cfg.batch_size, drop_remainder=cfg.drop_remainder)
  else:
    if cfg.shuffle_buffer > 0:
      ds = ds.shuffle(cfg.shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(cfg.batch_size, drop_remainder=cfg.drop_remainder)
  ds = ds.map(parse_fn(spec, cfg.with_true_prob), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
  options = tf.data.Options()
  options.autotune.enabled = cfg.autotune
  return ds.prefetch(tf.data.AUTOTUNE).with_options(options)


def make_dataset(data_dir: str, spec: spec_lib.DatasetSpec, split: str, scenario: str,
                 cfg: PipelineConfig = PipelineConfig()) -> tf.data.Dataset:
  pattern = partition_pattern(data_dir, spec, split, scenario)
  if not tf.io.gfile.glob(pattern):
    raise FileNotFoundError(f'no shards match {pattern}: is {data_dir} fully prepared?')
  return dataset_from_pattern(pattern, spec, cfg)


def scenario_files(data_dir: str, spec: spec_lib.DatasetSpec, split: str, scenario: str) -> List[str]:
  return sorted(tf.io.gfile.glob(partition_pattern(data_dir, spec, split, scenario)))
