"""The worker side of remote execution: a silo's home folder and TFF's executor service serving it.

`pfmsmt worker` runs TFF's C++ executor service (`worker_binary`, gRPC) in a home folder where `data/` links
to that silo's prepared partitions and `clients/` holds its scenarios' local parameters. Client work reads
the relative paths the coordinator sends it (`relative_partition`, `relative_state`) against that home, so
rows and local parameters never leave the silo. The coordinator side is federated/coordinator.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
from typing import Tuple

from data_pipelines import integrity
from data_pipelines import spec as spec_lib
from federated import runtime, tls
from federated.config import WorkerConfig
from federated.run_directory import client_state_name

HOME_DATA = 'data'  # inside a worker's home: link to its --data_root
HOME_CLIENTS = 'clients'  # inside a worker's home: its scenarios' local state files
_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # where `python -m federated.gate` resolves


def worker_home(data_root: str, state_root: str) -> str:
  """The folder a worker runs in: `data` links to the data root; `clients` holds the local states."""
  data_root, state_root = os.path.abspath(data_root), os.path.abspath(state_root)
  if not os.path.isdir(data_root):
    raise FileNotFoundError(f'--data_root {data_root} is not a folder')
  os.makedirs(os.path.join(state_root, HOME_CLIENTS), exist_ok=True)
  link = os.path.join(state_root, HOME_DATA)
  if os.path.islink(link):
    os.remove(link)
  elif os.path.exists(link):
    raise FileExistsError(f'{link} exists and is not a link; use another --state_root')
  os.symlink(data_root, link)
  return state_root


def _binary() -> str:
  from tensorflow_federated.python.core.impl.executor_stacks import executor_factory  # pylint: disable=g-import-not-at-top
  return os.path.normpath(os.path.join(os.path.dirname(executor_factory.__file__), '..', '..', '..', '..', 'data',
                                       runtime.WORKER_BINARY))


def _limits(max_message_mb: int, max_concurrent_calls: int) -> list:
  return [f'--grpc_max_message_length_megabytes={max_message_mb}',
          f'--max_concurrent_computation_calls={max_concurrent_calls}']


def start_worker(port: int, home: str, threads: int = 0, cpu: int | None = None, max_message_mb: int = 1024,
                 max_concurrent_calls: int = runtime.MAX_CONCURRENT_CALLS) -> subprocess.Popen:
  """TFF's C++ executor service on `port` of every interface, plain gRPC (--insecure, benchmarks), in `home`,
  bound to this process (dies with it); `threads` and `cpu` (pinning, with taskset) model a small silo
  machine in benchmarks."""
  return runtime.BoundPopen(_pin(cpu) + [_binary(), f'--port={port}', *_limits(max_message_mb, max_concurrent_calls)],
                            cwd=home, env=_silo_env(threads))


def _silo_env(threads: int) -> dict:
  env = dict(os.environ)  # BoundPopen adds runtime.EXECUTOR_ENV
  if threads:  # for benchmarks: one silo = a small machine
    env.update(TF_NUM_INTRAOP_THREADS=str(threads), TF_NUM_INTEROP_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
  return env


def _pin(cpu: int | None) -> list:
  return ['taskset', '-c', str(cpu)] if cpu is not None else []


def listen(host: str, port: int) -> socket.socket:
  """The endpoint's listening socket: `host` (every interface, IPv4 and IPv6, when empty) and `port`."""
  if not host and socket.has_dualstack_ipv6():
    return socket.create_server(('', port), family=socket.AF_INET6, dualstack_ipv6=True, reuse_port=False)
  return socket.create_server((host, port))


def start_gated(listener: socket.socket, home: str, cfg: WorkerConfig, stderr=None, threads: int = 0,
                cpu: int | None = None) -> Tuple[subprocess.Popen, dict]:
  """federated/gate.py in its own process, handed `listener`: the executor in a private network behind a
  mutual-TLS endpoint, its log lines to `stderr` (default: this process's). Returns the process and its
  start-up report (executor pid and port, whether it is confined, why not). `threads` and `cpu` as for
  start_worker (the gate's relay shares the pinned core)."""
  cmd = _pin(cpu) + [sys.executable, '-m', 'federated.gate', f'--listen_fd={listener.fileno()}', f'--home={home}',
         f'--binary={_binary()}', f'--max_message_mb={cfg.max_message_mb}',
         f'--max_concurrent_calls={cfg.max_concurrent_calls}', f'--cert={os.path.abspath(cfg.tls_cert)}',
         f'--key={os.path.abspath(cfg.tls_key)}', f'--client_ca={os.path.abspath(cfg.tls_client_ca)}']
  proc = runtime.BoundPopen(cmd, pass_fds=(listener.fileno(),), stdout=subprocess.PIPE, stderr=stderr, text=True,
                            bound=True, cwd=_REPO, env=_silo_env(threads))
  line = proc.stdout.readline()
  if not line:
    raise RuntimeError(f'the worker\'s gate stopped before it served ({proc.wait()}); its error is above')
  return proc, json.loads(line)


def serve(cfg: WorkerConfig, log=print) -> int:
  """`pfmsmt worker`: checks the shards it holds, then serves until interrupted; returns the exit code."""
  for flag in ('tls_cert', 'tls_key', 'tls_client_ca'):
    if getattr(cfg, flag):
      tls.read(getattr(cfg, flag), flag)  # a missing or wrong file is named before anything starts
  data_root = cfg.data_root
  state_root = cfg.state_root or os.path.join(os.path.dirname(os.path.abspath(data_root)), 'state')
  if os.path.exists(os.path.join(data_root, spec_lib.SUMMARY_FILE)):
    checked = integrity.verify(data_root, checksums=cfg.verify_data, present_only=True, log=log)
    log(f'worker: {checked} shards under {data_root} match summary.json'
        + ('' if cfg.verify_data else ' in size (checksums skipped: --verify_data=false)'))
  else:
    log(f'worker: no {spec_lib.SUMMARY_FILE} under {data_root}: its shards cannot be checked')
  home = worker_home(data_root, state_root)
  where = (f'data {os.path.realpath(os.path.join(home, HOME_DATA))}, local states {os.path.join(home, HOME_CLIENTS)}; '
           f'messages up to {cfg.max_message_mb} MB, {cfg.max_concurrent_calls} computations at once (Ctrl-C stops)')
  if cfg.insecure:
    proc = start_worker(cfg.port, home, max_message_mb=cfg.max_message_mb,
                        max_concurrent_calls=cfg.max_concurrent_calls)
    log(f'worker: --insecure: plain gRPC on port {cfg.port} of every interface, no authentication: anyone who '
        'reaches it can run any TensorFlow graph here with this user\'s rights, reading and writing its files')
    log(f'worker: serving TFF computations on port {cfg.port}; {where}')
  else:
    listener = listen(cfg.host, cfg.port)
    proc, report = start_gated(listener, home, cfg)
    listener.close()  # the gate holds its own copy
    if report['confined']:
      executor = (f'the executor in a private network namespace (port {report["executor_port"]} on its loopback '
                  'only, unreachable from any host)')
    else:
      executor = (f'OPEN: the executor listens on port {report["executor_port"]} of every interface, plain gRPC '
                  f'(this machine forbids network namespaces: {report["why"]}); close that port with a firewall')
    log(f'worker: serving TFF computations on port {cfg.port} (mutual TLS: only certificates signed by '
        f'{cfg.tls_client_ca}); {executor}; {where}')
  try:
    return proc.wait()
  except KeyboardInterrupt:
    proc.send_signal(signal.SIGINT)
    return proc.wait()
  finally:
    if proc.poll() is None:
      proc.kill()


# ------------------------------------------------------------------------------------------ paths in a home


def relative_partition(spec, split: str, scenario: str) -> str:
  from data_pipelines import records  # pylint: disable=g-import-not-at-top  (pandas: not for every worker start)
  return os.path.join(HOME_DATA, split, spec.scenario(scenario).directory, records.SHARD_GLOB)


def run_namespace(run_root: str) -> str:
  """A run's folder name on the workers: runs sharing a worker never read each other's local states."""
  root = os.path.abspath(run_root)
  return f'{os.path.basename(root)}-{hashlib.sha1(root.encode()).hexdigest()[:8]}'


def relative_state(run_root: str, scenario_dir: str, round_num: int, name: str | None = None) -> str:
  """A client's state file (or the file `name`) in its worker's storage."""
  return os.path.join(HOME_CLIENTS, run_namespace(run_root), scenario_dir, name or client_state_name(round_num))
