"""Seconds of a process's rounds, as the benchmarks time them: built once, the first round (tracing) apart."""

from __future__ import annotations

import os
import time
from typing import Callable, Dict, Hashable, List

from data_pipelines import spec as spec_lib
from federated import run_directory, runtime, trainers


def round_times(setup, rounds: int, faults: List[int] | None = None) -> List[float]:
  """Seconds of each of `rounds` rounds of `setup`'s algorithm in the current TFF context, the first included
  (callers drop it: it traces the computations). The run directory is setup.cfg.output. `faults`, when given,
  gets each round's page faults of this process's TFF workers (minor faults: pages the kernel had to map in,
  a count that, unlike seconds, does not depend on what else the machine runs)."""
  step = round_step(setup)
  times = []
  for _ in range(rounds):
    before = worker_page_faults() if faults is not None else 0
    times.append(step())
    if faults is not None:
      faults.append(worker_page_faults() - before)
  return times


def round_step(setup) -> Callable[[], float]:
  """A function that runs `setup`'s next round and returns its seconds: its trainer built and initialized now."""
  trainer, state = _started(setup)
  done = 0

  def step() -> float:
    nonlocal state, done
    start = time.perf_counter()
    state, _ = trainer.run_round(state, done)
    done += 1
    return time.perf_counter() - start

  return step


def interleaved(steps: Dict[Hashable, Callable[[], float]], repeats: int) -> Dict[Hashable, List[float]]:
  """Each step's seconds, `repeats` times, the steps taken in turn (one of each, then the next of each): a
  machine whose speed drifts over minutes then slows every step alike, not the ones timed last."""
  times = {key: [] for key in steps}
  for _ in range(repeats):
    for key, step in steps.items():
      times[key].append(step())
  return times


def _started(setup):
  """(trainer, its initial state) of `setup`, its run directory made."""
  spec = spec_lib.load_spec(setup.cfg.data)
  run = run_directory.RunDirectory(setup.cfg.output)
  os.makedirs(run.root, exist_ok=True)
  trainer = trainers.build_trainer(setup, spec, setup.cfg.data, run, trainers.make_model_fn(setup, spec))
  return trainer, trainer.initialize()


def worker_page_faults() -> int:
  """Minor page faults so far of this process's TFF workers, together."""
  total = 0
  for pid in runtime.worker_processes():
    try:
      total += int(runtime.stat_fields(pid)[7])  # field 10, minflt
    except OSError:
      continue  # the worker ended while we looked
  return total
