"""`pfmsmt prepare`: source files -> per-scenario TFRecord shards, spec.json and summary.json.

Two streaming passes: statistics on train, then encoding of every split. Output is written to a temporary
folder beside --output and renamed at the end, so a failed run never leaves a half-prepared folder behind.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import dataclasses
import itertools
import json
import os
import shutil
import tempfile
import time
from typing import Dict, List

import numpy as np

from data_pipelines import accounting as accounting_lib
from data_pipelines import aliccp, aliexpress, census, chunk_cache, csv_dataset, records, sources
from data_pipelines import statistics, synthetic
from data_pipelines import spec as spec_lib
from data_pipelines import integrity, table, tenrec, valid_split
from data_pipelines.config import PrepareConfig
from data_pipelines.errors import InputError
from data_pipelines import metrics

SCENARIO_NOT_IN_TRAIN = 'scenario_not_in_train'
SCENARIO_NOT_IN_ENCODING = 'scenario_not_in_encoding'  # with --encoding_from


def synthetic_config(cfg: PrepareConfig) -> synthetic.SyntheticConfig:
  """The generator's settings from the flags; a --regime sets those it names (which must be left at default)."""
  values = dict(seed=cfg.seed, rows_per_scenario=cfg.rows_per_scenario, test_fraction=cfg.test_fraction,
                ctr_rate=cfg.ctr_rate, ctcvr_rate=cfg.ctcvr_rate, feature_shift=cfg.feature_shift,
                concept_shift=cfg.concept_shift, task_conflict=cfg.task_conflict, test_rows=cfg.test_rows_per_scenario,
                scenario_clusters=cfg.scenario_clusters, cluster_share=cfg.cluster_share,
                scenario_rows=tuple(cfg.scenario_rows), **({'scenarios': tuple(cfg.scenarios)} if cfg.scenarios else {}))
  if cfg.regime:
    defaults = PrepareConfig()
    for key in synthetic.REGIMES[cfg.regime]:  # a PrepareConfig field of the same name, or the generator's own
      if hasattr(defaults, key) and getattr(cfg, key) != getattr(defaults, key):
        raise ValueError(f'--regime={cfg.regime} sets --{key}; leave --{key} at its default or drop --regime')
    values.update(synthetic.REGIMES[cfg.regime])
  return synthetic.SyntheticConfig(**values)


def make_source(cfg: PrepareConfig) -> sources.Source:
  """The source of `cfg.dataset`, with its valid split (valid_split.py)."""
  if not 0 <= cfg.valid_fraction < 1:
    raise ValueError(f'--valid_fraction must be in [0, 1), got {cfg.valid_fraction}')
  return valid_split.with_validation(_dataset_source(cfg), cfg.valid_fraction, cfg.seed)


def _dataset_source(cfg: PrepareConfig) -> sources.Source:
  split = table.SplitPolicy(seed=cfg.seed, test_fraction=cfg.test_fraction)
  if cfg.dataset != 'synthetic' and not cfg.input:
    raise ValueError(f'--input is required for --dataset={cfg.dataset}')
  if cfg.dataset == 'synthetic':
    return synthetic.SyntheticSource(synthetic_config(cfg))
  if cfg.dataset == 'aliexpress':
    return aliexpress.aliexpress_source(cfg.input, cfg.layout, cfg.scenarios, cfg.raw_categorical_columns,
                                        cfg.chunk_rows)
  if cfg.dataset == 'aliccp':
    return aliccp.aliccp_source(cfg.input, cfg.scenarios)
  if cfg.dataset == 'census':
    return census.census_source(cfg.input, cfg.scenario_column or census.DEFAULT_SCENARIO_COLUMN, cfg.scenarios,
                                split)
  if cfg.dataset == 'tenrec':
    return tenrec.tenrec_source(cfg.input, cfg.tasks, cfg.categorical_columns or tenrec.DEFAULT_CATEGORICAL,
                                cfg.numerical_columns, cfg.scenarios, split)
  if cfg.dataset == 'csv':
    return csv_dataset.csv_source(
        cfg.input, categorical=cfg.categorical_columns, numerical=cfg.numerical_columns, labels=cfg.label_columns,
        scenario_column=cfg.scenario_column, test_path=cfg.test_input or None, scenarios=cfg.scenarios,
        normalization=cfg.normalization, sep=cfg.separator, split_policy=split)
  raise ValueError(f'unknown dataset {cfg.dataset!r}')


def _check_output(cfg: PrepareConfig) -> str:
  if not cfg.output:
    raise ValueError('--output is required')
  out = os.path.abspath(cfg.output)
  if os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)) and not cfg.overwrite:
    raise FileExistsError(f'{out} exists and is not empty; pass --overwrite to replace it')
  parent = os.path.dirname(out)
  os.makedirs(parent, exist_ok=True)
  if not os.access(parent, os.W_OK):
    raise PermissionError(f'cannot write into {parent}')
  return out


def prepare(cfg: PrepareConfig, log=print) -> dict:
  """Source rows -> per-scenario TFRecord partitions in `cfg.output`, in two passes (statistics, then rows).

  Args:
    cfg: the source, its format and the encoding settings (`pfmsmt prepare --help`).
    log: receives progress lines.

  Returns:
    The summary also written to OUTPUT/summary.json: rows read, kept and dropped (with reasons) per split and
    scenario, the vocabularies' sizes, and on synthetic data the oracle AUC (binned, with its largest error).
  """
  start = time.time()
  if cfg.encode_threads < 1:
    raise ValueError(f'--encode_threads must be at least 1, got {cfg.encode_threads}')
  out = _check_output(cfg)
  source = make_source(cfg)
  source.check_files()
  work = tempfile.mkdtemp(prefix='.prepare-', dir=os.path.dirname(out))
  try:
    summary = _prepare_into(work, source, cfg, log)
    summary['seconds'] = round(time.time() - start, 2)
    _write_json(os.path.join(work, spec_lib.SUMMARY_FILE), summary)
    if os.path.exists(out):
      shutil.rmtree(out)
    os.rename(work, out)
  except BaseException:
    shutil.rmtree(work, ignore_errors=True)
    raise
  return summary


def _prepare_into(work: str, source: sources.Source, cfg: PrepareConfig, log) -> dict:
  cached = cfg.cache_chunks and not cfg.encoding_from  # without pass 1 there is nothing to keep
  with chunk_cache.ChunkCache(os.path.dirname(work)) if cached else contextlib.nullcontext() as cache:
    return _encode_into(work, source, cfg, log, cache)


def _encode_into(work: str, source: sources.Source, cfg: PrepareConfig, log, cache) -> dict:
  # Rows are counted where they are parsed: by pass 1 for the splits it caches, by pass 2 for the others.
  acct = accounting_lib.RowAccounting()
  contexts = {split: sources.ReadContext(split, acct, cfg.on_bad_row, cfg.chunk_rows, cfg.arrow_csv)
              for split in source.splits}
  if cfg.encoding_from:
    spec = _reuse_encoding(cfg.encoding_from, source, cfg.scenarios, work)
    scenarios, vocabularies = spec.scenario_names, {}
  else:
    spec, scenarios, vocabularies = _statistics_pass(source, cfg, work, contexts, cache)
  spec.save(work)
  log(f'prepare: {source.dataset}: {len(spec.categorical)} categorical, {len(spec.numerical)} numerical features, '
      f'tasks {spec.task_names}, scenarios {scenarios}')

  # Pass 2: encode and write every split: the cached chunks, then the splits pass 1 did not read.
  encoder = records.Encoder(spec, work)
  order_rng = np.random.default_rng([cfg.seed, 7])
  shards: Dict[tuple, List[str]] = {}
  shard_rows: Dict[str, int] = {}
  shard_digests: Dict[str, str] = {}
  # scenario -> one streamed AUC per task: holding the test rows' labels and probabilities for an exact AUC made
  # prepare's peak grow with the rows (290 MiB at 10M synthetic rows against 243 at 1M; streamed: 255 and 252)
  oracle_aucs: Dict[str, List[metrics.BinnedAuc]] = {}
  cached = cache.splits if cache else []
  chunks = itertools.chain(cache.chunks() if cache else (),
                           source.split_parts([s for s in spec.splits if s not in cached], contexts))
  writers: Dict[tuple, records.ShardWriter] = {}  # (split, scenario) -> its shards

  def write(split, scenario, encoded) -> None:
    framed, labels, true_prob, oov = encoded.result()
    if (split, scenario) not in writers:
      writers[(split, scenario)] = records.ShardWriter(
          os.path.join(work, split, spec.scenario(scenario).directory), cfg.rows_per_shard)
    writers[(split, scenario)].write_framed(framed)
    acct.keep(split, scenario, len(labels), dict(zip(spec.task_names, labels.sum(axis=0).tolist())))
    for feature, n in oov.items():
      acct.handled(split, scenario, 'unknown_category_to_oov', feature, n)
    if true_prob is not None and split == 'test':
      aucs = oracle_aucs.setdefault(scenario, [metrics.BinnedAuc() for _ in spec.task_names])
      for i, auc in enumerate(aucs):
        auc.add(labels[:, i], true_prob[:, i])

  # Encoding runs in threads (numpy's column work releases the GIL, so it overlaps on two cores); the rows are
  # written here, in the order read, with the orders drawn in that order: the output does not depend on them.
  in_flight = collections.deque()
  with concurrent.futures.ThreadPoolExecutor(cfg.encode_threads, thread_name_prefix='encode') as pool:
    for frame, parts in chunks:
      numerical = encoder.numerical_block(frame)  # once per chunk, for every part encoded from it
      for split, split_rows in parts:
        for scenario, rows in sources.scenario_rows(frame, split_rows):
          n = len(frame) if rows is None else len(rows)
          if scenario not in scenarios:
            acct.drop(split, scenario, SCENARIO_NOT_IN_ENCODING if cfg.encoding_from else SCENARIO_NOT_IN_TRAIN, n)
            continue
          if cfg.shuffle_rows:
            order = order_rng.permutation(n)
            rows = order if rows is None else rows[order]
          in_flight.append((split, scenario, pool.submit(_encode_rows, encoder, frame, scenario, rows, numerical)))
          while len(in_flight) > cfg.encode_threads:  # bounds memory: a few chunks at a time
            write(*in_flight.popleft())
    while in_flight:
      write(*in_flight.popleft())
  for (split, scenario), w in writers.items():
    w.close()
    shards[(split, scenario)] = [os.path.relpath(p, work) for p in w.shards]
    shard_rows.update({os.path.relpath(p, work): n for p, n in zip(w.shards, w.rows)})
    shard_digests.update({os.path.relpath(p, work): d for p, d in zip(w.shards, w.sha256)})
  for split in spec.splits:
    missing = [s for s in scenarios if (split, s) not in writers]
    if missing:
      raise InputError(f'scenario(s) {missing} have no usable rows in the {split} split',
                       hint='every scenario needs rows in every split; adjust --test_fraction, --valid_fraction '
                       '(0: no valid split) or the inputs')
  summary = {
      'dataset': source.dataset,
      'config': _jsonable(cfg),
      'spec': spec_lib.SPEC_FILE,
      'scenarios': scenarios,
      'tasks': spec.task_names,
      **acct.to_json(spec.task_names),
      'vocabularies': vocabularies,
  }
  for (split, scenario), paths in shards.items():
    summary['partitions'][split][scenario]['shards'] = paths
  summary[integrity.SHARDS] = integrity.describe_shards(work, shard_rows, shard_digests)
  if oracle_aucs:
    summary['oracle_auc'] = {scenario: dict(zip(spec.task_names, (a.result() for a in aucs)))
                             for scenario, aucs in oracle_aucs.items()}
    # how far the binned AUCs can be from the exact ones, at most
    summary['oracle_auc_max_error'] = max(a.max_error() for aucs in oracle_aucs.values() for a in aucs)
  return summary


def _encode_rows(encoder: records.Encoder, frame, scenario: str, rows, numerical):
  """(framed TFRecord rows, labels, true probabilities or None, OOV counts) of the rows of `scenario` at
  positions `rows` of `frame`, in that order (None: every row)."""
  cat, num, labels, true_prob, oov = encoder.encode(frame, scenario, rows, numerical)
  return records.frame_records(records.serialize_rows(cat, num, labels, true_prob)), labels, true_prob, oov


def _statistics_pass(source: sources.Source, cfg: PrepareConfig, work: str, contexts, cache):
  """Pass 1: vocabularies and normalization statistics on train. With a `cache`, it also keeps the train rows
  and the valid rows (read with them from the train files) for pass 2, counted here in `contexts`."""
  stats = statistics.StatisticsBuilder(source, cfg.statistics_scope, cfg.min_count, cfg.max_vocabulary_size,
                                       cfg.hash_bins)
  if cache is None:  # counted by pass 2, which reads everything again
    contexts = {valid_split.TRAIN: sources.ReadContext(valid_split.TRAIN, accounting_lib.RowAccounting(),
                                                       cfg.on_bad_row, cfg.chunk_rows, cfg.arrow_csv)}
  splits = [s for s in source.splits if s in (valid_split.TRAIN, valid_split.VALID)] if cache else [valid_split.TRAIN]
  for frame, parts in source.split_parts(splits, contexts):
    if cache is not None:
      cache.add(frame, parts)
    for split, rows in parts:
      if split == valid_split.TRAIN:
        stats.add(frame, rows)
  scenarios = [s for s in stats.rows if stats.rows[s] > 0]
  if cfg.scenarios:
    empty = [s for s in cfg.scenarios if s not in scenarios]
    if empty:
      raise InputError(f'scenario(s) {empty} have no usable train rows',
                       expected=f'rows for every selected scenario; found rows for {scenarios}')
  if not scenarios:
    raise InputError('no usable train rows in any scenario', path=cfg.input or None)
  return stats.build_spec(work, scenarios), scenarios, stats.vocabulary_report


def _reuse_encoding(base_dir: str, source: sources.Source, selected, work: str) -> spec_lib.DatasetSpec:
  """The encoding (vocabularies, normalization, scenario indices) of an existing prepared folder, so that
  models trained on it read the new rows as they read the old ones."""
  base = spec_lib.load_spec(base_dir)
  wanted = {'categorical': sorted(f.name for f in base.categorical), 'numerical': sorted(f.name for f in base.numerical),
            'tasks': base.task_names}
  found = {'categorical': sorted(source.categorical), 'numerical': sorted(source.numerical),
           'tasks': [t.name for t in source.tasks]}
  for kind in wanted:
    if wanted[kind] != found[kind]:
      raise InputError(f'--encoding_from={base_dir}: the input has {kind} {found[kind]}',
                       expected=f'the {kind} of that folder: {wanted[kind]}')
  vocabularies = os.path.join(base_dir, statistics.VOCAB_DIR)
  if os.path.isdir(vocabularies):
    shutil.copytree(vocabularies, os.path.join(work, statistics.VOCAB_DIR))
  unknown = [s for s in selected if s not in base.scenario_names]
  if unknown:
    raise InputError(f'--scenarios {unknown} are not scenarios of {base_dir}', expected=str(base.scenario_names))
  scenarios = [s for s in base.scenarios if not selected or s.name in selected]
  return dataclasses.replace(base, dataset=source.dataset, splits=list(source.splits), scenarios=scenarios,
                             has_true_probabilities=source.has_true_probabilities)


def _jsonable(cfg) -> dict:
  return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(cfg).items()}


def _write_json(path: str, obj) -> None:
  with open(path, 'w') as f:
    json.dump(obj, f, indent=1, sort_keys=False)


SYNTHETIC = 'synthetic'


def resolve_data(data: str, workdir: str, log=print) -> str:
  """A prepared data folder for `--data`: the folder itself, or for 'synthetic' the embedded default
  prepared into `workdir` (reused when it is already there)."""
  if data != SYNTHETIC:
    spec_lib.load_spec(data)  # fails clearly when the folder is not prepared
    return data
  out = os.path.join(workdir, 'synthetic-data')
  if not os.path.exists(os.path.join(out, spec_lib.SUMMARY_FILE)):
    prepare(PrepareConfig(output=out, overwrite=True), log=log)
  return out


def format_summary(summary: dict) -> str:
  """A table: one line per split and scenario with row counts and label rates."""
  tasks = summary['tasks']
  head = f'{"split":<6} {"scenario":<28} {"read":>9} {"kept":>9} {"dropped":>8} ' + ' '.join(
      f'{"rate:" + t:>14}' for t in tasks)
  if 'oracle_auc' in summary:
    head += ' ' + ' '.join(f'{"oracle:" + t:>14}' for t in tasks)
  lines = [head]
  for split, parts in summary['partitions'].items():
    for scenario, p in parts.items():
      line = (f'{split:<6} {scenario[:28]:<28} {p["rows_read"]:>9} {p["rows_kept"]:>9} '
              f'{sum(p["rows_dropped"].values()):>8} ')
      line += ' '.join(f'{(p["label_rate"][t] if p["label_rate"][t] is not None else float("nan")):>14.4f}'
                       for t in tasks)
      if 'oracle_auc' in summary and split == 'test' and scenario in summary['oracle_auc']:
        line += ' ' + ' '.join(f'{summary["oracle_auc"][scenario][t]:>14.4f}' for t in tasks)
      lines.append(line)
  t = summary['totals']
  lines.append(f'total: read {t["rows_read"]}, kept {t["rows_kept"]}, dropped {t["rows_dropped"] or 0}')
  train_rows = sum(p['rows_kept'] for p in summary['partitions'].get('train', {}).values())
  for feature, scopes in summary.get('vocabularies', {}).items():
    kept = sum(v['kept'] for v in scopes.values())  # as statistics.py sets the spec's train_rows_per_value
    if kept and train_rows / kept < spec_lib.SPARSE_ROWS_PER_VALUE:
      lines.append(f'vocabulary {feature}: {train_rows / kept:.1f} train rows per kept value, sparse ids: its '
                   'table steps --sparse_embedding_lr_scale times the learning rate (benchmarks/results/defaults.md)')
    for scope, v in scopes.items():
      if v['train_rows_to_oov']:
        lines.append(
            f'vocabulary {feature}' + ('' if scope == spec_lib.SHARED_SCOPE else f' ({scope})') +
            f': kept {v["kept"]} of {v["distinct"]} train values ({v["below_min_count"]} below --min_count, '
            f'{v["over_max_vocabulary_size"]} over --max_vocabulary_size); {v["train_rows_to_oov"]} train rows '
            'read it as the OOV bucket')
  return '\n'.join(lines)
