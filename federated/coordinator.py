"""The coordinator side of remote execution: scenarios on separate machines, through TFF's own runtime.

Each silo runs `pfmsmt worker`: TFF's C++ executor service (`worker_binary`, gRPC) started in a home folder
where `data/` is that silo's prepared partitions and `clients/` its scenarios' local parameters. The
coordinator (`pfmsmt train --workers=...`) runs the same process as the local runtime, only in another
execution context: TFF's mergeable context, with one subround per scenario, on the worker that holds it.

What runs where: each client's work (reading its rows, training, its local state files) runs on its
worker, which resolves the relative paths it is given (`data/<split>/<scenario>/*.tfrecord`,
`clients/<run>/<scenario>/round_<r>.state`) against its home folder; rows and local parameters never leave it.
The merge of partial aggregates and the server update run at the coordinator, in its own local C++
worker. A worker receives the server state (global and personalized parameters, since the mergeable
compiler delivers server values whole; `federated_select` then picks its scenarios' rows) and returns its
clients' aggregated updates.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
from typing import Dict, Iterator, List, Sequence

from federated import runtime
from federated.worker import relative_partition

CONNECT_TIMEOUT_S = 5.0
HEARTBEAT_S = 2.0


class WorkerError(ConnectionError):
  """A worker is unreachable, lacks a scenario's data, or failed during a round."""


@dataclasses.dataclass(frozen=True)
class Placement:
  """Which worker (address) serves which scenario."""

  workers: tuple  # addresses host:port
  scenario_worker: Dict[str, int]  # scenario name -> index into workers

  @classmethod
  def parse(cls, workers: Sequence[str], placement: Sequence[str], scenarios: Sequence[str]) -> 'Placement':
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
    return cls(workers, mapping)

  def describe(self) -> str:
    lines = ['placement:']
    for i, w in enumerate(self.workers):
      served = [s for s, j in self.scenario_worker.items() if j == i]
      lines.append(f'  worker {i} {w}: {", ".join(served) if served else "(no scenario)"}')
    return '\n'.join(lines)


# ------------------------------------------------------------------------------------------ the coordinator


def _channel(address: str):
  import grpc  # pylint: disable=g-import-not-at-top
  from tensorflow_federated.python.core.impl.executor_stacks import executor_factory  # pylint: disable=g-import-not-at-top
  return grpc.insecure_channel(address, executor_factory._GRPC_CHANNEL_OPTIONS)  # pylint: disable=protected-access


def check_reachable(placement: Placement, timeout_s: float = CONNECT_TIMEOUT_S) -> None:
  import grpc  # pylint: disable=g-import-not-at-top
  for i, address in enumerate(placement.workers):
    try:
      grpc.channel_ready_future(_channel(address)).result(timeout=timeout_s)
    except grpc.FutureTimeoutError:
      raise WorkerError(f'worker {i} ({address}) is not reachable within {timeout_s:.0f} s: is '
                        f'`pfmsmt worker --port={address.rpartition(":")[2]}` running there?') from None


def unreachable(placement: Placement, timeout_s: float = 2.0) -> List[str]:
  """The workers that do not answer now (to name the one that failed a round)."""
  import grpc  # pylint: disable=g-import-not-at-top
  out = []
  for i, address in enumerate(placement.workers):
    try:
      grpc.channel_ready_future(_channel(address)).result(timeout=timeout_s)
    except grpc.FutureTimeoutError:
      out.append(f'worker {i} ({address})')
  return out


def _worker_context(address: str):
  """An async TFF context whose computations run on the C++ worker at `address`."""
  from tensorflow_federated.python.core.backends.native import compiler  # pylint: disable=g-import-not-at-top
  from tensorflow_federated.python.core.environments.tensorflow_frontend import tensorflow_computation  # pylint: disable=g-import-not-at-top
  from tensorflow_federated.python.core.impl.execution_contexts import async_execution_context  # pylint: disable=g-import-not-at-top
  from tensorflow_federated.python.core.impl.executor_stacks import python_executor_stacks  # pylint: disable=g-import-not-at-top
  from tensorflow_federated.python.core.impl.executors import remote_executor, remote_executor_grpc_stub  # pylint: disable=g-import-not-at-top,g-multiple-import
  from tensorflow_federated.python.core.impl.types import placements  # pylint: disable=g-import-not-at-top
  stub = remote_executor_grpc_stub.RemoteExecutorGrpcStub(_channel(address))

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

  def __init__(self, worker, server, client_parts: set, name: str, address: str):
    self._worker, self._server, self._client_parts = worker, server, client_parts
    self._name, self._address = name, address

  def _answers(self) -> bool:
    import grpc  # pylint: disable=g-import-not-at-top
    try:
      grpc.channel_ready_future(_channel(self._address)).result(timeout=HEARTBEAT_S)
      return True
    except grpc.FutureTimeoutError:
      return False

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
    task = self._in_thread(comp, arg)
    while True:
      done, _ = await asyncio.wait({task}, timeout=HEARTBEAT_S)
      if done:
        return task.result()
      if not await loop.run_in_executor(None, self._answers):
        task.cancel()
        raise WorkerError(f'{self._name} stopped answering')


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
  served = set(runtime.worker_processes())  # workers started by this process itself (benchmarks) stay up
  runtime.install_shutdown_hooks()
  runtime.bind_workers_to_this_process()
  server = tff.backends.native.create_async_local_cpp_execution_context()
  workers = [_worker_context(a) for a in placement.workers]
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
    contexts.append(routed(workers[i], server, client_parts, f'worker {i} ({placement.workers[i]})',
                           placement.workers[i]))
  context = mcec.MergeableCompExecutionContext(async_contexts=contexts, compiler_fn=compile_fn,
                                               num_subrounds=len(scenarios))
  with context_stack_impl.context_stack.install(context):
    try:
      yield
    finally:
      runtime.shutdown_workers(keep=served)


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
