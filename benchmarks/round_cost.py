"""Where a round's time goes on the public AliExpress model size (`config.paper_config()`, about 10M parameters).

speed.md found a PF-MSMTrec round with `paper_config()` about 3x slower than one `model.fit` epoch at batch
256, whatever the batch size: a fixed cost, not the training. This benchmark splits a round in two, per
algorithm: the local training (the round at 2 local epochs minus the round at 1: one epoch inside TFF) and
the rest (the round at 1 epoch minus that epoch: the server state's trip from Python to the executor and
back, broadcast, federated_select, the uploads, the aggregation, the state files). PF-MSMTrec is set beside
FedAvg, whose model is all global, so that the part the personalized groups add shows. In the same run it
also times the round at 1 epoch, with the executors' page faults per round, as it ran before the memory
settings of runtime.EXECUTOR_ENV (malloc's defaults, BFC kept), and as it
ran before runtime.configure_executors() (TFF's own value serializer, executors on plain malloc). Rounds after
the first (which traces) only; the median of --repeats.

  python benchmarks/round_cost.py [--rows_per_scenario=2500] [--repeats=3]

Writes benchmarks/results/round_cost.md.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import numpy as np  # noqa: E402
from federated import startup  # noqa: E402

tf = startup.import_tensorflow()  # before app.run (see federated/cli/common.py), without CUDA start-up noise
import prepared  # noqa: E402  (benchmarks/, this script's folder)
import report_file  # noqa: E402
import round_timer  # noqa: E402
from absl import app, flags, logging  # noqa: E402  pylint: disable=g-multiple-import

from data_pipelines import prepare  # noqa: E402
from data_pipelines import spec as spec_lib  # noqa: E402
from data_pipelines.config import PrepareConfig  # noqa: E402
from federated import run_directory, runtime, serialization, trainers  # noqa: E402
from federated.config import AggregationConfig, ClientConfig, RunSetup, TrainConfig  # noqa: E402
from pfmsmt_tf import config as model_config  # noqa: E402

ALGORITHMS = ('pfmsmtrec', 'fedavg')
flags.DEFINE_integer('rows_per_scenario', 2_500, 'Rows per scenario (4 scenarios).')
flags.DEFINE_integer('repeats', 3, 'Timed rounds per setting, after one untimed.')
flags.DEFINE_string('output', os.path.join(REPO, 'benchmarks', 'results', 'round_cost.md'), 'Report file.')
FLAGS = flags.FLAGS


def round_seconds(data: str, work: str, algorithm: str, epochs: int, tag: str = ''):
  """Median seconds of --repeats rounds after the first, those rounds' seconds, and the median of their
  executors' page faults."""
  setup = RunSetup(TrainConfig(data=data, output=os.path.join(work, f'{algorithm}-{epochs}{tag}'), rounds=FLAGS.repeats + 1,
                               algorithm=algorithm), model_config.paper_config(), ClientConfig(local_epochs=epochs),
                   AggregationConfig())
  faults = []
  times = round_timer.round_times(setup, FLAGS.repeats + 1, faults)[1:]
  return float(np.median(times)), times, int(np.median(faults[1:]))


def serialize_seconds(data: str, work: str) -> dict:
  """Seconds to serialize PF-MSMTrec's initial server state once with TFF's serializer and with ours."""
  setup = RunSetup(TrainConfig(data=data, output=os.path.join(work, 'serialize'), rounds=1),
                   model_config.paper_config(), ClientConfig(), AggregationConfig())
  spec = spec_lib.load_spec(data)
  run = run_directory.RunDirectory(setup.cfg.output)
  trainer = trainers.build_trainer(setup, spec, data, run, trainers.make_model_fn(setup, spec))
  state = trainer.initialize()
  state_type = trainer.fp.process.next.type_signature.parameter[0]
  out = {}
  with serialization.tff_serializer() as tff_serialize:
    for name, fn in (('tff', tff_serialize), ('ours', serialization.serialize_value)):
      start = time.perf_counter()
      proto, _ = fn(state, state_type)
      out[name] = time.perf_counter() - start
  out['bytes'] = proto.ByteSize()
  return out


@contextlib.contextmanager
def default_malloc(bfc: bool = True):
  """Executors started in this block run without EXECUTOR_ENV's malloc settings (and without BFC unless `bfc`)."""
  saved = dict(runtime.EXECUTOR_ENV)
  runtime.EXECUTOR_ENV.clear()
  runtime.EXECUTOR_ENV['TF_CPU_ALLOCATOR_USE_BFC'] = 'true' if bfc else 'false'
  try:
    yield
  finally:
    runtime.EXECUTOR_ENV.clear()
    runtime.EXECUTOR_ENV.update(saved)


@contextlib.contextmanager
def untuned_runtime():
  """The local runtime as it was before configure_executors(): TFF's serializer, the executor on malloc."""
  with default_malloc(bfc=False), runtime.local_runtime(), serialization.tff_serializer():
    yield


def main(argv) -> None:
  del argv
  logging.set_verbosity(logging.WARNING)
  with tempfile.TemporaryDirectory() as work:
    data = os.path.join(work, 'data')
    prepare.prepare(PrepareConfig(output=data, rows_per_scenario=FLAGS.rows_per_scenario), log=lambda *_: None)
    examples = prepared.split_rows(data)
    # The settings as they were first, then as they are: a machine that has warmed up favours the later runs.
    with untuned_runtime():
      before = {a: round_seconds(data, work, a, 1, '-untuned') for a in ALGORITHMS}
    with default_malloc(), runtime.local_runtime():
      malloc = {a: round_seconds(data, work, a, 1, '-malloc') for a in ALGORITHMS}
    with runtime.local_runtime():
      measured = {(a, e): round_seconds(data, work, a, e) for a in ALGORITHMS for e in (1, 2)}
      serialize = serialize_seconds(data, work)
  seconds = {k: v[0] for k, v in measured.items()}
  listed = lambda times: ', '.join(f'{t:.1f}' for t in times)
  rows = []
  for a in ALGORITHMS:
    epoch = seconds[(a, 2)] - seconds[(a, 1)]
    rows.append(f'| {a} | {seconds[(a, 1)]:.1f} ({listed(measured[(a, 1)][1])}) | {measured[(a, 1)][2]:,} | '
                f'{seconds[(a, 2)]:.1f} ({listed(measured[(a, 2)][1])}) | '
                f'{epoch:.1f} ({examples / max(epoch, 1e-9):,.0f} examples/s) | **{seconds[(a, 1)] - epoch:.1f}** | '
                f'{malloc[a][0]:.1f} ({listed(malloc[a][1])}) | {malloc[a][2]:,} | '
                f'{before[a][0]:.1f} ({listed(before[a][1])}) |')
  lines = [
      '# Where a round\'s time goes: the paper-size model', '',
      f'Command: `python benchmarks/round_cost.py --rows_per_scenario={FLAGS.rows_per_scenario} '
      f'--repeats={FLAGS.repeats}`  ',
      f'Machine: {report_file.machine(tf.__version__)}  ',
      f'Date: {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}  ',
      f'Model: `paper_config()` (embedding 128, 8 scenario experts of (512, 256), towers (128, 64)); 4 synthetic '
      f'scenarios, {examples:,} train examples; batch 256. Median of {FLAGS.repeats} rounds after the first '
      '(each round in brackets).', '',
      '| algorithm | round at 1 local epoch, s | executor page faults per round | round at 2, s | one epoch inside '
      'TFF, s | the rest of the round, s | round at 1 epoch, malloc\'s defaults, s | its page faults per round '
      '| round at 1 epoch, TFF\'s serializer and plain malloc, s |',
      '|---|---|---|---|---|---|---|---|---|', *rows, '',
      f'Serializing PF-MSMTrec\'s server state once ({serialize["bytes"] / 2**20:,.0f} MiB), which every round '
      f'does to send it to the executor: TFF\'s serializer {serialize["tff"]:.2f} s, federated/serialization.py '
      f'{serialize["ours"]:.2f} s, the same bytes.', '',
      'PF-MSMTrec\'s 8 scenario experts are one personalized group of about 9.7M values per scenario, so its '
      'server state holds a [4, 9.7M] matrix that crosses from Python to the executor and back every round. '
      'Profiled before the change (py-spy on this process, perf on the executor): TFF\'s serializer copied each '
      'tensor once per level of nesting (73% of this process\'s busy time), and the executor\'s malloc gave the '
      'round\'s tensors of hundreds of MB back to the kernel and took them again page by page (a quarter of its '
      'samples in page faults). runtime.configure_executors() now serializes with one copy per tensor and runs '
      'the executors on TensorFlow\'s BFC allocator (TF_CPU_ALLOCATOR_USE_BFC=true unless set).', '',
      'BFC covers tensors only. perf then still found a third of the executor\'s samples in page faults, in the '
      'copies TFF makes of its value protos (CreateValue, Value::Value) into memory that malloc had just mapped '
      'and would unmap again: every block above 32 MB is mapped apart. So the executors also run with malloc in '
      'at most 4 arenas, without mapping blocks apart, without trimming, on transparent huge pages '
      '(runtime.EXECUTOR_ENV). The page-fault columns count the executors\' minor faults per round (median), a '
      'count the load of the machine does not change.', '',
  ]
  report_file.publish(lines, FLAGS.output)


if __name__ == '__main__':
  app.run(main)
