"""The coordinator side of remote execution: scenarios on separate machines, through TFF's own runtime.

Each silo runs `pfmsmt worker`: TFF's C++ executor service (`worker_binary`, gRPC) started in a home folder
where `data/` is that silo's prepared partitions and `clients/` its scenarios' local parameters. The
coordinator (`pfmsmt train --workers=...`) runs the same process as the local runtime, only in another
execution context: TFF's mergeable context, with one subround per scenario, on the worker that holds it.

What runs where: each client's work (reading its rows, training, its local state files) runs on its
worker, which resolves the relative paths it is given (`data/<split>/<scenario>/*.rows`,
`clients/<run>/<scenario>/round_<r>.state`) against its home folder; rows and local parameters never leave it.
The merge of partial aggregates and the server update run at the coordinator, in its own local C++
worker. A worker receives the server state (the mergeable compiler delivers server values whole) with the
personalized rows of every scenario it does not serve zeroed here first (`_own_rows`; its
`federated_select` picks its own rows), and returns its clients' aggregated updates. Connections are
mutual TLS when the coordinator has credentials (federated/gate.py is the worker's side).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
from typing import Dict, Iterator, List, Sequence

from federated import runtime, tls
from federated.worker import relative_partition

CONNECT_TIMEOUT_S = 5.0
HEARTBEAT_S = 2.0
# A restarted worker is found again within about a second, not after gRPC's default backoff of up to 2 min.
RECONNECT_OPTIONS = [('grpc.initial_reconnect_backoff_ms', 500), ('grpc.min_reconnect_backoff_ms', 500),
                     ('grpc.max_reconnect_backoff_ms', 1000)]


class WorkerError(ConnectionError):
  """A worker is unreachable, lacks a scenario's data, or failed during a round."""


@dataclasses.dataclass(frozen=True)
class Credentials:
  """The coordinator's side of mutual TLS: the CA that signed the workers, and its own certificate and key."""

  ca: bytes
  cert: bytes
  key: bytes

  @classmethod
  def from_files(cls, ca: str, cert: str, key: str) -> 'Credentials | None':
    if not (ca or cert or key):
      return None
    return cls(tls.read(ca, 'tls_ca'), tls.read(cert, 'tls_cert'), tls.read(key, 'tls_key'))


@dataclasses.dataclass(frozen=True)
class Placement:
  """Which worker (address) serves which scenario, and how the coordinator proves who it is."""

  workers: tuple  # addresses host:port
  scenario_worker: Dict[str, int]  # scenario name -> index into workers
  credentials: Credentials | None = None  # None: plain gRPC (workers started with --insecure)

  @classmethod
  def parse(cls, workers: Sequence[str], placement: Sequence[str], scenarios: Sequence[str],
            credentials: Credentials | None = None) -> 'Placement':
    """`placement` items are SCENARIO:WORKER_INDEX; without them, scenarios are split evenly, in order."""
    workers = tuple(w.strip() for w in workers if w.strip())
    for w in workers:
      host, _, port = w.rpartition(':')
      if not host or not port.isdigit():
        raise ValueError(f'--workers: {w!r} is not host:port')
    if not workers:
      raise ValueError('--workers: at least one host:port is needed')
    mapping = {}
    if placement:
      for item in placement:
        name, _, index = item.rpartition(':')
        if name not in scenarios:
          raise ValueError(f'--placement: {name!r} is not a scenario of the data ({list(scenarios)})')
        if not index.isdigit() or int(index) >= len(workers):
          raise ValueError(f'--placement: {item!r} needs a worker index in 0..{len(workers) - 1}')
        mapping[name] = int(index)
      missing = [s for s in scenarios if s not in mapping]
      if missing:
        raise ValueError(f'--placement: no worker for scenario(s) {missing}')
    else:
      per = -(-len(scenarios) // len(workers))
      mapping = {s: min(i // per, len(workers) - 1) for i, s in enumerate(scenarios)}
    return cls(workers, mapping, credentials)

  def describe(self) -> str:
    lines = ['placement:']
    for i, w in enumerate(self.workers):
      served = [s for s, j in self.scenario_worker.items() if j == i]
      lines.append(f'  worker {i} {w}: {", ".join(served) if served else "(no scenario)"}')
    return '\n'.join(lines)


# ------------------------------------------------------------------------------------------ the coordinator


_channels: Dict[tuple, object] = {}  # (address, credentials) -> its one gRPC channel, until remote_runtime ends


def _channel(address: str, credentials: Credentials | None):
  """The one channel to `address`: every call and probe reuses it, so that a worker restart (gRPC reconnects
  by itself) leaks nothing; TLS with the coordinator's certificate when there are credentials."""
  import grpc  # pylint: disable=g-import-not-at-top
  from tensorflow_federated.python.core.impl.executor_stacks import executor_factory  # pylint: disable=g-import-not-at-top
  key = (address, credentials)
  if key not in _channels:
    options = executor_factory._GRPC_CHANNEL_OPTIONS + RECONNECT_OPTIONS  # pylint: disable=protected-access
    _channels[key] = (grpc.insecure_channel(address, options) if credentials is None else grpc.secure_channel(
        address, grpc.ssl_channel_credentials(credentials.ca, credentials.key, credentials.cert), options))
  return _channels[key]


def close_channels() -> int:
  """Closes every channel this process opened to workers; returns how many."""
  n = len(_channels)
  for channel in _channels.values():
    channel.close()
  _channels.clear()
  return n


def open_channels() -> int:
  return len(_channels)


def _ready(address: str, credentials, timeout_s: float) -> bool:
  import grpc  # pylint: disable=g-import-not-at-top
  future = grpc.channel_ready_future(_channel(address, credentials))
  try:
    future.result(timeout=timeout_s)
    return True
  except grpc.FutureTimeoutError:
    future.cancel()  # stops its polling of the channel, which outlives this call otherwise
    return False


def check_reachable(placement: Placement, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
  for i, address in enumerate(placement.workers):
    if not _ready(address, placement.credentials, timeout_s):
      how = ('with TLS: is it a `pfmsmt worker` whose certificate ca.pem signed, for this address, and does it '
             'admit this coordinator\'s certificate (its log names a refusal)?' if placement.credentials else
             'without TLS: does the worker run with --insecure?')
      raise WorkerError(f'worker {i} ({address}) is not reachable within {timeout_s:.0f} s: is '
                        f'`pfmsmt worker --port={address.rpartition(":")[2]}` running there, {how}')


def unreachable(placement: Placement, timeout_s: float = 2.0) -> List[str]:
  """The workers that do not answer now (to name the one that failed a round)."""
  return [f'worker {i} ({a})' for i, a in enumerate(placement.workers)
          if not _ready(a, placement.credentials, timeout_s)]


def _worker_context(address: str, credentials: Credentials | None):
  """An async TFF context whose computations run on the C++ worker at `address`."""
  from tensorflow_federated.python.core.backends.native import compiler  # pylint: disable=g-import-not-at-top
  from tensorflow_federated.python.core.environments.tensorflow_frontend import tensorflow_computation  # pylint: disable=g-import-not-at-top
  from tensorflow_federated.python.core.impl.execution_contexts import async_execution_context  # pylint: disable=g-import-not-at-top
  from tensorflow_federated.python.core.impl.executor_stacks import python_executor_stacks  # pylint: disable=g-import-not-at-top
  from tensorflow_federated.python.core.impl.executors import remote_executor, remote_executor_grpc_stub  # pylint: disable=g-import-not-at-top,g-multiple-import
  from tensorflow_federated.python.core.impl.types import placements  # pylint: disable=g-import-not-at-top
  stub = remote_executor_grpc_stub.RemoteExecutorGrpcStub(_channel(address, credentials))

  def stack_fn(cardinalities):
    cardinalities.setdefault(placements.CLIENTS, 1)
    ex = remote_executor.RemoteExecutor(stub)
    ex.set_cardinalities(cardinalities)
    return ex

  return async_execution_context.AsyncExecutionContext(
      executor_fn=python_executor_stacks.ResourceManagingExecutorFactory(executor_stack_fn=stack_fn),
      compiler_fn=compiler.desugar_and_transform_to_native,
      transform_args=tensorflow_computation.transform_args,
      transform_result=tensorflow_computation.transform_result)


class _Routed:
  """Sends the clients' parts of a mergeable computation to a worker, merges and the server's part to the
  coordinator's own runtime.

  TFF's async context retries a computation while its worker is unavailable, without a limit; so while
  a worker computes, its gRPC channel is probed every HEARTBEAT_S and a worker that stopped answering is
  named in a WorkerError instead.
  """

  def __init__(self, worker, server, client_parts: set, name: str, address: str, credentials, own_rows: frozenset):
    self._worker, self._server, self._client_parts = worker, server, client_parts
    self._name, self._address, self._credentials, self._rows = name, address, credentials, own_rows

  def _answers(self) -> bool:
    return _ready(self._address, self._credentials, HEARTBEAT_S)

  def _in_thread(self, comp, arg) -> asyncio.Future:
    """The worker call in a thread of its own: TFF's remote executor makes blocking gRPC calls, which would
    otherwise hold the event loop and run the workers one after the other. Daemon threads: a call stuck
    retrying a dead worker never keeps the process alive."""
    loop = asyncio.get_running_loop()
    future = loop.create_future()

    def settle(result, error):
      if not future.done():
        if error is None:
          future.set_result(result)
        else:
          future.set_exception(error)

    def target():
      try:
        result = asyncio.run(self._worker.invoke(comp, arg))
        loop.call_soon_threadsafe(settle, result, None)
      except BaseException as e:  # pylint: disable=broad-except  (handed to the awaiting coroutine)
        loop.call_soon_threadsafe(settle, None, e)

    threading.Thread(target=target, daemon=True, name=f'pfmsmt {self._name}').start()
    return future

  async def invoke(self, comp, arg):
    if id(comp) not in self._client_parts:
      return await self._server.invoke(comp, arg)
    loop = asyncio.get_running_loop()
    task = self._in_thread(comp, _own_rows(arg, self._rows))
    while True:
      done, _ = await asyncio.wait({task}, timeout=HEARTBEAT_S)
      if done:
        return task.result()
      if not await loop.run_in_executor(None, self._answers):
        task.cancel()
        raise WorkerError(f'{self._name} stopped answering')


def _own_rows(arg, served: frozenset):
  """`arg` (a round's or an evaluation's argument: server state and client inputs, possibly nested in what
  the mergeable context adds) with every row of the state's personalized groups that belongs to a scenario
  the worker does not serve set to zero: the worker's `federated_select` reads only its own rows, and the
  others never leave the coordinator. Values without that state pass unchanged."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from tensorflow_federated.python.common_libs import structure  # pylint: disable=g-import-not-at-top
  rows_kept = sorted(served)

  def keep_own(rows):
    rows = np.array(rows)
    mask = np.zeros(rows.shape[0], bool)
    mask[rows_kept] = True
    rows[~mask] = 0
    return rows

  found = []

  def rebuild(value, fn):
    """`value` with fn(name, child) for each child, in the same kind of container (TFF wants lists where
    it placed clients' values)."""
    if isinstance(value, structure.Struct):
      return structure.Struct([(n, fn(n, v)) for n, v in structure.iter_elements(value)])
    if isinstance(value, dict):
      return type(value)((k, fn(k, v)) for k, v in value.items())
    if isinstance(value, tuple) and hasattr(value, '_fields'):  # a namedtuple
      return type(value)(*(fn(n, v) for n, v in zip(value._fields, value)))
    if isinstance(value, (list, tuple)):
      return type(value)(fn(None, v) for v in value)
    return value

  def names(value):
    if isinstance(value, structure.Struct):
      return [n for n, _ in structure.iter_elements(value)]
    return list(value) if isinstance(value, dict) else list(getattr(value, '_fields', ()))

  def leaves(_, value):
    containers = (structure.Struct, dict, list, tuple)
    return rebuild(value, leaves) if isinstance(value, containers) else keep_own(value)

  def walk(name, value):
    if name == 'model' and 'personalized' in names(value):
      found.append(name)
      return rebuild(value, lambda n, v: rebuild(v, leaves) if n == 'personalized' else v)
    return rebuild(value, walk)

  redacted = walk(None, arg)
  return redacted if found else arg  # untouched values keep their own containers


def _routed_class():
  from tensorflow_federated.python.core.impl.context_stack import context_base  # pylint: disable=g-import-not-at-top

  class Routed(_Routed, context_base.AsyncContext):
    pass

  return Routed


@contextlib.contextmanager
def remote_runtime(placement: Placement, scenarios: Sequence[str]) -> Iterator[None]:
  """TFF's mergeable context over the workers: subround i is scenario i (client inputs in spec order)."""
  import tensorflow_federated as tff  # pylint: disable=g-import-not-at-top
  from tensorflow_federated.python.core.backends.native import mergeable_comp_compiler  # pylint: disable=g-import-not-at-top
  from tensorflow_federated.python.core.impl.context_stack import context_stack_impl  # pylint: disable=g-import-not-at-top
  from tensorflow_federated.python.core.impl.execution_contexts import mergeable_comp_execution_context as mcec  # pylint: disable=g-import-not-at-top
  from tensorflow_federated.python.core.impl.types import type_analysis  # pylint: disable=g-import-not-at-top
  check_reachable(placement)
  own_workers = set(runtime.worker_processes())  # workers started by this process itself (benchmarks) stay up
  runtime.install_shutdown_hooks()
  runtime.bind_workers_to_this_process()
  runtime.configure_executors()
  server = tff.backends.native.create_async_local_cpp_execution_context()
  workers = [_worker_context(a, placement.credentials) for a in placement.workers]
  client_parts: set = set()

  def per_client(t) -> bool:
    return isinstance(t, tff.FederatedType) and t.placement is tff.CLIENTS and not t.all_equal

  def compile_fn(comp):
    form = mergeable_comp_compiler.compile_to_mergeable_comp_form(comp)
    client_parts.add(id(form.up_to_merge))
    # Without an aggregation (evaluation returns one result per client) the clients' work is after the
    # (empty) merge; it then runs per subround, and belongs on the worker too.
    if type_analysis.contains(form.after_merge.type_signature.result, per_client):
      client_parts.add(id(form.after_merge))
    return form

  routed = _routed_class()
  contexts = []
  for s in scenarios:
    i = placement.scenario_worker[s]
    own_rows = frozenset(k for k, name in enumerate(scenarios) if placement.scenario_worker[name] == i)
    contexts.append(routed(workers[i], server, client_parts, f'worker {i} ({placement.workers[i]})',
                           placement.workers[i], placement.credentials, own_rows))
  context = mcec.MergeableCompExecutionContext(async_contexts=contexts, compiler_fn=compile_fn,
                                               num_subrounds=len(scenarios))
  with context_stack_impl.context_stack.install(context):
    try:
      yield
    finally:
      close_channels()
      runtime.shutdown_workers(keep=own_workers)


def check_data(placement: Placement, spec, splits: Sequence[str] = ('train', 'test')) -> None:
  """Fails fast when a worker lacks a scenario's partition (counted on the worker, by a TFF computation)."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  import tensorflow_federated as tff  # pylint: disable=g-import-not-at-top

  @tff.tensorflow.computation(np.str_)
  def count_files(pattern):
    return pattern, tf.size(tf.io.matching_files(pattern))  # results may come back in another order

  @tff.federated_computation(tff.FederatedType(np.str_, tff.CLIENTS))
  def count(patterns):
    return tff.federated_map(count_files, patterns)

  for split in splits:
    patterns = [relative_partition(spec, split, s.name) for s in spec.scenarios]
    found = {p.decode() if isinstance(p, bytes) else str(p): int(n) for p, n in count(patterns)}
    for s, pattern in zip(spec.scenarios, patterns):
      if found[pattern] == 0:
        i = placement.scenario_worker[s.name]
        raise WorkerError(f'worker {i} ({placement.workers[i]}) has no {split} partition of scenario {s.name!r}: '
                          f'nothing matches {pattern} under its --data_root')
