"""Input pipeline benchmark: is tf.data ever the bottleneck, and does memory stay flat as data grows?

Measures, side by side in one run on this machine:
1. streaming parse throughput (rows/s) of `pipeline.make_dataset` over the prepared synthetic default
   (interleave, shuffle, batch, parse, prefetch) versus the training-step throughput of the default model
   (`model.fit` on the same rows already in memory, so only the step is timed). Target: ratio >= 5.
2. peak RSS of `pfmsmt prepare` and of one streaming pass at 1x and 10x the rows, each in a fresh process.
   Target: 10x within 1.5x.
3. prepare of an AliExpress processed-layout CSV (4 countries, `--csv_rows` rows in all, 80% train) against
   `pandas.read_csv` of the same files, each in a fresh process, and prepare's peak RSS at a tenth of the rows.
   Targets: >= 150,000 rows/s, <= 3x the read_csv time, peak RSS flat. pyarrow's whole-file reader and
   prepare's own parser (alone) are timed on the same files beside it: parsing bounds what prepare can reach.

Usage: python benchmarks/data_pipeline.py [--rows_per_scenario=20000] [--scale=10] [--batch_size=512]
                                          [--csv_rows=1000000]
Writes benchmarks/results/data_pipeline.md.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from federated import startup  # noqa: E402

# A child (one measurement) imports only what it measures: prepare runs without TensorFlow, so that its peak
# RSS is its own (an exec keeps the peak of the process it replaced). The parent trains a Keras model, so it
# imports TensorFlow before app.run (see federated/cli/common.py), without CUDA start-up noise.
if not any(a.startswith('--child=') for a in sys.argv):
  tf = startup.import_tensorflow()
import report_file  # noqa: E402  (benchmarks/, this script's folder)
from absl import app, flags  # pylint: disable=g-import-not-at-top,g-multiple-import

flags.DEFINE_integer('rows_per_scenario', 20_000, 'Rows per scenario at 1x.')
flags.DEFINE_integer('scale', 10, 'The larger size, as a multiple of the 1x rows.')
flags.DEFINE_integer('batch_size', 512, 'Batch size of both the pipeline and the training step.')
flags.DEFINE_string('output', os.path.join(REPO, 'benchmarks', 'results', 'data_pipeline.md'), 'Report file.')
flags.DEFINE_integer('csv_rows', 1_000_000, 'Rows of the AliExpress-layout CSV prepare is timed on; 0 skips it.')
flags.DEFINE_integer('repeats', 3, 'Runs of each CSV measurement; the report gives the median time (runs here '
                     'vary by about a second) and the largest peak RSS.')
flags.DEFINE_string('child', '', 'internal: run one measurement (prepare|stream|prepare_csv|prepare_csv_pandas|'
                    'prepare_csv_one_thread|prepare_command|read_csv|arrow_read|arrow_stream), print JSON.')
flags.DEFINE_string('data', '', 'internal: data folder of the child.')
flags.DEFINE_string('csv', '', 'internal: the AliExpress-layout folder of the child.')
FLAGS = flags.FLAGS


def _peak_rss_mib() -> float:
  """This process's own peak: VmHWM, not ru_maxrss, which also holds the peak of the process an exec replaced
  (here the parent, TensorFlow loaded, whose memory a vfork'd child shares until its exec)."""
  with open('/proc/self/status') as f:
    return next(int(line.split()[1]) for line in f if line.startswith('VmHWM:')) / 1024.0


def _child() -> None:
  if FLAGS.child == 'prepare_command':  # what a user waits for: start-up and imports included
    _prepare_command()
    return
  # Only what each measure needs: prepare runs without TensorFlow.
  from data_pipelines import prepare  # pylint: disable=g-import-not-at-top
  from data_pipelines.config import PrepareConfig  # pylint: disable=g-import-not-at-top
  baseline = _peak_rss_mib()
  start, cpu = time.perf_counter(), os.times()
  rows = 0
  if FLAGS.child == 'prepare':
    summary = prepare.prepare(PrepareConfig(output=FLAGS.data, rows_per_scenario=FLAGS.rows_per_scenario,
                                            overwrite=True), log=lambda *_: None)
    rows = summary['totals']['rows_kept']
  elif FLAGS.child in ('prepare_csv', 'prepare_csv_pandas', 'prepare_csv_one_thread'):
    summary = prepare.prepare(PrepareConfig(dataset='aliexpress', input=FLAGS.csv, output=FLAGS.data, overwrite=True,
                                            arrow_csv=FLAGS.child != 'prepare_csv_pandas',
                                            **({'encode_threads': 1} if FLAGS.child.endswith('one_thread') else {})),
                              log=lambda *_: None)
    rows = summary['totals']['rows_kept']
  elif FLAGS.child == 'read_csv':
    import pandas as pd  # pylint: disable=g-import-not-at-top
    rows = sum(len(pd.read_csv(path)) for path in _csv_files())
  elif FLAGS.child == 'arrow_read':  # pyarrow's whole-file reader, its blocks parsed on every core
    import pyarrow.csv as pa_csv  # pylint: disable=g-import-not-at-top
    rows = sum(pa_csv.read_csv(path).num_rows for path in _csv_files())
  elif FLAGS.child == 'arrow_stream':  # prepare's parser alone: pyarrow in a thread, two blocks at a time
    from data_pipelines import arrow_csv  # pylint: disable=g-import-not-at-top
    kinds = {'categorical': 'text', 'numerical': 'number', 'click': 'label', 'conversion': 'label'}
    columns = {c: kinds[c.split('_')[0]] for c in _csv_columns() if c != 'search_id'}
    for path in _csv_files():
      rows += sum(len(chunk) for chunk, _ in arrow_csv.ArrowChunks(
          path, chunk_rows=PrepareConfig().chunk_rows, header=True, names=None, sep=',', columns=columns))
  else:
    from data_pipelines import pipeline  # pylint: disable=g-import-not-at-top
    from data_pipelines import spec as spec_lib  # pylint: disable=g-import-not-at-top
    from data_pipelines.config import PipelineConfig  # pylint: disable=g-import-not-at-top
    spec = spec_lib.load_spec(FLAGS.data)
    for s in spec.scenario_names:
      for _, labels in pipeline.make_dataset(FLAGS.data, spec, 'train', s, PipelineConfig(batch_size=FLAGS.batch_size)):
        rows += int(labels[spec.task_names[0]].shape[0])
  seconds, now = time.perf_counter() - start, os.times()
  print(json.dumps({'peak_rss_mib': _peak_rss_mib(), 'after_imports_mib': baseline, 'rows': rows,
                    'seconds': seconds, 'cpu_user': now.user - cpu.user, 'cpu_system': now.system - cpu.system}))


def run_prepare_command(csv: str, output: str, extra=(), tree: str = REPO) -> dict:
  """Seconds and CPU seconds (user, system) of one `pfmsmt prepare --dataset=aliexpress` as a user runs it, with
  the code of `tree` (a checkout of this repository; `python -m` imports from its working directory)."""
  import resource  # pylint: disable=g-import-not-at-top
  before = resource.getrusage(resource.RUSAGE_CHILDREN)
  start = time.perf_counter()
  subprocess.run([sys.executable, '-m', 'federated.cli', 'prepare', '--dataset=aliexpress', f'--input={csv}',
                  f'--output={output}', '--overwrite', *extra], check=True, capture_output=True, cwd=tree)
  seconds = time.perf_counter() - start
  after = resource.getrusage(resource.RUSAGE_CHILDREN)
  return {'seconds': seconds, 'cpu_user': after.ru_utime - before.ru_utime,
          'cpu_system': after.ru_stime - before.ru_stime}


def _prepare_command() -> None:
  """Times `pfmsmt prepare` from a process that has imported nothing heavy: the command's ru_maxrss also holds
  this process's peak (see _peak_rss_mib), which stays small."""
  import resource  # pylint: disable=g-import-not-at-top
  measure = run_prepare_command(FLAGS.csv, FLAGS.data)
  rows = json.load(open(os.path.join(FLAGS.data, 'summary.json')))['totals']['rows_kept']
  print(json.dumps({'peak_rss_mib': resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0, 'rows': rows,
                    **measure}))


def cpu_seconds(measure: dict) -> float:
  return measure['cpu_user'] + measure['cpu_system']


def _csv_row(label: str, m: dict) -> str:
  cpu = cpu_seconds(m)
  return (f'| {label} | {m["seconds"]:.1f} | {m["rows"] / m["seconds"]:,.0f} | {cpu:.1f} ({m["cpu_system"]:.1f}) '
          f'| {cpu / m["seconds"]:.2f} | {m["peak_rss_mib"]:.0f} |')


def _csv_files() -> list:
  import glob  # pylint: disable=g-import-not-at-top
  return sorted(glob.glob(os.path.join(FLAGS.csv, '*', '*.csv')))


def _measure(kind: str, data: str, rows_per_scenario: int = 0, csv: str = '') -> dict:
  out = subprocess.run([sys.executable, __file__, f'--child={kind}', f'--data={data}', f'--csv={csv}',
                        f'--rows_per_scenario={rows_per_scenario}', f'--batch_size={FLAGS.batch_size}'],
                       capture_output=True, text=True, check=True, cwd=REPO)
  return json.loads(out.stdout.strip().splitlines()[-1])


COUNTRIES = ('NL', 'ES', 'FR', 'US')


def _csv_columns() -> list:
  """The processed layout's columns, in file order (imported here: a child imports only what it measures)."""
  from data_pipelines import aliexpress  # pylint: disable=g-import-not-at-top
  return ['search_id'] + aliexpress.PROCESSED_CATEGORICAL + aliexpress.PROCESSED_NUMERICAL + ['click', 'conversion']


def _write_aliexpress_csv(root: str, rows: int, block: int = 50_000) -> None:
  """The processed layout (`AliExpress_<CC>/{train,test}.csv`, search_id, 16 categorical ids with skewed
  frequencies, 63 numericals in [0, 1) with 6 decimals, click, conversion), written in blocks."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import pandas as pd  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  columns = _csv_columns()
  for country in COUNTRIES:
    os.makedirs(os.path.join(root, f'AliExpress_{country}'), exist_ok=True)
    for split, n in (('train', rows // len(COUNTRIES) * 4 // 5), ('test', rows // len(COUNTRIES) // 5)):
      path = os.path.join(root, f'AliExpress_{country}', f'{split}.csv')
      for start in range(0, n, block):
        m = min(block, n - start)
        frame = {'search_id': np.arange(start, start + m)}
        frame.update({f'categorical_{i}': np.minimum(rng.zipf(1.3, m), 10 ** (1 + i % 5)) for i in range(1, 17)})
        frame.update({f'numerical_{i}': np.round(rng.random(m), 6) for i in range(1, 64)})
        click = rng.random(m) < 0.05
        frame.update(click=click.astype(int), conversion=(click & (rng.random(m) < 0.2)).astype(int))
        pd.DataFrame(frame, columns=columns).to_csv(path, mode='a' if start else 'w', header=not start,
                                                         index=False)


def _csv_prepare(work: str) -> dict:
  """Seconds and peak RSS of read_csv and of prepare over the CSV, and prepare's at a tenth of the rows.

  Both CSVs are written and flushed to disk first, and the measures of a repeat taken in turn (each kind once,
  then again): measured right after its CSV was written, prepare ran beside the kernel's write-back of 585 MB
  and took a third longer than the same prepare measured later (12.8 s against 9.5 s, 2026-12-02)."""
  csvs = {}
  for name, rows in (('tenth', FLAGS.csv_rows // 10), ('full', FLAGS.csv_rows)):
    csvs[name] = os.path.join(work, f'csv_{name}')
    _write_aliexpress_csv(csvs[name], rows)
  os.sync()
  full = csvs['full']
  kinds = {  # name in the report: (child kind, its output folder, its CSV)
      'prepare_full': ('prepare_csv', 'prepared_full', full),
      'prepare_tenth': ('prepare_csv', 'prepared_tenth', csvs['tenth']),
      'read_csv': ('read_csv', '', full), 'arrow_read': ('arrow_read', '', full),
      'arrow_stream': ('arrow_stream', '', full), 'prepare_pandas': ('prepare_csv_pandas', 'prepared_pandas', full),
      'prepare_one_thread': ('prepare_csv_one_thread', 'prepared_one', full),
      'prepare_command': ('prepare_command', 'prepared_command', full)}
  runs = {name: [] for name in kinds}
  for _ in range(FLAGS.repeats):
    for name, (kind, folder, csv) in kinds.items():
      runs[name].append(_measure(kind, os.path.join(work, folder) if folder else '', csv=csv))
  out = {name: {'rows': r[0]['rows'], **{k: statistics.median(x[k] for x in r)
                                          for k in ('seconds', 'cpu_user', 'cpu_system')},
                'peak_rss_mib': max(x['peak_rss_mib'] for x in r)} for name, r in runs.items()}
  out['megabytes'] = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(full) for f in fs) / 2**20
  return out


def _throughput(data: str) -> dict:
  import numpy as np  # pylint: disable=g-import-not-at-top
  from data_pipelines import pipeline  # pylint: disable=g-import-not-at-top
  from data_pipelines import spec as spec_lib  # pylint: disable=g-import-not-at-top
  from data_pipelines.config import PipelineConfig  # pylint: disable=g-import-not-at-top
  from pfmsmt_tf import config as config_lib  # pylint: disable=g-import-not-at-top
  from pfmsmt_tf import models  # pylint: disable=g-import-not-at-top

  spec = spec_lib.load_spec(data)
  cfg = PipelineConfig(batch_size=FLAGS.batch_size)

  def stream(c=cfg):
    ds = None
    for s in spec.scenario_names:
      d = pipeline.make_dataset(data, spec, 'train', s, c)
      ds = d if ds is None else ds.concatenate(d)
    return ds

  def rows_per_s(c):
    # Built once and iterated per epoch, as training does (each pass reshuffles).
    streamed = stream(c)
    n = sum(int(l[spec.task_names[0]].shape[0]) for _, l in streamed)  # warm-up pass (file cache, tracing)
    best = 0.0
    for _ in range(3):
      t = time.perf_counter()
      for _ in streamed:
        pass
      best = max(best, n / (time.perf_counter() - t))
    return n, best

  n, best_parse = rows_per_s(cfg)
  _, best_row_shuffle = rows_per_s(dataclasses.replace(cfg, shuffle_block=1))

  # The same rows, materialized in memory, so that model.fit times the training step alone.
  features, labels = {}, {}
  for f, l in stream():
    for k, v in f.items():
      features.setdefault(k, []).append(v.numpy())
    for k, v in l.items():
      labels.setdefault(k, []).append(v.numpy())
  features = {k: np.concatenate(v) for k, v in features.items()}
  labels = {k: np.concatenate(v) for k, v in labels.items()}
  in_memory = tf.data.Dataset.from_tensor_slices((features, labels)).batch(FLAGS.batch_size).cache()
  model = models.build_model(config_lib.ModelInputs.from_dataset_spec(spec), config_lib.ModelConfig(seed=0))
  model.compile(tf.keras.optimizers.Adam(1e-3), loss={t: 'binary_crossentropy' for t in spec.task_names})
  model.fit(in_memory, epochs=1, verbose=0)  # warm-up: tracing and the cache
  best_train = 0.0
  for _ in range(2):
    t = time.perf_counter()
    model.fit(in_memory, epochs=1, verbose=0)
    best_train = max(best_train, n / (time.perf_counter() - t))
  return {'rows': n, 'parse_rows_per_s': best_parse, 'row_shuffle_rows_per_s': best_row_shuffle,
          'train_rows_per_s': best_train,
          'parameters': model.count_params()}


def main(argv) -> None:
  del argv
  if FLAGS.child:
    _child()
    return
  with tempfile.TemporaryDirectory() as work:
    small, large = os.path.join(work, 'x1'), os.path.join(work, f'x{FLAGS.scale}')
    mem = {
        'prepare_1x': _measure('prepare', small, FLAGS.rows_per_scenario),
        'prepare_nx': _measure('prepare', large, FLAGS.rows_per_scenario * FLAGS.scale),
    }
    mem['stream_1x'] = _measure('stream', small, FLAGS.rows_per_scenario)
    mem['stream_nx'] = _measure('stream', large, FLAGS.rows_per_scenario * FLAGS.scale)
    speed = _throughput(small)
    csv = _csv_prepare(work) if FLAGS.csv_rows else None
  ratio = speed['parse_rows_per_s'] / speed['train_rows_per_s']
  prep_ratio = mem['prepare_nx']['peak_rss_mib'] / mem['prepare_1x']['peak_rss_mib']
  stream_ratio = mem['stream_nx']['peak_rss_mib'] / mem['stream_1x']['peak_rss_mib']
  cmd = 'python benchmarks/data_pipeline.py ' + ' '.join(
      f'--{k}={getattr(FLAGS, k)}' for k in ('rows_per_scenario', 'scale', 'batch_size', 'csv_rows', 'repeats'))
  lines = [
      '# Input pipeline benchmark', '',
      f'Command: `{cmd}`  ',
      f'Machine: {report_file.machine(tf.__version__)}  ',
      f'Date: {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}', '',
      '## Throughput (synthetic default, 4 scenarios, train split)', '',
      '| measure | rows/s |', '|---|---|',
      f'| streaming parse (make_dataset defaults: interleave, block shuffle, batch {FLAGS.batch_size}, parse, '
      f'prefetch) | {speed["parse_rows_per_s"]:,.0f} |',
      f'| the same with a record-level shuffle (`shuffle_block=1`) | {speed["row_shuffle_rows_per_s"]:,.0f} |',
      f'| training step, default model ({speed["parameters"]:,} parameters), model.fit on in-memory rows | '
      f'{speed["train_rows_per_s"]:,.0f} |',
      f'| **ratio parse / train** (target >= 5) | **{ratio:.1f}x** |',
      f'| ratio with a record-level shuffle | {speed["row_shuffle_rows_per_s"] / speed["train_rows_per_s"]:.1f}x |',
      '',
      f'## Peak RSS, 1x = {FLAGS.rows_per_scenario:,} rows per scenario, {FLAGS.scale}x = '
      f'{FLAGS.rows_per_scenario * FLAGS.scale:,}', '',
      '| process | 1x MiB | rows | 10x MiB | rows | ratio (target <= 1.5) |', '|---|---|---|---|---|---|',
      f'| pfmsmt prepare | {mem["prepare_1x"]["peak_rss_mib"]:.0f} | {mem["prepare_1x"]["rows"]:,} | '
      f'{mem["prepare_nx"]["peak_rss_mib"]:.0f} | {mem["prepare_nx"]["rows"]:,} | **{prep_ratio:.2f}** |',
      f'| one streaming pass | {mem["stream_1x"]["peak_rss_mib"]:.0f} | {mem["stream_1x"]["rows"]:,} | '
      f'{mem["stream_nx"]["peak_rss_mib"]:.0f} | {mem["stream_nx"]["rows"]:,} | **{stream_ratio:.2f}** |', '',
      f'prepare took {mem["prepare_1x"]["seconds"]:.1f} s at 1x and {mem["prepare_nx"]["seconds"]:.1f} s at '
      f'{FLAGS.scale}x ({mem["prepare_nx"]["rows"] / mem["prepare_nx"]["seconds"]:,.0f} rows/s).', '',
  ]
  if csv:
    full, tenth, read, pandas_ = csv['prepare_full'], csv['prepare_tenth'], csv['read_csv'], csv['prepare_pandas']
    one, arrow, stream = csv['prepare_one_thread'], csv['arrow_read'], csv['arrow_stream']
    command, cores, full_cpu = csv['prepare_command'], os.cpu_count(), cpu_seconds(full)
    lines += [
        f'## Prepare of an AliExpress processed-layout CSV ({full["rows"]:,} rows, 4 countries, '
        f'{csv["megabytes"]:,.0f} MB)', '',
        f'Seconds and CPU seconds: the median of {FLAGS.repeats} runs of each; peak RSS: the largest. CPU '
        'seconds are the process\'s, every thread\'s user and system time together (system time in brackets); '
        f'cores busy: CPU seconds over seconds, of the {cores} this machine has.', '',
        '| measure | seconds | rows/s | CPU s (system) | cores busy | peak RSS MiB |', '|---|---|---|---|---|---|',
        _csv_row('`pandas.read_csv` of every file', read),
        _csv_row('`pyarrow.csv.read_csv` of every file (its blocks parsed on both cores)', arrow),
        _csv_row('prepare\'s parser alone (pyarrow in a thread, two parse blocks at a time, the columns prepare '
                 'reads)', stream),
        _csv_row('`pfmsmt prepare --dataset=aliexpress` (`prepare.prepare`, imports done)', full),
        _csv_row('the command as a user runs it, start-up and imports included (no TensorFlow)', command),
        _csv_row('the same with `--noarrow_csv` (pandas parses every file)', pandas_),
        _csv_row('the same with `--encode_threads=1` (one thread packs the rows, one finishes the shards)', one),
        _csv_row(f'the same on a tenth of the rows ({tenth["rows"]:,})', tenth), '',
        f'Prepare\'s CPU seconds bound its time: with all {cores} cores busy throughout, {full_cpu:.1f} CPU '
        f'seconds would still take {full_cpu / cores:.1f} s, {cores * full["rows"] / full_cpu:,.0f} rows/s. '
        f'The parser alone takes {cpu_seconds(stream):.1f} of them; {full["cpu_system"]:.1f} are system time.', '',
        f'**prepare / read_csv time: {full["seconds"] / read["seconds"]:.2f}x** (target <= 3); '
        f'**{full["rows"] / full["seconds"]:,.0f} rows/s** (target >= 150,000); peak RSS full / tenth: '
        f'**{full["peak_rss_mib"] / tenth["peak_rss_mib"]:.2f}** (a prepare holds a few chunks of `--chunk_rows` '
        f'= 50,000 rows at a time; at a tenth of the rows its test files hold '
        f'{FLAGS.csv_rows // 10 // len(COUNTRIES) // 5:,} rows each, its train files '
        f'{FLAGS.csv_rows // 10 // len(COUNTRIES) * 4 // 5:,}, so the tenth\'s peak is a smaller chunk\'s: from '
        '1M to 10M rows, where every file fills its chunks, benchmarks/results/scale.md measures prepare\'s '
        'peak). Prepare reads each file once, with pyarrow '
        'in a thread of its own (the file mapped into memory, two parse blocks at a time, on both cores) while '
        'the rows are clean, and takes the columns that path has checked as they are (data_pipelines/'
        'arrow_csv.py; the parser\'s thread also checks each chunk and unifies its dictionaries, off the GIL, '
        'and the caller converts it to pandas while the next one is parsed). In that one pass it counts the '
        'train statistics and writes every row in its final fixed-width layout with provisional values (ids in '
        'the order values are met, numbers centred), packed in `--encode_threads` threads (numpy releases the '
        'GIL for its column work) and written in order by one writer thread; then it finishes each shard in place, '
        'ids through a table, numbers normalized, SHA-256 of the result (data_pipelines/provisional.py).', '']
  report_file.publish(lines, FLAGS.output)


if __name__ == '__main__':
  app.run(main)
