"""Distributed runtime benchmark: round time with one worker versus two, and the cost of mutual TLS.

Starts `worker_binary` services on loopback, each limited to one thread and pinned to its own core, runs
PF-MSMTrec rounds on 4 synthetic scenarios with every scenario on one worker, then with two scenarios on
each of two workers, and prints the speed-up (target: at least 1.6x with two). Then the two workers again
as `pfmsmt worker` runs them by default: each executor in a private network behind its gate, every
connection mutual TLS (federated/gate.py), and the seconds per round with and without TLS. The first
round (tracing) is not timed.

  python benchmarks/remote.py [--rows_per_scenario=25000] [--rounds=3]

Writes benchmarks/results/remote.md.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import numpy as np  # noqa: E402
import portpicker  # noqa: E402
from federated import startup  # noqa: E402

tf = startup.import_tensorflow()  # before app.run (see federated/cli/common.py), without CUDA start-up noise
import gated  # noqa: E402  (benchmarks/, this script's folder)
import report_file  # noqa: E402
import round_timer  # noqa: E402
from absl import app, flags, logging  # noqa: E402  pylint: disable=g-multiple-import

from data_pipelines import prepare  # noqa: E402
from data_pipelines import spec as spec_lib  # noqa: E402
from data_pipelines.config import PrepareConfig  # noqa: E402
from federated import coordinator, worker  # noqa: E402
from federated.config import AggregationConfig, ClientConfig, RunSetup, TrainConfig  # noqa: E402
from pfmsmt_tf import config as model_config  # noqa: E402

flags.DEFINE_integer('rows_per_scenario', 25_000, 'Rows per scenario (train + test).')
flags.DEFINE_integer('rounds', 3, 'Rounds per setting; the first is not timed.')
flags.DEFINE_integer('threads', 1, 'TensorFlow threads of each worker.')
flags.DEFINE_string('output', os.path.join(REPO, 'benchmarks', 'results', 'remote.md'), 'Report file.')
FLAGS = flags.FLAGS


def round_seconds(data: str, run_dir: str, placement: coordinator.Placement) -> float:
  spec = spec_lib.load_spec(data)
  setup = RunSetup(TrainConfig(data=data, output=run_dir, rounds=FLAGS.rounds, workers=placement.workers),
                   model_config.ModelConfig(), ClientConfig(), AggregationConfig())
  with coordinator.remote_runtime(placement, spec.scenario_names):
    return float(np.median(round_timer.round_times(setup, FLAGS.rounds)[1:]))


def main(argv) -> None:
  del argv
  logging.set_verbosity(logging.WARNING)
  with tempfile.TemporaryDirectory() as work:
    data = os.path.join(work, 'data')
    prepare.prepare(PrepareConfig(output=data, rows_per_scenario=FLAGS.rows_per_scenario), log=lambda *_: None)
    certs, credentials = gated.certificates(work)
    scenarios = spec_lib.load_spec(data).scenario_names
    halves = {s: i // 2 for i, s in enumerate(scenarios)}
    ports = [portpicker.pick_unused_port() for _ in range(2)]
    procs = [worker.start_worker(p, worker.worker_home(data, os.path.join(work, f'silo{i}')), FLAGS.threads,
                                 cpu=i % os.cpu_count()) for i, p in enumerate(ports)]
    try:
      addresses = tuple(f'localhost:{p}' for p in ports)
      one = coordinator.Placement(addresses[:1], {s: 0 for s in scenarios})
      two = coordinator.Placement(addresses, halves)
      t_one = round_seconds(data, os.path.join(work, 'one'), one)
      t_two = round_seconds(data, os.path.join(work, 'two'), two)
    finally:
      for p in procs:
        p.kill()
        p.wait()
    ports = [portpicker.pick_unused_port() for _ in range(2)]
    gates = gated.start(data, work, ports, certs, FLAGS.threads)
    try:
      t_tls = round_seconds(data, os.path.join(work, 'tls'),
                            coordinator.Placement(tuple(f'localhost:{p}' for p in ports), halves, credentials))
    finally:
      gated.stop(gates)
  confined = all(report['confined'] for _, report in gates)
  rows = FLAGS.rows_per_scenario
  lines = [
      '# Distributed runtime benchmark', '',
      f'Command: `python benchmarks/remote.py --rows_per_scenario={rows} --rounds={FLAGS.rounds} '
      f'--threads={FLAGS.threads}`  ',
      f'Machine: {report_file.machine(tf.__version__)}  ',
      f'Date: {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}  ',
      f'Setting: PF-MSMTrec, default model, 4 synthetic scenarios of {rows:,} rows, each worker a '
      f'`worker_binary` on loopback pinned to its own core (taskset) and limited to {FLAGS.threads} TensorFlow '
      'thread(s); the coordinator merges and updates the server state in its own local runtime. Median of the '
      'timed rounds.', '',
      '| workers | placement | connection | seconds per round |', '|---|---|---|---|',
      f'| 1 | NL, ES, FR, US on worker 0 | plain gRPC | {t_one:.2f} |',
      f'| 2 | NL, ES on worker 0; FR, US on worker 1 | plain gRPC | {t_two:.2f} |',
      f'| 2 | the same | mutual TLS through each worker\'s gate{", executor in a private network" if confined else ""} '
      f'| {t_tls:.2f} |',
      f'| **speed-up** of 2 workers (target >= 1.6) | | | **{t_one / t_two:.2f}x** |',
      f'| **TLS overhead** (TLS / plain, 2 workers) | | | **{t_tls / t_two:.2f}x** ({t_tls - t_two:+.2f} s) |', '',
  ]
  report_file.publish(lines, FLAGS.output)


if __name__ == '__main__':
  app.run(main)
