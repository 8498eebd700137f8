"""TFF execution contexts whose C++ workers never outlive the command that started them.

TFF's local C++ context runs computations in a `worker_binary` child process that is only stopped when
Python garbage-collects its manager. An orphaned worker keeps its parent's stdout open (a `cmd | tee` then
never ends), so every entry point runs inside `local_runtime()`: every exit path reaps the workers, and the
workers it starts are bound to this process by PR_SET_PDEATHSIG, so even a SIGKILL cannot orphan them.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from typing import Iterator, List

from federated.config import MAX_CONCURRENT_CALLS

# For every TFF executor this process starts (the local runtime's, and a silo's through worker.py), where the
# environment has no value of its own: these for a large model (`use_model_size`). A round moves values of hundreds of
# MB (PF-MSMTrec's [K, D] personalized groups) through TFF's protos and TensorFlow's tensors, and on this kind of
# machine a page given back to the kernel costs far more to take again than to reuse. So the executor keeps what a
# round frees for the next: TensorFlow's BFC allocator for tensors; for everything else malloc without blocks mapped
# apart (glibc maps every block above 32 MB apart and unmaps it when freed), without trimming, on transparent huge
# pages (glibc >= 2.35 reads the tunable, older ones ignore it), and in at most 4 arenas (one arena took the
# paper-size round's faults lower still, to about 1,000, but doubled the default model's round, 3.1 s -> 6.5 s: its
# threads then wait for each other's malloc). Measured in benchmarks/results/round_cost.md.
LARGE_MODEL_ENV = {
    'TF_CPU_ALLOCATOR_USE_BFC': 'true',
    'MALLOC_MMAP_MAX_': '0',
    'MALLOC_TRIM_THRESHOLD_': str(2**40),
    'MALLOC_ARENA_MAX': '4',
    'GLIBC_TUNABLES': 'glibc.malloc.hugetlb=1',
}
# A small model's round is many small tensors, and there BFC, the 4 arenas and the huge pages cost time: the
# default model's round over 72,032 examples took 6.1-6.2 s with LARGE_MODEL_ENV (3 runs of 6 rounds) and
# 3.3-3.6 s with this (the paper-size round: 18.0 s with LARGE_MODEL_ENV, 23.0 s with this), on 2026-11-30.
SMALL_MODEL_ENV = {
    'TF_CPU_ALLOCATOR_USE_BFC': 'false',
    'MALLOC_MMAP_MAX_': '0',
    'MALLOC_TRIM_THRESHOLD_': str(2**40),
}
# Models of at least this many parameters get LARGE_MODEL_ENV: between the two measured sizes (the default
# model, 80k parameters per scenario; paper_config(), about 10M), with no measurement between them.
LARGE_MODEL_PARAMS = 1_000_000
EXECUTOR_ENV = dict(LARGE_MODEL_ENV)  # what executors started from now on get; `use_model_size` switches it
# Most computations an executor runs at once (config.MAX_CONCURRENT_CALLS in the local runtime; a silo's is its
# --max_concurrent_calls), and its TensorFlow inter-op threads: INTEROP_PER_CALL per call. Why: each client's loop ends by
# destroying its tf.data iterator (federated/client_work.py `fold_batches`), and that destructor can wait (gdb:
# threads stopped in ~ProcessFunctionLibraryRuntime) for what, by these measurements, needs a free inter-op
# thread. 16 clients on this 2-core machine hung within 5 rounds with unbounded calls on its 2 default threads,
# and with at most 8 calls on 2 threads; 2 calls on 2 threads, 2 on 4, 8 on 16 and unbounded on 64 ran 25
# rounds each, and these defaults 50 (2026-12-01).
INTEROP_PER_CALL = 2
_CALLS_FLAG = '--max_concurrent_computation_calls='


def use_model_size(params: int) -> str:
  """Gives the executors started from now on the memory settings for a model of `params` parameters (those
  already running keep theirs); returns 'large' or 'small'."""
  size = 'large' if params >= LARGE_MODEL_PARAMS else 'small'
  EXECUTOR_ENV.clear()
  EXECUTOR_ENV.update(LARGE_MODEL_ENV if size == 'large' else SMALL_MODEL_ENV)
  return size


_FAILED = re.compile(r'Failed to run computation: (.*?)(?:\n|\s\[\[|"|$)')


class ComputationError(RuntimeError):
  """A TFF computation failed inside its C++ runtime; the message is its cause in one line, not the dump."""


def computation_cause(error: BaseException) -> str | None:
  """The cause TFF's runtime reports ("truncated record at 4968 ..."), or None when `error` is not a failed
  computation."""
  match = _FAILED.search(str(error))
  return match.group(1).strip().rstrip("'") if match else None


WORKER_BINARY = 'worker_binary'


def stat_fields(pid) -> List[str]:
  """/proc/<pid>/stat's fields after the command name (state, ppid, ...; man 5 proc numbers them from 3).
  Raises OSError when the process is gone."""
  with open(f'/proc/{pid}/stat') as f:
    stat = f.read()
  return stat[stat.rindex(')') + 2:].split()


def worker_processes(parent: int | None = None) -> List[int]:
  """PIDs of running TFF workers that are children of `parent` (default: this process); zombies excluded."""
  parent = os.getpid() if parent is None else parent
  found = []
  for entry in os.listdir('/proc'):
    if not entry.isdigit():
      continue
    try:
      state, ppid = stat_fields(entry)[:2]
      if int(ppid) != parent or state == 'Z':
        continue
      with open(f'/proc/{entry}/cmdline', 'rb') as f:
        cmdline = f.read().split(b'\0')[0].decode(errors='replace')
    except (OSError, ValueError, IndexError):
      continue  # the process ended while we looked
    if os.path.basename(cmdline) == WORKER_BINARY:
      found.append(int(entry))
  return found


def shutdown_workers(timeout_s: float = 5.0, keep=()) -> int:
  """Stops this process's TFF workers: SIGINT, then SIGKILL after `timeout_s`. Returns how many were found.

  A stopped worker is left for its `Popen` owner in TFF to reap: as a zombie it holds no file descriptors
  (pipes close), and TFF's own clean-up can still signal and wait for it without an error.
  """
  pids = [p for p in worker_processes() if p not in keep]  # keep: workers this process serves (benchmarks)
  for pid in pids:
    _signal(pid, signal.SIGINT)
  deadline = time.monotonic() + timeout_s
  alive = list(pids)
  while alive and time.monotonic() < deadline:
    alive = [p for p in alive if _running(p)]
    if alive:
      time.sleep(0.05)
  for pid in alive:
    _signal(pid, signal.SIGKILL)
  while any(_running(p) for p in alive):
    time.sleep(0.01)
  return len(pids)


def _signal(pid: int, sig: int) -> None:
  try:
    os.kill(pid, sig)
  except ProcessLookupError:
    pass


def _running(pid: int) -> bool:
  """True while `pid` exists and is not a zombie."""
  try:
    return stat_fields(pid)[0] != 'Z'
  except OSError:
    return False


_hooks_installed = False
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
  """Runs in the forked worker before exec: the kernel sends it SIGTERM when its parent dies, even by SIGKILL."""
  import ctypes  # pylint: disable=g-import-not-at-top
  ctypes.CDLL('libc.so.6', use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


_SETPRIV = shutil.which('setpriv')  # util-linux: sets the parent-death signal, then execs the command


class BoundPopen(subprocess.Popen):
  """A Popen whose TFF workers die with this process and run with EXECUTOR_ENV (TFF also uses Popen as a type,
  so a subclass).

  The death signal is set by `setpriv --pdeathsig` where it exists, not by a `preexec_fn`: a `preexec_fn` makes
  Python fork() the whole process, with gRPC's threads and open TLS channels, instead of vfork() and exec, and
  a worker started that way during a remote run (the coordinator's own runtime starts one per new cardinality)
  corrupted the TLS streams to every worker (SSLV3_ALERT_BAD_RECORD_MAC on both channels, 70 ms after gRPC
  logged the fork), and a worker's gate started that way aborted in gRPC's fork handler before it could exec
  (`next_worker->state == KICKED`).
  """

  def __init__(self, args, *, bound: bool = False, **kwargs):
    """`bound`: this child dies with this process too (always so for TFF's workers)."""
    args = list(args)
    worker = any(os.path.basename(str(a)) == WORKER_BINARY for a in args[:4])  # also behind taskset
    if worker:
      kwargs['env'] = executor_env(os.environ if kwargs.get('env') is None else kwargs['env'], args)
    if worker or bound:
      if _SETPRIV and 'preexec_fn' not in kwargs:
        args = [_SETPRIV, '--pdeathsig', 'TERM', '--'] + args
      else:
        kwargs.setdefault('preexec_fn', die_with_parent)
    super().__init__(args, **kwargs)


class _WorkerPopen:
  """Stands in for `subprocess` inside TFF's executor factory."""

  Popen = BoundPopen

  def __getattr__(self, name):
    return getattr(subprocess, name)


def bind_workers_to_this_process() -> None:
  from tensorflow_federated.python.core.impl.executor_stacks import executor_factory  # pylint: disable=g-import-not-at-top
  if sys.platform.startswith('linux') and not isinstance(executor_factory.subprocess, _WorkerPopen):
    executor_factory.subprocess = _WorkerPopen()


def _at_exit() -> None:
  """Stops the workers, then lets go of TFF's context while the interpreter is whole: its service manager's
  `__del__` needs the `subprocess` module, which a later collection, during the interpreter's teardown, finds
  gone (an "Exception ignored" traceback on every exit, errors included)."""
  shutdown_workers()
  if 'tensorflow_federated' in sys.modules:
    from tensorflow_federated.python.core.impl.context_stack import set_default_context  # pylint: disable=g-import-not-at-top
    set_default_context.set_no_default_context()


def install_shutdown_hooks() -> None:
  """Reaps workers at interpreter exit and on SIGTERM/SIGHUP (Ctrl-C raises KeyboardInterrupt -> atexit)."""
  global _hooks_installed
  if _hooks_installed:
    return
  _hooks_installed = True
  atexit.register(_at_exit)
  for sig in (signal.SIGTERM, signal.SIGHUP):
    previous = signal.getsignal(sig)

    def handler(signum, frame, previous=previous):
      shutdown_workers()
      if callable(previous):
        previous(signum, frame)
      else:
        raise SystemExit(128 + signum)

    try:
      signal.signal(sig, handler)
    except ValueError:
      pass  # not the main thread: atexit still covers normal exits


def executor_env(env, args=()) -> dict:
  """`env` with EXECUTOR_ENV's settings where it has none of its own, and inter-op threads for the calls the
  executor's `args` allow at once (MAX_CONCURRENT_CALLS where they set no bound)."""
  calls = [int(a[len(_CALLS_FLAG):]) for a in args if str(a).startswith(_CALLS_FLAG)]
  calls = calls[-1] if calls and calls[-1] > 0 else MAX_CONCURRENT_CALLS
  return {**EXECUTOR_ENV, 'TF_NUM_INTEROP_THREADS': str(INTEROP_PER_CALL * calls), **env}


def configure_executors() -> None:
  """Before a context starts its executors (BoundPopen gives them EXECUTOR_ENV): the faster serializer of the
  values this process sends them (federated/serialization.py)."""
  from federated import serialization  # pylint: disable=g-import-not-at-top  (imports TFF)
  serialization.install()


@contextlib.contextmanager
def local_runtime(num_clients: int = 0) -> Iterator[None]:
  """TFF's local C++ runtime for the duration of the block; its workers are stopped on every exit path."""
  import tensorflow_federated as tff  # pylint: disable=g-import-not-at-top
  install_shutdown_hooks()
  bind_workers_to_this_process()
  configure_executors()
  tff.backends.native.set_sync_local_cpp_execution_context(
      default_num_clients=num_clients, max_concurrent_computation_calls=MAX_CONCURRENT_CALLS)
  try:
    yield
  finally:
    shutdown_workers()
