"""Where one `prepare` of an AliExpress-layout CSV spends its time: wall and thread CPU seconds per stage.

Wraps the functions that make up prepare (its one pass over the input, then the shards finished in place) and
prints, for each, its calls, the wall seconds and the CPU seconds of the thread that ran it (summed over calls
and threads), beside the whole prepare's wall and CPU seconds. The stages overlap (parser, encoding and
finishing threads), so they do not add up to the wall time; what they show is which thread does what.

First it times what any prepare must do, whatever it writes: read and check every row of every split (the
source's chunks, as prepare's passes take them), then the same with the train split's statistics counted. What
that leaves of a rows/s target is all the time there is to encode and write.

  python benchmarks/prepare_stages.py --csv=FOLDER [--repeats=2]   (FOLDER: an AliExpress processed layout, such
                                                                   as data_pipeline._write_aliexpress_csv writes)

Writes benchmarks/results/prepare_stages.md.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import report_file  # noqa: E402  (benchmarks/, this script's folder)
from absl import app, flags  # noqa: E402  pylint: disable=g-multiple-import

from data_pipelines import accounting, arrow_csv, prepare, provisional, records, sources, statistics  # noqa: E402
from data_pipelines.config import PrepareConfig  # noqa: E402

flags.DEFINE_string('csv', '', 'The AliExpress processed-layout folder to prepare.')
flags.DEFINE_string('csv_description', "1,000,000 rows written by data_pipeline._write_aliexpress_csv",
                    'What --csv holds, for the report.')
flags.DEFINE_integer('repeats', 2, 'Prepares timed, one after the other (and as many of each floor reading).')
flags.DEFINE_integer('target_rows_per_second', 150_000, 'The prepare target the floor is set against.')
flags.DEFINE_string('output', os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results',
                                           'prepare_stages.md'), 'Report file.')
FLAGS = flags.FLAGS

STAGES = (  # (owner, function, label)
    (prepare, '_write_provisional', 'the pass, whole (main thread)'),
    (arrow_csv.ArrowChunks, '_checked', 'chunk checked, dictionaries unified (parser\'s thread)'),
    (sources.ChunkBuilder, 'build', 'canonical chunk'),
    (sources, 'column_block', 'numbers and labels as blocks'),
    (statistics.StatisticsBuilder, 'add', 'statistics'),
    (statistics.ValueCounts, 'codes', 'provisional ids of each chunk\'s values'),
    (prepare, '_provisional_parts', 'rows packed and gathered'),
    (records.ShardWriter, 'write', 'rows written (writer thread)'),
    (statistics.StatisticsBuilder, 'build_spec', 'vocabularies and spec'),
    (provisional, 'finish_shard', 'shards finished in place, SHA-256'),
)


def _timed(function, totals: list):
  def wrapper(*args, **kwargs):
    wall, cpu = time.perf_counter(), time.thread_time()
    try:
      return function(*args, **kwargs)
    finally:
      totals[0] += 1
      totals[1] += time.perf_counter() - wall
      totals[2] += time.thread_time() - cpu
      totals[3].add(threading.current_thread().name.split('_')[0])
  return wrapper


def _cfg(output: str) -> PrepareConfig:
  return PrepareConfig(dataset='aliexpress', input=FLAGS.csv, output=output, overwrite=True)


def _floor_run(count_statistics: bool) -> tuple:
  """(rows, wall seconds, CPU seconds) of reading and checking every split once, as prepare reads them, with
  the train rows' statistics counted or not; nothing is encoded or written."""
  cfg = _cfg('')
  source = prepare.make_source(cfg)
  rows = accounting.RowAccounting()
  contexts = {s: sources.ReadContext(s, rows, cfg.on_bad_row, cfg.chunk_rows, cfg.arrow_csv) for s in source.splits}
  stats = statistics.StatisticsBuilder(source, cfg.statistics_scope, cfg.min_count, cfg.max_vocabulary_size,
                                       cfg.hash_bins)
  n, wall, cpu = 0, time.perf_counter(), os.times()
  for frame, parts in source.split_parts(source.splits, contexts):
    n += len(frame)
    for split, positions in parts:
      if count_statistics and split == 'train':
        stats.add(frame, positions)
  wall, now = time.perf_counter() - wall, os.times()
  return n, wall, now.user + now.system - cpu.user - cpu.system


def _floor_lines() -> list:
  runs = {label: [_floor_run(count) for _ in range(FLAGS.repeats)]
          for label, count in (('read and check every split', False), ('the same, and count statistics', True))}
  target = FLAGS.target_rows_per_second
  rows = runs['read and check every split'][0][0]
  budget = rows / target
  lines = ['## What any prepare must do', '',
           f'{rows:,} rows; at {target:,} rows/s the whole prepare has {budget:.2f} s ({2 * budget:.1f} CPU-s on 2 '
           'cores).', '', '| reading | seconds (each run) | rows/s (median) | CPU s (each run) | seconds left for '
           'encoding and writing |', '|---|---|---|---|---|']
  for label, measured in runs.items():
    seconds = sorted(w for _, w, _ in measured)
    median = seconds[len(seconds) // 2]
    lines.append(f'| {label} | {", ".join(f"{w:.2f}" for _, w, _ in measured)} | {rows / median:,.0f} | '
                 f'{", ".join(f"{c:.2f}" for _, _, c in measured)} | {budget - median:.2f} |')
  return lines + ['']


def _one_run(totals: dict) -> list:
  """One prepare, its report lines."""
  for t in totals.values():
    t[:] = [0, 0.0, 0.0, set()]
  with tempfile.TemporaryDirectory() as work:
    wall, cpu = time.perf_counter(), os.times()
    summary = prepare.prepare(_cfg(os.path.join(work, 'o')), log=lambda *_: None)
    wall, now = time.perf_counter() - wall, os.times()
  first = totals[STAGES[0][2]][1]
  return [f'prepare of {summary["totals"]["rows_kept"]:,} rows: {wall:.2f} s, {now.user - cpu.user:.2f} CPU-s user '
          f'and {now.system - cpu.system:.2f} system; the pass {first:.2f} s, finishing and the rest '
          f'{wall - first:.2f} s',
          '', '| stage | calls | wall s | CPU s | threads |', '|---|---|---|---|---|',
          *[f'| {label} | {calls} | {seconds:.2f} | {cpu_s:.2f} | {", ".join(sorted(threads))} |'
            for label, (calls, seconds, cpu_s, threads) in totals.items()], '']


def main(argv) -> None:
  del argv
  if not FLAGS.csv:
    raise app.UsageError('--csv is required')
  floor = _floor_lines()  # before the stages are wrapped
  totals = {}
  for owner, name, label in STAGES:
    totals[label] = [0, 0.0, 0.0, set()]
    setattr(owner, name, _timed(getattr(owner, name), totals[label]))
  lines = ['# Where prepare spends its time', '',
           f'Command: `python benchmarks/prepare_stages.py --csv=FOLDER --repeats={FLAGS.repeats}` (FOLDER: '
           f'{FLAGS.csv_description})  ',
           f'Machine: {report_file.machine("not imported")}  ',
           f'Date: {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}  ',
           'Wall seconds and the CPU seconds of the thread that ran each stage, summed over its calls; stages on '
           'different threads overlap, so they do not add up to the whole.', '', *floor]
  for run in range(FLAGS.repeats):
    lines += [f'## Run {run + 1}', '', *_one_run(totals)]
  report_file.publish(lines, FLAGS.output)


if __name__ == '__main__':
  app.run(main)
