"""Workers as `pfmsmt worker` runs them (gate, private network, mutual TLS), for the benchmarks that time them."""

from __future__ import annotations

import os

from federated import coordinator, tls, worker
from federated.config import WorkerConfig


def certificates(work: str):
  """A CA and certificates for the coordinator, silo0 and silo1 under WORK/certs: (folder, the coordinator's
  credentials)."""
  certs = os.path.join(work, 'certs')
  tls.init(certs, ['coordinator', 'silo0', 'silo1'])
  return certs, coordinator.Credentials.from_files(f'{certs}/ca.pem', f'{certs}/coordinator.pem',
                                                   f'{certs}/coordinator.key')


def start(data: str, work: str, ports, certs: str, threads: int, stderr=None):
  """Worker i behind its gate on ports[i], pinned to core i; [(process, start-up report)]. A failed start stops
  the ones already started."""
  started = []
  try:
    for i, port in enumerate(ports):
      cfg = WorkerConfig(data_root=data, tls_cert=f'{certs}/silo{i}.pem', tls_key=f'{certs}/silo{i}.key',
                         tls_client_ca=f'{certs}/ca.pem')
      listener = worker.listen('', port)
      started.append(worker.start_gated(listener, worker.worker_home(data, os.path.join(work, f'gated{i}')), cfg,
                                        stderr=stderr, threads=threads, cpu=i % os.cpu_count()))
      listener.close()
  except BaseException:
    stop(started)
    raise
  return started


def stop(started) -> None:
  for proc, _ in started:
    proc.kill()
    proc.wait()
