"""A paper-style experiment: prepare a dataset once, then compare algorithms over seeds (the scripts' core).

scripts/run_aliexpress.py, run_tenrec.py and run_census.py are thin absl wrappers over `run_experiment`.
"""

from __future__ import annotations

import dataclasses
import os

from data_pipelines import prepare, spec as spec_lib
from data_pipelines.config import PrepareConfig
from federated import algorithms, comparison, runtime
from federated.config import AggregationConfig, ClientConfig, CompareConfig, RunSetup, TrainConfig
from pfmsmt_tf import config as model_config

# ALGORITHM.md's comparison: the method, its ablations, the federated baselines and the pooled reference.
PAPER_ALGORITHMS = tuple(algorithms.paper_algorithms())


@dataclasses.dataclass(frozen=True)
class Experiment:
  prepare: PrepareConfig
  compare: CompareConfig
  train: TrainConfig
  model: model_config.ModelConfig = model_config.ModelConfig()
  client: ClientConfig = ClientConfig()
  aggregation: AggregationConfig = AggregationConfig()


def run_experiment(exp: Experiment, command: str, log=print) -> str:
  """Prepares (or reuses) the data in OUT/data, runs every algorithm x seed, writes OUT/report.*."""
  results = run_runs(exp, log)
  comparison.write_report(results, exp.compare.output, command, title=f'{exp.prepare.dataset}: comparison')
  return os.path.join(exp.compare.output, 'report.md')


def run_runs(exp: Experiment, log=print, train_missing: bool = True, train_seeds=None,
             on_run=lambda path: None) -> list:
  """Every algorithm x seed of the experiment (finished runs reused; with `train_missing` False only those);
  their metrics. `on_run` as in `comparison.run_all`."""
  out = os.path.abspath(exp.compare.output)
  data = os.path.join(out, 'data')
  if os.path.exists(os.path.join(data, spec_lib.SUMMARY_FILE)):
    log(f'reusing prepared data {data}')
  else:
    summary = prepare.prepare(dataclasses.replace(exp.prepare, output=data, overwrite=True), log=log)
    log(prepare.format_summary(summary))
  base = RunSetup(dataclasses.replace(exp.train, data=data, output=out), exp.model, exp.client,
                           exp.aggregation)
  with runtime.local_runtime():
    return comparison.run_all(exp.compare, base, log=log, train_missing=train_missing, train_seeds=train_seeds,
                              on_run=on_run)
