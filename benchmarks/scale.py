"""Scale benchmark: the whole job on synthetic data of 1M and 10M rows, each stage a `pfmsmt` command.

For each size (4 scenarios x --rows_per_scenario): prepare, train (PF-MSMTrec, --rounds rounds, valid
evaluated after the last, then the test split for the selected and last models), evaluate (test split
again, from the run directory) and export (one SavedModel per scenario). Per stage: wall time, throughput,
and the peak RSS of the stage's own process and of every TFF worker it started (sampled from /proc every
0.2 s). Memory must not grow with rows: the report gives the 10M / 1M ratio of every peak.

  python benchmarks/scale.py [--rows_per_scenario=250000,2500000] [--rounds=2]

Needs about 4 GB of disk per 10M rows (under --workdir, removed after each size unless --keep) and, at
10M rows, about 30 minutes on 2 cores. Writes benchmarks/results/scale.md.
"""

from __future__ import annotations

import csv
from importlib import metadata
import json
import os
import shutil
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from absl import app, flags  # noqa: E402  pylint: disable=g-multiple-import

import prepared  # noqa: E402  (benchmarks/, this script's folder)
import process_tree  # noqa: E402
import report_file  # noqa: E402

flags.DEFINE_list('rows_per_scenario', ['250000', '2500000'], 'Sizes to run, rows per scenario (4 scenarios; '
                  '72% train, 8% valid, 20% test).')
flags.DEFINE_integer('rounds', 2, 'PF-MSMTrec rounds (the first traces the computations).')
flags.DEFINE_string('workdir', os.path.join(REPO, 'runs', 'bench-scale'), 'Data, runs and exports.')
flags.DEFINE_boolean('keep', False, 'Keep each size\'s data, run and export.')
flags.DEFINE_boolean('reuse', False, 'Report a size measured before (its WORKDIR/result_<rows>.json) instead of '
                     'running it again; the report gives each size\'s date.')
flags.DEFINE_string('output', os.path.join(REPO, 'benchmarks', 'results', 'scale.md'), 'Report file.')
FLAGS = flags.FLAGS

WORKER = 'worker_binary'  # TFF's C++ executor, as /proc names it


def _pfmsmt(*args) -> process_tree.Measured:
  env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL='3')
  return process_tree.run([sys.executable, '-m', 'federated.cli', *args], env=env, cwd=REPO)


def run_size(rows_per_scenario: int) -> dict:
  """Every stage on one size; returns its measurements."""
  work = os.path.join(FLAGS.workdir, f'rows{rows_per_scenario}')
  shutil.rmtree(work, ignore_errors=True)
  os.makedirs(FLAGS.workdir, exist_ok=True)
  data, run, export = (os.path.join(work, d) for d in ('data', 'run', 'export'))
  stages = {}
  print(f'{rows_per_scenario:,} rows per scenario: prepare', flush=True)
  stages['prepare'] = _pfmsmt('prepare', f'--rows_per_scenario={rows_per_scenario}', f'--output={data}')
  print('  train', flush=True)
  stages['train'] = _pfmsmt('train', f'--data={data}', f'--output={run}', f'--rounds={FLAGS.rounds}',
                            f'--eval_every={FLAGS.rounds}')
  print('  evaluate', flush=True)
  stages['evaluate'] = _pfmsmt('evaluate', f'--run={run}', '--split=test')
  print('  export', flush=True)
  stages['export'] = _pfmsmt('export', f'--run={run}', f'--output={export}')
  with open(os.path.join(run, 'rounds.csv')) as f:
    rounds = list(csv.DictReader(f))
  with open(os.path.join(run, 'metrics.json')) as f:
    test_auc = json.load(f)['mean_auc']
  result = {
      **{f'{s}_rows': prepared.split_rows(data, s) for s in ('train', 'valid', 'test')},
      'disk_mib': sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(data) for f in fs) / 2**20,
      'round_train_seconds': [float(r['train_seconds']) for r in rounds],
      'last_round_seconds': float(rounds[-1]['seconds']), 'test_mean_auc': test_auc,
      'exported': sorted(os.listdir(export)),
      'stages': {k: {'seconds': m.seconds, 'peak_total_mib': m.peak_total_mib,
                     'peak_main_mib': max(v for p, v in m.peak_by_process.items() if not p.startswith(WORKER)),
                     'peak_worker_mib': m.peak_of(WORKER),
                     'workers': sum(p.startswith(WORKER) for p in m.peak_by_process)}
                 for k, m in stages.items()},
  }
  result['rows'] = sum(result[f'{s}_rows'] for s in ('train', 'valid', 'test'))
  if not FLAGS.keep:
    shutil.rmtree(work, ignore_errors=True)
  result['date'] = time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())
  with open(_saved(rows_per_scenario), 'w') as f:
    json.dump(result, f, indent=1)
  return result


def _saved(rows_per_scenario: int) -> str:
  return os.path.join(FLAGS.workdir, f'result_{rows_per_scenario}.json')


def measured(rows_per_scenario: int) -> dict:
  if FLAGS.reuse and os.path.exists(_saved(rows_per_scenario)):
    with open(_saved(rows_per_scenario)) as f:
      return json.load(f)
  return run_size(rows_per_scenario)


def _stage_rows(size: int, r: dict) -> list:
  st = r['stages']
  steady = r['round_train_seconds'][1:] or r['round_train_seconds']  # round 1 traces
  round_s = sum(steady) / len(steady)
  throughput = {
      'prepare': f'{r["rows"] / st["prepare"]["seconds"]:,.0f} rows/s',
      'train': f'{r["train_rows"] / round_s:,.0f} train examples/s in the rounds after the first ({round_s:.1f} s)',
      'evaluate': f'{r["test_rows"] / st["evaluate"]["seconds"]:,.0f} test rows/s (start-up included)',
      'export': f'{len(r["exported"])} SavedModels ({", ".join(r["exported"])})',
  }
  return [f'| {size:,} | {k} | {v["seconds"]:.1f} | {throughput[k]} | {v["peak_main_mib"]:.0f} | '
          f'{v["peak_worker_mib"]:.0f} ({v["workers"]}) | {v["peak_total_mib"]:.0f} |' for k, v in st.items()]


def main(argv) -> None:
  del argv
  sizes = [int(s) for s in FLAGS.rows_per_scenario]
  results = {size: measured(size) for size in sizes}
  small, large = results[sizes[0]], results[sizes[-1]]
  cmd = (f'python benchmarks/scale.py --rows_per_scenario={",".join(FLAGS.rows_per_scenario)} '
         f'--rounds={FLAGS.rounds}' + (' --reuse' if FLAGS.reuse else ''))
  lines = [
      '# Scale benchmark: the whole job on 1M and 10M rows', '',
      f'Command: `{cmd}`  ',
      f'Machine: {report_file.machine(metadata.version("tensorflow"))}  ',
      f'Date: {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}; each size measured at: '
      + ', '.join(f'{size:,} rows per scenario {r["date"]}' for size, r in results.items()) + '  ',
      'Data: synthetic, 4 scenarios (72% train, 8% valid, 20% test); model and client settings: the defaults '
      '(batch 256, 1 local epoch); algorithm: PF-MSMTrec. Each stage is one `pfmsmt` command; peak RSS of the '
      'stage\'s own process, of its largest TFF worker (how many ran), and of the whole tree at one sample.', '',
      '| rows per scenario | stage | seconds | throughput | peak RSS MiB, process | largest worker (count) | '
      'tree |', '|---|---|---|---|---|---|---|',
      *[line for size, r in results.items() for line in _stage_rows(size, r)], '',
      '| rows per scenario | rows in all | train rows | data on disk MiB | train seconds per round | test mean AUC |',
      '|---|---|---|---|---|---|',
      *[f'| {size:,} | {r["rows"]:,} | {r["train_rows"]:,} | {r["disk_mib"]:,.0f} | '
        f'{", ".join(f"{s:.1f}" for s in r["round_train_seconds"])} | {r["test_mean_auc"]:.4f} |'
        for size, r in results.items()], '',
  ]
  if len(sizes) > 1:
    ratio = large['rows'] / small['rows']
    lines += [f'Peak RSS at {large["rows"]:,} rows over {small["rows"]:,} rows ({ratio:.0f}x the rows):', '',
              '| stage | process | largest worker | tree |', '|---|---|---|---|']
    for k in small['stages']:
      a, b = small['stages'][k], large['stages'][k]
      cells = [b[m] / a[m] if a[m] else float('nan') for m in ('peak_main_mib', 'peak_worker_mib', 'peak_total_mib')]
      lines.append(f'| {k} | ' + ' | '.join('no worker' if c != c else f'**{c:.2f}**' for c in cells) + ' |')
    lines.append('')
  report_file.publish(lines, FLAGS.output)


if __name__ == '__main__':
  app.run(main)
