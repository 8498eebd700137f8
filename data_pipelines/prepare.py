"""`pfmsmt prepare`: source files -> per-scenario shards of fixed-width rows, spec.json and summary.json.

One streaming pass reads every split, counts the train statistics and writes each row with provisional values;
then each shard is finished in place (data_pipelines/provisional.py). Output is written to a temporary folder
beside --output and renamed at the end, so a failed run never leaves a half-prepared folder behind.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import json
import os
import shutil
import tempfile
import time
from typing import Dict, List

import numpy as np

from data_pipelines import accounting as accounting_lib
from data_pipelines import aliccp, aliexpress, census, csv_dataset, provisional, records, sources
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
  """Source rows -> per-scenario partitions in `cfg.output`, in one pass over the input (module docstring).

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
  """One pass over the input writes every row, with provisional values (provisional.py); the statistics then
  known, each shard is finished in place."""
  acct = accounting_lib.RowAccounting()
  contexts = {split: sources.ReadContext(split, acct, cfg.on_bad_row, cfg.chunk_rows, cfg.arrow_csv)
              for split in source.splits}
  base = _reuse_encoding(cfg.encoding_from, source, cfg.scenarios, work) if cfg.encoding_from else None
  stats = None if base else statistics.StatisticsBuilder(source, cfg.statistics_scope, cfg.min_count,
                                                         cfg.max_vocabulary_size, cfg.hash_bins)
  written = _write_provisional(work, source, cfg, base, stats, contexts, acct)

  if base:
    spec, vocabularies = base, {}
    scenarios = spec.scenario_names
  else:
    scenarios = [s for s in stats.rows if stats.rows[s] > 0]
    if cfg.scenarios:
      empty = [s for s in cfg.scenarios if s not in scenarios]
      if empty:
        raise InputError(f'scenario(s) {empty} have no usable train rows',
                         expected=f'rows for every selected scenario; found rows for {scenarios}')
    if not scenarios:
      raise InputError('no usable train rows in any scenario', path=cfg.input or None)
    spec, vocabularies = stats.build_spec(work, scenarios), stats.vocabulary_report
  spec.save(work)
  log(f'prepare: {source.dataset}: {len(spec.categorical)} categorical, {len(spec.numerical)} numerical features, '
      f'tasks {spec.task_names}, scenarios {scenarios}')

  for (split, scenario), part in list(written.partitions.items()):
    if scenario in scenarios:
      acct.keep(split, scenario, part.rows, dict(zip(spec.task_names, part.label_sums.tolist())))
    else:  # a scenario without train rows: its rows of other splits have nothing to be encoded with
      acct.drop(split, scenario, SCENARIO_NOT_IN_TRAIN, part.rows)
      shutil.rmtree(part.writer.directory)
      del written.partitions[(split, scenario)]
  _move_partitions(work, spec, written)
  for split in spec.splits:
    missing = [s for s in scenarios if (split, s) not in written.partitions]
    if missing:
      raise InputError(f'scenario(s) {missing} have no usable rows in the {split} split',
                       hint='every scenario needs rows in every split; adjust --test_fraction, --valid_fraction '
                       '(0: no valid split) or the inputs')

  shards, shard_rows, shard_digests = _finish(work, spec, written, cfg, acct)
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
  if written.oracle_aucs:
    summary['oracle_auc'] = {scenario: dict(zip(spec.task_names, (a.result() for a in aucs)))
                             for scenario, aucs in written.oracle_aucs.items() if scenario in scenarios}
    # how far the binned AUCs can be from the exact ones, at most
    summary['oracle_auc_max_error'] = max(a.max_error() for aucs in written.oracle_aucs.values() for a in aucs)
  return summary


@dataclasses.dataclass
class _Partition:
  writer: records.ShardWriter
  label_sums: np.ndarray

  @property
  def rows(self) -> int:
    return sum(self.writer.rows)


@dataclasses.dataclass
class _Written:
  """What the provisional pass wrote: partitions, and what finishing them needs."""
  dtype: np.dtype  # its columns in the order of the spec (the encoding's, or the source's)
  partitions: Dict[tuple, _Partition] = dataclasses.field(default_factory=dict)  # (split, scenario) ->
  # scope -> feature -> the values met and their provisional ids (the statistics' own, which count by them)
  ids: Dict[str, Dict[str, statistics.ValueCounts]] = dataclasses.field(
      default_factory=lambda: collections.defaultdict(lambda: collections.defaultdict(statistics.ValueCounts)))
  offsets: Dict[str, np.ndarray] = dataclasses.field(default_factory=dict)  # scope -> [N] float64
  # scenario -> one streamed AUC per task: holding the test rows' labels and probabilities for an exact AUC made
  # prepare's peak grow with the rows (290 MiB at 10M synthetic rows against 243 at 1M; streamed: 255 and 252)
  oracle_aucs: Dict[str, List[metrics.BinnedAuc]] = dataclasses.field(default_factory=dict)


def _write_provisional(work: str, source: sources.Source, cfg: PrepareConfig, base, stats, contexts, acct
                       ) -> _Written:
  """Reads every split once: counts the train rows' statistics and writes every row with provisional values,
  each chunk's parts in a seeded random order."""
  categorical = [f.name for f in base.categorical] if base else list(source.categorical)
  numerical = [f.name for f in base.numerical] if base else list(source.numerical)
  normalizations = [f.normalization for f in base.numerical] if base else [source.normalization[n] for n in numerical]
  tasks = [t.name for t in source.tasks]
  written = _Written(records.record_dtype(len(categorical), len(numerical), len(tasks),
                                          source.has_true_probabilities))
  if stats is not None:  # (its scopes are the ones written: without --encoding_from, both are cfg's)
    written.ids = stats.counts
  shared = (base.statistics_scope if base else cfg.statistics_scope) == 'shared'
  order_rng = np.random.default_rng([cfg.seed, 7])

  def write(split, scenario, rows, labels, true_prob) -> None:
    part = written.partitions.get((split, scenario))
    if part is None:
      # (a folder named for the scenario once the spec names them all: _move_partitions)
      part = written.partitions[(split, scenario)] = _Partition(records.ShardWriter(
          os.path.join(work, split, f'.partition-{len(written.partitions)}'), cfg.rows_per_shard),
          label_sums=np.zeros(len(tasks)))
    part.writer.write(rows)
    part.label_sums += labels.sum(axis=0, dtype=np.float64)
    if true_prob is not None and split == 'test':
      aucs = written.oracle_aucs.setdefault(scenario, [metrics.BinnedAuc() for _ in tasks])
      for i, auc in enumerate(aucs):
        auc.add(labels[:, i], true_prob[:, i])

  def write_packed(packed: concurrent.futures.Future) -> None:
    for part in packed.result():
      write(*part)

  # A chunk's rows are packed and gathered in threads (numpy's column work releases the GIL, so it overlaps the
  # parser on two cores) and written by one writer thread, in the order read, with the orders drawn in that
  # order: the output does not depend on the threads. The main thread, which reads and checks the chunks under
  # the GIL, never waits on a write (0.25-0.66 s of its time on 1M AliExpress rows when it wrote them itself).
  in_flight = collections.deque()  # the writer's jobs, oldest first
  with concurrent.futures.ThreadPoolExecutor(cfg.encode_threads, thread_name_prefix='encode') as pool, \
       concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix='write') as writer:
    for frame, parts in source.split_parts(source.splits, contexts):
      block = sources.column_block(frame, numerical)
      labels = sources.column_block(frame, tasks, np.float32)
      true_prob = (sources.column_block(frame, [sources.true_prob_column(t) for t in tasks], np.float32)
                   if source.has_true_probabilities else None)
      by_scope = collections.defaultdict(list)  # scope -> [(split, scenario, positions in the order written)]
      for split, split_rows in parts:
        for scenario, rows in sources.scenario_rows(frame, split_rows):
          n = len(frame) if rows is None else len(rows)
          if base and scenario not in base.scenario_names:
            acct.drop(split, scenario, SCENARIO_NOT_IN_ENCODING, n)
            continue
          scope = spec_lib.SHARED_SCOPE if shared else scenario
          if scope not in written.offsets:
            first = block if rows is None else block[rows]
            written.offsets[scope] = provisional.offsets(first, normalizations)
          if cfg.shuffle_rows:
            order = order_rng.permutation(n)
            rows = order if rows is None else rows[order]
          by_scope[scope].append((split, scenario, rows))
      codes = {scope: [written.ids[scope][c].codes(frame[c]) for c in categorical] for scope in by_scope}
      if stats is not None:
        for split, rows in parts:
          if split == valid_split.TRAIN:
            stats.add(frame, rows, block, codes)
      for scope, scope_parts in by_scope.items():
        packed = pool.submit(_provisional_parts, written.dtype, codes[scope], block, normalizations,
                             written.offsets[scope], labels, true_prob, scope_parts)
        in_flight.append(writer.submit(write_packed, packed))
      while len(in_flight) > cfg.encode_threads:  # bounds memory: a few chunks at a time
        in_flight.popleft().result()
    while in_flight:
      in_flight.popleft().result()
  for part in written.partitions.values():
    part.writer.close()
  return written


def _provisional_parts(dtype, codes, block, normalizations, offset, labels, true_prob, parts):
  """[(split, scenario, rows of `dtype` with provisional values, their labels, true probabilities or None)]:
  the chunk packed once, in its own order, then each part's rows gathered (`parts`: [(split, scenario,
  positions in the order written, or None for every row)]). With one scope per scenario the whole chunk is
  packed for each scenario in it: a file per scenario (AliExpress) has one."""
  cat = np.empty((len(labels), len(codes)), np.int32)
  for j, (chunk_codes, ids) in enumerate(codes):
    np.take(ids, chunk_codes, out=cat[:, j])
  packed = records.pack(dtype, cat, None, labels, true_prob)
  provisional.centre_into(packed[records.NUMERICAL], block, normalizations, offset)

  def take(a, rows):
    return a if rows is None else np.take(a, rows, axis=0)

  return [(split, scenario, take(packed, rows), take(labels, rows),
           None if true_prob is None else take(true_prob, rows)) for split, scenario, rows in parts]


def _move_partitions(work: str, spec: spec_lib.DatasetSpec, written: _Written) -> None:
  """Each partition's folder renamed to the one the spec names for its scenario."""
  for (split, scenario), part in written.partitions.items():
    w = part.writer
    folder = os.path.join(work, split, spec.scenario(scenario).directory)
    os.rename(w.directory, folder)
    w.directory, w.shards = folder, [os.path.join(folder, os.path.basename(p)) for p in w.shards]


def _finish(work: str, spec: spec_lib.DatasetSpec, written: _Written, cfg: PrepareConfig, acct):
  """Finishes every shard in place (provisional.finish_shard), in `--encode_threads` threads; returns
  ({(split, scenario): shard paths}, {shard: rows}, {shard: SHA-256}) with paths relative to `work`."""
  encoder = records.Encoder(spec, work)
  finishes = {}  # scope -> provisional.Finish
  for scope in {spec.scope(scenario) for _, scenario in written.partitions}:
    ids = [written.ids[scope][f.name] for f in spec.categorical]
    mean, std = encoder.moments(scope)
    finishes[scope] = provisional.Finish(
        remaps=[np.asarray(encoder.ids(scope, f, i.values()), np.int32) for f, i in zip(spec.categorical, ids)],
        missing=[provisional.missing_id(i) for i in ids], counts_oov=[not f.hash_bins for f in spec.categorical],
        shift=written.offsets[scope] - mean, scale=std)
  jobs = [(key, path, n) for key, part in written.partitions.items()
          for path, n in zip(part.writer.shards, part.writer.rows)]
  with concurrent.futures.ThreadPoolExecutor(cfg.encode_threads, thread_name_prefix='finish') as pool:
    done = list(pool.map(lambda job: provisional.finish_shard(job[1], written.dtype, finishes[spec.scope(job[0][1])]),
                         jobs))
  shards: Dict[tuple, List[str]] = {}
  shard_rows: Dict[str, int] = {}
  shard_digests: Dict[str, str] = {}
  oov: Dict[tuple, np.ndarray] = {}
  for (key, path, n), (digest, counts) in zip(jobs, done):
    rel = os.path.relpath(path, work)
    shards.setdefault(key, []).append(rel)
    shard_rows[rel] = n
    shard_digests[rel] = digest
    oov[key] = oov.get(key, 0) + counts
  for (split, scenario), counts in oov.items():
    for f, n in zip(spec.categorical, counts.tolist()):
      if not f.hash_bins:
        acct.handled(split, scenario, 'unknown_category_to_oov', f.name, n)
  return shards, shard_rows, shard_digests


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
                             has_true_probabilities=source.has_true_probabilities, version=spec_lib.SPEC_VERSION)


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
