"""Typed configuration of data preparation and of the input pipeline; the CLI exposes each field as a flag."""

from __future__ import annotations

import dataclasses
from typing import Tuple

from data_pipelines.flagconfig import field as _field

DATASETS = ('synthetic', 'aliexpress', 'aliccp', 'census', 'tenrec', 'csv')


@dataclasses.dataclass
class PrepareConfig:
  dataset: str = _field('synthetic', 'Source format: ' + ', '.join(DATASETS) + '.', enum=DATASETS)
  input: str = _field('', 'Source file or folder (not needed for synthetic).')
  test_input: str = _field('', 'csv: a separate test file; without it rows are split by a seeded draw.')
  output: str = _field('', 'Folder to write the prepared partitions, spec.json and summary.json into.')
  overwrite: bool = _field(False, 'Replace an existing prepared folder at --output.')
  seed: int = _field(0, 'Seed of the synthetic generator and of the train/test draw.')
  test_fraction: float = _field(0.2, 'Share of rows drawn into test when the source has no test file.')
  valid_fraction: float = _field(0.1, 'Share of each scenario\'s train rows held out (seeded) as the valid split '
                                 'that training selects models on; 0: none. A source with its own validation '
                                 'files (Ali-CCP) uses them instead.')
  scenarios: Tuple[str, ...] = _field((), 'Keep only these scenarios (default: all); others are counted as dropped.')
  statistics_scope: str = _field(
      'shared', 'shared: one vocabulary and normalization for all scenarios (needed for global embeddings); '
      'scenario: one per scenario, so nothing about a scenario\'s categories leaves it.',
      enum=('shared', 'scenario'))
  encoding_from: str = _field('', 'A prepared folder whose encoding (vocabularies, normalization, scenarios) to '
                              'reuse instead of computing it, so that its trained models read these rows.')
  min_count: int = _field(1, 'Categories seen fewer times in train go to the out-of-vocabulary bucket (2 trains '
                          'the bucket on the rare ones, but cost AUC on a real sparse-id sample: '
                          'benchmarks/results/defaults.md).')
  max_vocabulary_size: int = _field(100_000, 'Keep at most this many categories per feature, the most frequent '
                                    '(bounds embedding memory); 0: no limit.')
  hash_bins: int = _field(0, 'Hash every categorical feature into this many bins instead of a vocabulary (0: off).')
  on_bad_row: str = _field('error', 'error: stop at the first bad value, naming file, row and column; '
                           'drop: drop such rows and count them per reason in summary.json.',
                           enum=('error', 'drop'))
  rows_per_shard: int = _field(200_000, 'Rows per shard (a file of fixed-width rows).')
  shuffle_rows: bool = _field(True, 'Write each chunk of a partition in a seeded random order (helps the '
                              'block shuffle of the input pipeline).')
  encode_threads: int = _field(2, 'Threads that pack the rows read (numpy releases the GIL for their column '
                                'work), written in order by one writer thread, and that finish the shards.')
  chunk_rows: int = _field(50_000, 'Rows read at a time; bounds memory.')
  arrow_csv: bool = _field(True, 'Parse CSV files with pyarrow while their rows are clean (no empty or non-finite '
                           'number, no leading space in text), pandas from the first chunk that is not; '
                           'the prepared rows are the same either way (data_pipelines/arrow_csv.py).')
  # Synthetic.
  rows_per_scenario: int = _field(25_000, 'synthetic: rows per scenario (train + test).')
  test_rows_per_scenario: int = _field(0, 'synthetic: test rows per scenario (0: test_fraction of '
                                       'rows_per_scenario). Train rows are the same either way.')
  ctr_rate: float = _field(0.08, 'synthetic: mean click rate.')
  ctcvr_rate: float = _field(0.015, 'synthetic: mean click-and-conversion rate.')
  feature_shift: float = _field(1.0, 'synthetic: how much feature distributions differ between scenarios.')
  concept_shift: float = _field(1.0, 'synthetic: weight of each scenario\'s own part of the true logits.')
  task_conflict: float = _field(0.6, 'synthetic: how strongly CTR and CVR effects oppose on conflicting features.')
  scenario_clusters: int = _field(0, 'synthetic: group the scenarios into this many clusters that share most of '
                                  'their own concept (0: every scenario its own).')
  cluster_share: float = _field(0.8, 'synthetic: with --scenario_clusters, the share of a scenario\'s own logit '
                                'part (in variance) that its cluster shares.')
  scenario_rows: Tuple[int, ...] = _field((), 'synthetic: rows (train + test) of each scenario, in order '
                                          '(default: --rows_per_scenario each).')
  regime: str = _field('', 'synthetic: a named setting of the generator (data_pipelines/synthetic.py REGIMES): '
                       'clustered (8 scenarios in 2 clusters), unequal (one scenario of 2,000 rows), sparse_ids '
                       '(three id columns, no numerical one); it sets the flags it names, which must then be left '
                       'at their defaults.', enum=('', 'clustered', 'unequal', 'sparse_ids'))
  # AliExpress.
  layout: str = _field('auto', 'aliexpress: processed (AliExpress_<CC>/train.csv) or raw (Tianchi files).',
                       enum=('auto', 'processed', 'raw'))
  raw_categorical_columns: Tuple[str, ...] = _field(
      (), 'aliexpress raw layout: categorical columns (user_1..user_32, item_1..item_47); default: inferred.')
  # Census-Income.
  scenario_column: str = _field('', 'census: the scenario column (default race); csv: required.')
  # Tenrec.
  tasks: Tuple[str, ...] = _field(('click', 'like'), 'tenrec: feedback columns used as tasks.')
  # csv (and tenrec's feature choice).
  categorical_columns: Tuple[str, ...] = _field((), 'csv/tenrec: categorical feature columns.')
  numerical_columns: Tuple[str, ...] = _field((), 'csv/tenrec: numerical feature columns.')
  label_columns: Tuple[str, ...] = _field((), 'csv: 0/1 label columns, one task each.')
  normalization: str = _field('standard', 'csv: normalization of the numerical columns.',
                              enum=('none', 'standard', 'log_standard'))
  separator: str = _field(',', 'csv: field separator.')


@dataclasses.dataclass
class PipelineConfig:
  batch_size: int = _field(512, 'Examples per batch.')
  shuffle_buffer: int = _field(10_000, 'Shuffle buffer in examples (0: no shuffling).')
  shuffle_block: int = _field(32, 'Records shuffled together as one block (1: shuffle single records, slower).')
  seed: int = _field(0, 'Seed of the shuffle.')
  num_epochs: int = _field(1, 'Passes over the data per dataset iteration.')
  cycle_length: int = _field(4, 'Shards read in parallel.')
  drop_remainder: bool = _field(False, 'Drop the last incomplete batch.')
  with_true_prob: bool = _field(False, 'Also yield the true probabilities (synthetic data only).')
  autotune: bool = _field(
      False, "tf.data's autotuning of the parallel parse and the prefetch. Off by default: destroying an autotuned "
      "iterator joins its tuning thread, which first sleeps out its tuning period (up to seconds), so each client "
      "that reduces a dataset inside a round may idle there; measured on the default model's round, 5 of 8 rounds "
      "idled 0.3-1.9 s at their end with it on, none with it off (README, Training).")
