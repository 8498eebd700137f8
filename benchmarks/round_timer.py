"""Seconds of a process's rounds, as the benchmarks time them: built once, the first round (tracing) apart."""

from __future__ import annotations

import os
import time
from typing import List

from data_pipelines import spec as spec_lib
from federated import run_directory, trainers


def round_times(setup, rounds: int) -> List[float]:
  """Seconds of each of `rounds` rounds of `setup`'s algorithm in the current TFF context, the first included
  (callers drop it: it traces the computations). The run directory is setup.cfg.output."""
  data = setup.cfg.data
  spec = spec_lib.load_spec(data)
  run = run_directory.RunDirectory(setup.cfg.output)
  os.makedirs(run.root, exist_ok=True)
  trainer = trainers.build_trainer(setup, spec, data, run, trainers.make_model_fn(setup, spec))
  state = trainer.initialize()
  times = []
  for r in range(rounds):
    start = time.perf_counter()
    state, _ = trainer.run_round(state, r)
    times.append(time.perf_counter() - start)
  return times
