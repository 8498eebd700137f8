"""Seconds of a process's rounds, as the benchmarks time them: built once, the first round (tracing) apart."""

from __future__ import annotations

import os
import time
from typing import List

from data_pipelines import spec as spec_lib
from federated import run_directory, runtime, trainers


def round_times(setup, rounds: int, faults: List[int] | None = None) -> List[float]:
  """Seconds of each of `rounds` rounds of `setup`'s algorithm in the current TFF context, the first included
  (callers drop it: it traces the computations). The run directory is setup.cfg.output. `faults`, when given,
  gets each round's page faults of this process's TFF workers (minor faults: pages the kernel had to map in,
  a count that, unlike seconds, does not depend on what else the machine runs)."""
  data = setup.cfg.data
  spec = spec_lib.load_spec(data)
  run = run_directory.RunDirectory(setup.cfg.output)
  os.makedirs(run.root, exist_ok=True)
  trainer = trainers.build_trainer(setup, spec, data, run, trainers.make_model_fn(setup, spec))
  state = trainer.initialize()
  times = []
  for r in range(rounds):
    before = worker_page_faults() if faults is not None else 0
    start = time.perf_counter()
    state, _ = trainer.run_round(state, r)
    times.append(time.perf_counter() - start)
    if faults is not None:
      faults.append(worker_page_faults() - before)
  return times


def worker_page_faults() -> int:
  """Minor page faults so far of this process's TFF workers, together."""
  total = 0
  for pid in runtime.worker_processes():
    try:
      total += int(runtime.stat_fields(pid)[7])  # field 10, minflt
    except OSError:
      continue  # the worker ended while we looked
  return total
