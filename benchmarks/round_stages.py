"""What each step a personalized group takes through TFF costs, alone, at the paper-size model's group size.

round_cost.md shows a paper-size PF-MSMTrec round well above FedAvg's, with local training alike. This
benchmark times, one by one, the steps a [K, D] personalized group (D = --group_size values per client, K
clients) goes through in a round, each as its own TFF computation in the local runtime:
1. the crossing: a [K, D] server value from Python to the executor and back (a server state's trip each
   round), with the seconds of its two gRPC calls and of the serializer and the deserializer;
2. federated_select of each client's own row, from a value made on the server;
3. the uploads: each client fills its row of a [K, D] matrix, and `federated_sum` gathers them;
4. the server's aggregation of the group (conflict coordination and personalization at the defaults).
Steps 2-4 make their values inside the executor; the cost of making them alone (the server's [K, D] value, or
one row per client, reduced) is timed too and subtracted. The median of --repeats runs after one untimed.

  python benchmarks/round_stages.py [--group_size=9700000] [--clients=4] [--repeats=3]

Writes benchmarks/results/round_stages.md.
"""

from __future__ import annotations

import collections
import contextlib
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import numpy as np  # noqa: E402
from federated import startup  # noqa: E402

tf = startup.import_tensorflow()  # before app.run (see federated/cli/common.py), without CUDA start-up noise
import report_file  # noqa: E402
import tensorflow_federated as tff  # noqa: E402
from absl import app, flags, logging  # noqa: E402  pylint: disable=g-multiple-import
from tensorflow_federated.python.core.impl.executors import remote_executor_grpc_stub  # noqa: E402
from tensorflow_federated.python.core.impl.executors import value_serialization  # noqa: E402

from federated import aggregators, runtime  # noqa: E402
from federated.config import AggregationConfig  # noqa: E402

flags.DEFINE_integer('group_size', 9_700_000, 'Values per client in the group (paper_config()\'s scenario experts).')
flags.DEFINE_integer('clients', 4, 'Clients (K).')
flags.DEFINE_integer('repeats', 3, 'Timed runs per step, after one untimed.')
flags.DEFINE_string('output', os.path.join(REPO, 'benchmarks', 'results', 'round_stages.md'), 'Report file.')
FLAGS = flags.FLAGS


@contextlib.contextmanager
def timed_calls(seconds: dict):
  """Adds to `seconds` the time of every create_value and compute gRPC call, and of the (de)serializer."""
  stub = remote_executor_grpc_stub.RemoteExecutorGrpcStub
  saved = {name: getattr(stub, name) for name in ('create_value', 'compute')}
  saved_serialize, saved_deserialize = value_serialization.serialize_value, value_serialization.deserialize_value

  def timing(key, fn):
    def call(*args, **kwargs):
      start = time.perf_counter()
      try:
        return fn(*args, **kwargs)
      finally:
        seconds[key] += time.perf_counter() - start
    return call

  for name, fn in saved.items():
    setattr(stub, name, timing(f'gRPC {name}', fn))
  value_serialization.serialize_value = timing('serializer', saved_serialize)
  value_serialization.deserialize_value = timing('deserializer', saved_deserialize)
  try:
    yield
  finally:
    for name, fn in saved.items():
      setattr(stub, name, fn)
    value_serialization.serialize_value = saved_serialize
    value_serialization.deserialize_value = saved_deserialize


def build(k: int, d: int):
  """The computations of each step, keyed by name."""
  matrix = tff.TensorType(np.float32, [k, d])
  clients = tff.FederatedType(np.int32, tff.CLIENTS)
  cfg = AggregationConfig()

  @tff.tensorflow.computation
  def make_matrix():
    return tf.random.stateless_normal([k, d], [1, 2])

  @tff.tensorflow.computation(np.int32)
  def make_row_sum(key):
    return tf.reduce_sum(tf.random.stateless_normal([d], [1, key]))

  @tff.tensorflow.computation(matrix)
  def row_sums(m):
    return tf.reduce_sum(m, axis=1)

  @tff.tensorflow.computation(matrix)
  def plus_one(m):
    return m + 1.0

  @tff.tensorflow.computation(matrix, np.int32)
  def select_row(m, key):
    return tf.gather(m, key)

  @tff.tensorflow.computation(np.int32)
  def as_keys(key):
    return tf.reshape(key, [1])

  @tff.tensorflow.computation(tff.SequenceType(tff.TensorType(np.float32, [d])))
  def sequence_sum(rows):
    return rows.reduce(0.0, lambda total, row: total + tf.reduce_sum(row))

  @tff.tensorflow.computation(np.int32)
  def own_row_of_matrix(key):
    return tf.scatter_nd([[key]], [tf.random.stateless_normal([d], [1, key])], [k, d])

  @tff.tensorflow.computation(matrix, tff.TensorType(np.float32, [k]))
  def aggregate(m, counts):
    result, _, _ = aggregators.aggregate_group_with_stats(m, counts, cfg.conflict, tf.constant(0), cfg)
    return tf.reduce_sum(result, axis=1)

  @tff.federated_computation(clients)
  def making_matrix(keys):
    del keys
    return tff.federated_map(row_sums, tff.federated_eval(make_matrix, tff.SERVER))

  @tff.federated_computation(clients)
  def making_rows(keys):
    return tff.federated_sum(tff.federated_map(make_row_sum, keys))

  @tff.federated_computation(tff.FederatedType(matrix, tff.SERVER))
  def crossing(m):
    return tff.federated_map(plus_one, m)

  @tff.federated_computation(clients)
  def select(keys):
    own = tff.federated_select(tff.federated_map(as_keys, keys), tff.federated_value(np.int32(k - 1), tff.SERVER),
                               tff.federated_eval(make_matrix, tff.SERVER), select_row)
    return tff.federated_sum(tff.federated_map(sequence_sum, own))

  @tff.federated_computation(clients)
  def uploads(keys):
    return tff.federated_map(row_sums, tff.federated_sum(tff.federated_map(own_row_of_matrix, keys)))

  @tff.federated_computation(clients)
  def aggregation(keys):
    del keys
    return tff.federated_map(aggregate, (tff.federated_eval(make_matrix, tff.SERVER),
                                         tff.federated_value(np.ones(k, np.float32), tff.SERVER)))

  return collections.OrderedDict(making_matrix=making_matrix, making_rows=making_rows, crossing=crossing,
                                 select=select, uploads=uploads, aggregation=aggregation)


def median_seconds(fn, arg) -> float:
  fn(arg)
  times = []
  for _ in range(FLAGS.repeats):
    start = time.perf_counter()
    fn(arg)
    times.append(time.perf_counter() - start)
  return float(np.median(times))


def main(argv) -> None:
  del argv
  logging.set_verbosity(logging.WARNING)
  k, d = FLAGS.clients, FLAGS.group_size
  keys = list(range(k))
  with runtime.local_runtime():
    steps = build(k, d)
    matrix = np.random.default_rng(0).standard_normal((k, d), dtype=np.float32)
    seconds = {name: median_seconds(fn, matrix if name == 'crossing' else keys) for name, fn in steps.items()}
    calls = collections.defaultdict(float)
    with timed_calls(calls):
      for _ in range(FLAGS.repeats):
        steps['crossing'](matrix)
  calls = {key: value / FLAGS.repeats for key, value in calls.items()}
  matrix_s, rows_s = seconds['making_matrix'], seconds['making_rows']
  mib = k * d * 4 / 2**20
  rows = [
      f'| the crossing: a [{k}, {d:,}] server value ({mib:,.0f} MiB) to the executor and back | '
      f'{seconds["crossing"]:.2f} | ' + ', '.join(f'{key} {value:.2f} s' for key, value in sorted(calls.items())) + ' |',
      f'| federated_select of each client\'s own row | {seconds["select"] - matrix_s:.2f} | '
      f'{seconds["select"]:.2f} s less making the server\'s matrix |',
      f'| the uploads: each client\'s row in a [{k}, {d:,}] matrix, summed | {seconds["uploads"] - rows_s:.2f} | '
      f'{seconds["uploads"]:.2f} s less making the clients\' rows |',
      f'| the server\'s aggregation of the group (defaults) | {seconds["aggregation"] - matrix_s:.2f} | '
      f'{seconds["aggregation"]:.2f} s less making the server\'s matrix |',
      f'| (making the server\'s [{k}, {d:,}] matrix, and the clients\' rows, inside the executor) | '
      f'{matrix_s:.2f}, {rows_s:.2f} | |',
  ]
  lines = [
      '# What a personalized group\'s steps through TFF cost, one by one', '',
      f'Command: `python benchmarks/round_stages.py --group_size={d} --clients={k} --repeats={FLAGS.repeats}`  ',
      f'Machine: {report_file.machine(tf.__version__)}  ',
      f'Date: {time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}  ',
      f'{k} clients, a group of {d:,} float32 values per client (paper_config()\'s scenario experts); each step '
      f'is its own TFF computation in the local runtime, the median of {FLAGS.repeats} runs after one untimed. '
      'A PF-MSMTrec round takes each step once (the crossing twice over: its state in, and the new one out).', '',
      '| step | seconds | detail |', '|---|---|---|', *rows, '',
  ]
  report_file.publish(lines, FLAGS.output)


if __name__ == '__main__':
  app.run(main)
