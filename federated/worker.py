"""The worker side of remote execution: a silo's home folder and TFF's executor service serving it.

`pfmsmt worker` runs TFF's C++ executor service (`worker_binary`, gRPC) in a home folder where `data/` links
to that silo's prepared partitions and `clients/` holds its scenarios' local parameters. Client work reads
the relative paths the coordinator sends it (`relative_partition`, `relative_state`) against that home, so
rows and local parameters never leave the silo. The coordinator side is federated/coordinator.py.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess

from data_pipelines import integrity
from data_pipelines import spec as spec_lib
from federated import runtime
from federated.run_directory import client_state_name

HOME_DATA = 'data'  # inside a worker's home: link to its --data_root
HOME_CLIENTS = 'clients'  # inside a worker's home: its scenarios' local state files


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


def start_worker(port: int, home: str, threads: int = 0, cpu: int | None = None) -> subprocess.Popen:
  """TFF's C++ executor service on `port`, in `home`, bound to this process (dies with it); `threads` and
  `cpu` (pinning, with taskset) model a small silo machine in benchmarks."""
  from tensorflow_federated.python.core.impl.executor_stacks import executor_factory  # pylint: disable=g-import-not-at-top
  binary = os.path.join(os.path.dirname(executor_factory.__file__), '..', '..', '..', '..', 'data',
                        runtime.WORKER_BINARY)
  env = dict(os.environ)
  if threads:  # for benchmarks: one silo = a small machine
    env.update(TF_NUM_INTRAOP_THREADS=str(threads), TF_NUM_INTEROP_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
  pin = ['taskset', '-c', str(cpu)] if cpu is not None else []
  return runtime.BoundPopen(pin + [os.path.normpath(binary), f'--port={port}'], cwd=home, env=env)


def serve(port: int, data_root: str, state_root: str, log=print, verify_data: bool = True) -> int:
  """`pfmsmt worker`: checks the shards it holds, then serves until interrupted; returns the exit code."""
  if os.path.exists(os.path.join(data_root, spec_lib.SUMMARY_FILE)):
    checked = integrity.verify(data_root, checksums=verify_data, present_only=True, log=log)
    log(f'worker: {checked} shards under {data_root} match summary.json'
        + ('' if verify_data else ' in size (checksums skipped: --verify_data=false)'))
  else:
    log(f'worker: no {spec_lib.SUMMARY_FILE} under {data_root}: its shards cannot be checked')
  home = worker_home(data_root, state_root)
  proc = start_worker(port, home)
  log(f'worker: serving TFF computations on port {port}; data {os.path.realpath(os.path.join(home, HOME_DATA))}, '
      f'local states {os.path.join(home, HOME_CLIENTS)} (Ctrl-C stops)')
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
  return os.path.join(HOME_DATA, split, spec.scenario(scenario).directory, '*.tfrecord')


def run_namespace(run_root: str) -> str:
  """A run's folder name on the workers: runs sharing a worker never read each other's local states."""
  root = os.path.abspath(run_root)
  return f'{os.path.basename(root)}-{hashlib.sha1(root.encode()).hexdigest()[:8]}'


def relative_state(run_root: str, scenario_dir: str, round_num: int, name: str | None = None) -> str:
  """A client's state file (or the file `name`) in its worker's storage."""
  return os.path.join(HOME_CLIENTS, run_namespace(run_root), scenario_dir, name or client_state_name(round_num))
