"""TLS soak: many PF-MSMTrec rounds through two workers' gates, counting every TLS error either side logs.

Issue 17 saw one `SSLV3_ALERT_BAD_RECORD_MAC` (the gate's OpenSSL refused a record from the coordinator) in
one benchmark run and never again. This runs the setting of benchmarks/remote.py's TLS phase for many rounds,
with the gates' log and the coordinator's gRPC log (its file descriptor 2) each captured to a file, and reports
the connections accepted and every line that names a TLS or decryption error.

  python benchmarks/tls_soak.py [--rows_per_scenario=25000] [--soak_rounds=100]

Writes benchmarks/results/tls_soak.md.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import portpicker  # noqa: E402
from federated import startup  # noqa: E402

tf = startup.import_tensorflow()
import gated  # noqa: E402  (benchmarks/, this script's folder)
import report_file  # noqa: E402
import round_timer  # noqa: E402
from absl import app, flags, logging  # noqa: E402  pylint: disable=g-multiple-import

from data_pipelines import prepare  # noqa: E402
from data_pipelines import spec as spec_lib  # noqa: E402
from data_pipelines.config import PrepareConfig  # noqa: E402
from federated import coordinator  # noqa: E402
from federated.config import AggregationConfig, ClientConfig, RunSetup, TrainConfig  # noqa: E402
from pfmsmt_tf import config as model_config  # noqa: E402

flags.DEFINE_integer('rows_per_scenario', 25_000, 'Rows per scenario (train + test).')
flags.DEFINE_integer('soak_rounds', 100, 'Rounds through the gates.')
flags.DEFINE_string('output', os.path.join(REPO, 'benchmarks', 'results', 'tls_soak.md'), 'Report file.')
FLAGS = flags.FLAGS

ERROR_MARKS = ('TLS error', 'SSL', 'TSI_', 'Decryption', 'BAD_RECORD')


@contextlib.contextmanager
def _fd2_to(path: str):
  """gRPC's C core writes to file descriptor 2, which sys.stderr does not own: swap the descriptor itself."""
  saved = os.dup(2)
  with open(path, 'w') as f:
    os.dup2(f.fileno(), 2)
  try:
    yield
  finally:
    os.dup2(saved, 2)
    os.close(saved)


def _error_lines(path: str):
  with open(path) as f:
    return [line.rstrip() for line in f if any(m in line for m in ERROR_MARKS)]


def main(argv) -> None:
  del argv
  logging.set_verbosity(logging.WARNING)
  with tempfile.TemporaryDirectory() as work:
    data = os.path.join(work, 'data')
    prepare.prepare(PrepareConfig(output=data, rows_per_scenario=FLAGS.rows_per_scenario), log=lambda *_: None)
    certs, credentials = gated.certificates(work)
    scenarios = spec_lib.load_spec(data).scenario_names
    gate_log, grpc_log = os.path.join(work, 'gates.log'), os.path.join(work, 'grpc.log')
    ports = [portpicker.pick_unused_port() for _ in range(2)]
    with open(gate_log, 'w') as log:
      gates = gated.start(data, work, ports, certs, threads=1, stderr=log)
      try:
        placement = coordinator.Placement(tuple(f'localhost:{p}' for p in ports),
                                          {s: i // 2 for i, s in enumerate(scenarios)}, credentials)
        setup = RunSetup(TrainConfig(data=data, output=os.path.join(work, 'run'), rounds=FLAGS.soak_rounds,
                                     workers=placement.workers),
                         model_config.ModelConfig(), ClientConfig(), AggregationConfig())
        start = time.perf_counter()
        with _fd2_to(grpc_log), coordinator.remote_runtime(placement, scenarios):
          times = round_timer.round_times(setup, FLAGS.soak_rounds)
        wall = time.perf_counter() - start
      finally:
        gated.stop(gates)
    with open(gate_log) as f:
      gate_lines = f.read().splitlines()
    errors = _error_lines(gate_log) + _error_lines(grpc_log)
  accepted = sum('gate: accepted' in line for line in gate_lines)
  lines = [
      '# TLS soak', '',
      f'Command: `python benchmarks/tls_soak.py --rows_per_scenario={FLAGS.rows_per_scenario} '
      f'--soak_rounds={FLAGS.soak_rounds}`  ',
      f'Machine: {report_file.machine(tf.__version__)}  ',
      f'Date: {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}  ',
      'Setting: as the TLS phase of benchmarks/remote.py (2 gated workers, mutual TLS, executors in private '
      'networks, 2 scenarios each), for many rounds; the gates\' log and the coordinator\'s gRPC log captured.', '',
      '| rounds | wall seconds | median seconds per round | connections accepted | TLS or decryption errors |',
      '|---|---|---|---|---|',
      f'| {len(times)} | {wall:.0f} | {sorted(times)[len(times) // 2]:.2f} | {accepted} | {len(errors)} |', '',
  ]
  lines += ['Error lines:', ''] + [f'    {e}' for e in errors] if errors else ['No TLS or decryption error logged.']
  report_file.publish(lines, FLAGS.output)


if __name__ == '__main__':
  app.run(main)
