"""Speed and scale benchmark: TFF's overhead over plain Keras, round time against scenarios and rows, memory.

Measured side by side in one run on this machine (synthetic data, default model and client settings):
1. examples per second of one PF-MSMTrec round (TFF process: broadcast, federated_select, every client's
   local epoch, template aggregation) versus `model.fit` of the same model on the same examples from the same
   tf.data pipeline, one epoch. Target: Keras / TFF at most 1.5.
2. round time for 2, 4 and 8 scenarios (fixed rows per scenario) and for 1x, 4x and 16x rows per scenario
   (4 scenarios), with the fitted slope of a straight line and how far the points are from it.
3. peak RSS (the training process and its TFF workers together) of a 2-round run at 1x and 16x rows.

  python benchmarks/speed.py [--rows_per_scenario=2500] [--rounds=3]

Writes benchmarks/results/speed.md.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import numpy as np  # noqa: E402
from federated import startup  # noqa: E402

tf = startup.import_tensorflow()  # before app.run (see federated/cli/common.py), without CUDA start-up noise
import report_file  # noqa: E402  (benchmarks/, this script's folder)
from absl import app, flags, logging  # noqa: E402  pylint: disable=g-multiple-import

from data_pipelines import pipeline, prepare  # noqa: E402
from data_pipelines import spec as spec_lib  # noqa: E402
from data_pipelines.config import PipelineConfig, PrepareConfig  # noqa: E402
from federated import run_directory, runtime, trainers  # noqa: E402
from federated.config import AggregationConfig, ClientConfig, RunSetup, TrainConfig  # noqa: E402
from pfmsmt_tf import config as model_config  # noqa: E402

SCENARIO_NAMES = ('NL', 'ES', 'FR', 'US', 'RU', 'DE', 'IT', 'PL')

flags.DEFINE_integer('rows_per_scenario', 2_500, 'Rows per scenario at 1x (train + test).')
flags.DEFINE_integer('overhead_rows_per_scenario', 25_000, 'Rows per scenario of the TFF vs Keras comparison.')
flags.DEFINE_integer('rounds', 3, 'Rounds timed per point (the first, which traces, is not counted).')
flags.DEFINE_string('output', os.path.join(REPO, 'benchmarks', 'results', 'speed.md'), 'Report file.')
FLAGS = flags.FLAGS


def _prepare(work: str, name: str, rows: int, scenarios: int = 4) -> str:
  out = os.path.join(work, name)
  prepare.prepare(PrepareConfig(output=out, rows_per_scenario=rows, scenarios=SCENARIO_NAMES[:scenarios]),
                  log=lambda *_: None)
  return out


def _train_rows(data: str) -> int:
  with open(os.path.join(data, spec_lib.SUMMARY_FILE)) as f:
    return sum(p['rows_kept'] for p in json.load(f)['partitions']['train'].values())


def _setup(data: str, output: str) -> RunSetup:
  return RunSetup(TrainConfig(data=data, output=output, rounds=FLAGS.rounds), model_config.ModelConfig(),
                           ClientConfig(), AggregationConfig())


def tff_round_seconds(data: str, work: str) -> float:
  """Median seconds of rounds 2..R of PF-MSMTrec (round 1 traces the computations)."""
  setup = _setup(data, os.path.join(work, f'run-{os.path.basename(data)}'))
  run = run_directory.RunDirectory(setup.cfg.output)
  os.makedirs(run.root, exist_ok=True)
  spec = spec_lib.load_spec(data)
  trainer = trainers.build_trainer(setup, spec, data, run, trainers.make_model_fn(setup, spec))
  state = trainer.initialize()
  times = []
  for r in range(FLAGS.rounds):
    start = time.perf_counter()
    state, _ = trainer.run_round(state, r)
    times.append(time.perf_counter() - start)
  return float(np.median(times[1:]))


def keras_epoch_seconds(data: str) -> float:
  """Seconds of one `model.fit` epoch over the same examples and pipeline (after a warm-up epoch)."""
  spec = spec_lib.load_spec(data)
  client = ClientConfig()
  cfg = PipelineConfig(batch_size=client.batch_size, shuffle_buffer=client.shuffle_buffer)
  ds = None
  for s in spec.scenario_names:
    d = pipeline.make_dataset(data, spec, 'train', s, cfg)
    ds = d if ds is None else ds.concatenate(d)
  model = trainers.make_model_fn(_setup(data, '-'), spec)()
  model.compile(tf.keras.optimizers.Adam(client.learning_rate),
                loss={t: tf.keras.losses.BinaryCrossentropy() for t in spec.task_names},
                loss_weights={t: 1.0 / len(spec.task_names) for t in spec.task_names})
  model.fit(ds, epochs=1, verbose=0)
  times = []
  for _ in range(2):
    start = time.perf_counter()
    model.fit(ds, epochs=1, verbose=0)
    times.append(time.perf_counter() - start)
  return min(times)


def _tree_rss_kib(pid: int) -> int:
  """RSS of a process and all its descendants (the TFF workers), from /proc."""
  total, todo = 0, [pid]
  while todo:
    p = todo.pop()
    try:
      with open(f'/proc/{p}/status') as f:
        total += next((int(l.split()[1]) for l in f if l.startswith('VmRSS:')), 0)
      for children in glob.glob(f'/proc/{p}/task/*/children'):
        with open(children) as f:
          todo += [int(c) for c in f.read().split()]
    except (OSError, ValueError):
      continue
  return total


def peak_rss_mib(data: str, output: str) -> float:
  env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL='3')
  proc = subprocess.Popen([sys.executable, '-m', 'federated.cli', 'train', f'--data={data}', '--rounds=2',
                           f'--output={output}', '--eval_every=2'], env=env, cwd=REPO,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  peak = 0
  while proc.poll() is None:
    peak = max(peak, _tree_rss_kib(proc.pid))
    time.sleep(0.1)
  if proc.returncode:
    raise RuntimeError(f'pfmsmt train on {data} failed ({proc.returncode})')
  return peak / 1024


def _fit(xs, ys):
  slope, intercept = np.polyfit(xs, ys, 1)
  fitted = slope * np.asarray(xs) + intercept
  worst = float(np.max(np.abs(fitted - ys) / np.asarray(ys)))
  return float(slope), float(intercept), worst


def main(argv) -> None:
  del argv
  logging.set_verbosity(logging.WARNING)
  base = FLAGS.rows_per_scenario
  with tempfile.TemporaryDirectory() as work:
    overhead_data = _prepare(work, 'overhead', FLAGS.overhead_rows_per_scenario)
    keras_s = keras_epoch_seconds(overhead_data)
    with runtime.local_runtime():
      tff_s = tff_round_seconds(overhead_data, work)
      by_scenarios = {k: tff_round_seconds(_prepare(work, f'k{k}', base, k), work) for k in (2, 4, 8)}
      by_rows = {m: tff_round_seconds(_prepare(work, f'x{m}', base * m), work) for m in (1, 4, 16)}
    rows = {k: _train_rows(os.path.join(work, f'k{k}')) for k in (2, 4, 8)}
    rows.update({f'x{m}': _train_rows(os.path.join(work, f'x{m}')) for m in (1, 4, 16)})
    n_overhead = _train_rows(overhead_data)
    rss = {m: peak_rss_mib(os.path.join(work, f'x{m}'), os.path.join(work, f'rss{m}')) for m in (1, 16)}
  overhead = tff_s / keras_s
  k_slope, k_icpt, k_dev = _fit(list(by_scenarios), list(by_scenarios.values()))
  r_x = [rows[f'x{m}'] for m in (1, 4, 16)]
  r_slope, r_icpt, r_dev = _fit(r_x, list(by_rows.values()))
  cmd = 'python benchmarks/speed.py ' + ' '.join(
      f'--{k}={getattr(FLAGS, k)}' for k in ('rows_per_scenario', 'overhead_rows_per_scenario', 'rounds'))
  lines = [
      '# Speed and scale benchmark', '',
      f'Command: `{cmd}`  ',
      f'Machine: {report_file.machine(tf.__version__)}  ',
      f'Date: {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}  ',
      'Model and settings: the defaults (80k-parameter MMoE, batch 256, 1 local epoch, Adam 1e-3); '
      'PF-MSMTrec; the first round (tracing) is not timed.', '',
      '## TFF round versus plain Keras on the same examples', '',
      '| | seconds | examples/s |', '|---|---|---|',
      f'| one PF-MSMTrec round, {n_overhead:,} train examples over 4 scenarios | {tff_s:.2f} | '
      f'{n_overhead / tff_s:,.0f} |',
      f'| one `model.fit` epoch, the same examples and pipeline | {keras_s:.2f} | {n_overhead / keras_s:,.0f} |',
      f'| **overhead TFF / Keras** (target <= 1.5) | **{overhead:.2f}x** | |', '',
      f'## Round time against scenarios ({base:,} rows each)', '',
      '| scenarios | train examples | seconds per round |', '|---|---|---|',
      *[f'| {k} | {rows[k]:,} | {s:.2f} |' for k, s in by_scenarios.items()],
      '', f'Fitted: {k_slope:.3f} s per scenario + {k_icpt:.2f} s; largest deviation from the line '
      f'{k_dev:.1%}.', '',
      '## Round time against rows per scenario (4 scenarios)', '',
      '| rows per scenario | train examples | seconds per round |', '|---|---|---|',
      *[f'| {m}x = {base * m:,} | {rows[f"x{m}"]:,} | {s:.2f} |' for m, s in by_rows.items()],
      '', f'Fitted: {r_slope * 1e4:.3f} s per 10,000 examples + {r_icpt:.2f} s; largest deviation from the line '
      f'{r_dev:.1%}.', '',
      '## Peak RSS of a 2-round `pfmsmt train` (process and TFF workers)', '',
      '| rows per scenario | peak RSS MiB |', '|---|---|',
      f'| 1x = {base:,} | {rss[1]:.0f} |', f'| 16x = {base * 16:,} | {rss[16]:.0f} |',
      f'| **ratio 16x / 1x** | **{rss[16] / rss[1]:.2f}** |', '',
  ]
  report_file.publish(lines, FLAGS.output)


if __name__ == '__main__':
  app.run(main)
