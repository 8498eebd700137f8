"""The Python API: what the CLI does, as keyword-argument functions with the CLI's flag names and defaults.

    from federated import api
    data = api.prepare(dataset='census', input='census-income.test.gz', output='runs/census/data')
    run = api.train(data=data.output, algorithm='pfmsmtrec', rounds=10, output='runs/census/pfmsmtrec')
    print(run.mean_auc, run.run_dir)
    report = api.compare(data=data.output, algorithms=['pfmsmtrec', 'fedavg'], seeds=5, output='runs/cmp')

Each keyword is the flag of the same name (`pfmsmt SUBCOMMAND --help`) and lands in the config dataclass that
owns it; an unknown one is an error naming the valid ones. Functions that run TFF start its runtime and
stop its workers themselves, on every exit path.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Dict, List, Optional, Sequence

from data_pipelines.config import PrepareConfig
from federated.config import AggregationConfig, ClientConfig, CompareConfig, RunSetup, TrainConfig, TuneConfig
from pfmsmt_tf.config import ModelConfig


def _split(kwargs: dict, classes: Sequence[type], command: str) -> List[dict]:
  """Each keyword to the config class that has a field of its name (the first, as the CLI's flags do)."""
  out = [{} for _ in classes]
  valid = sorted({f.name for cls in classes for f in dataclasses.fields(cls)})
  for key, value in kwargs.items():
    for j, cls in enumerate(classes):
      if key in {f.name for f in dataclasses.fields(cls)}:
        out[j][key] = tuple(value) if isinstance(value, list) else value
        break
    else:
      raise TypeError(f'{command}() got an unknown keyword {key!r}; valid: {", ".join(valid)}')
  return out


def _run_setup(kwargs: dict, command: str) -> RunSetup:
  """`seed` is TrainConfig's (the run's seed seeds the model), as in `pfmsmt train`."""
  train_kw, client_kw, agg_kw, model_kw = _split(kwargs, (TrainConfig, ClientConfig, AggregationConfig, ModelConfig),
                                                 command)
  return RunSetup(TrainConfig(**train_kw), ModelConfig(**model_kw), ClientConfig(**client_kw),
                  AggregationConfig(**agg_kw))


@dataclasses.dataclass
class Prepared:
  output: str  # the prepared data folder (spec.json, summary.json, partitions)
  summary: dict  # summary.json: rows read, kept and dropped per split and scenario


@dataclasses.dataclass
class Run:
  run_dir: str
  metrics: dict  # metrics.json

  @property
  def mean_auc(self) -> float:
    return self.metrics['mean_auc']


@dataclasses.dataclass
class Comparison:
  output: str
  results: List[dict]  # every run's metrics.json, with its algorithm and seed
  report: str  # path of report.md (report.csv and report_paired.csv beside it)


@dataclasses.dataclass
class Evaluation:
  run_dir: str
  metrics: dict  # as `pfmsmt evaluate --output` writes it

  @property
  def mean_auc(self) -> float:
    return self.metrics['mean_auc']


def prepare(**kwargs) -> Prepared:
  """`pfmsmt prepare`: source files (or the synthetic generator) -> per-scenario partitions of fixed-width rows.

  Keywords: the fields of data_pipelines.config.PrepareConfig (`output` required).
  """
  from data_pipelines import prepare as prepare_lib  # pylint: disable=g-import-not-at-top
  (cfg_kw,) = _split(kwargs, (PrepareConfig,), 'prepare')
  cfg = PrepareConfig(**cfg_kw)
  summary = prepare_lib.prepare(cfg, log=lambda *_: None)
  return Prepared(os.path.abspath(cfg.output), summary)


def train(log=print, **kwargs) -> Run:
  """`pfmsmt train`: one run (or its resumption) into `output`.

  Keywords: the fields of TrainConfig, ClientConfig, AggregationConfig and ModelConfig (but its seed: the
  run's `seed` seeds the model), as the flags of `pfmsmt train`; `output` is required.
  """
  from federated import training  # pylint: disable=g-import-not-at-top
  setup = _run_setup(kwargs, 'train')
  metrics = training.train_in_runtime(setup, log=log)
  return Run(os.path.abspath(setup.cfg.output), metrics)


def tune(log=print, budget: int = TuneConfig().budget, prune: bool = TuneConfig().prune,
         trial_seeds: int = TuneConfig().trial_seeds, **kwargs) -> dict:
  """`pfmsmt tune`: `budget` trials of `algorithm` at settings Optuna proposes, each `trial_seeds` runs scored
  by their mean valid AUC, into `output` (with `prune`, unpromising ones stopped early); returns the best trial
  ({'params', 'score', 'run'}) and writes OUTPUT/best.flags and OUTPUT/tuning.json.

  Keywords: those of `train` (the base settings; the searched ones are drawn per trial).
  """
  from federated import runtime, training, tuning  # pylint: disable=g-import-not-at-top
  setup = _run_setup({**kwargs, 'overwrite': True}, 'tune')
  with runtime.local_runtime():
    search = TuneConfig(budget, prune=prune, trial_seeds=trial_seeds)
    return tuning.tune(setup, search, setup.cfg.output, training.train_trial, log=log)


def compare(log=print, **kwargs) -> Comparison:
  """`pfmsmt compare`: every algorithm x seed under the same settings, then report.md/.csv and plots.

  Keywords: the fields of CompareConfig (`algorithms`, `seeds`, `output`, `reference`) and those of `train`
  but algorithm, output, seed, resume and overwrite (each run's own).
  """
  from federated import comparison, runtime  # pylint: disable=g-import-not-at-top
  compare_kw, rest = {}, {}
  for key, value in kwargs.items():
    (compare_kw if key in {f.name for f in dataclasses.fields(CompareConfig)} else rest)[key] = value
  cfg = CompareConfig(**_split(compare_kw, (CompareConfig,), 'compare')[0])
  own = {'algorithm', 'seed', 'resume', 'overwrite'} & set(rest)  # each run's own (output is the comparison's)
  if own:
    raise TypeError(f'compare() sets {sorted(own)} per run; pass algorithms=[...] and seeds=N')
  base = _run_setup({**rest, 'output': cfg.output}, 'compare')
  with runtime.local_runtime():
    results = comparison.run_all(cfg, base, log=log)
  command = 'federated.api.compare(' + ', '.join(f'{k}={v!r}' for k, v in kwargs.items()) + ')'
  comparison.write_report(results, cfg.output, command, reference=cfg.reference or None)
  return Comparison(os.path.abspath(cfg.output), results, os.path.join(os.path.abspath(cfg.output), 'report.md'))


def evaluate(run: str, data: Optional[str] = None, split: str = 'test', verify_data: bool = True) -> Evaluation:
  """`pfmsmt evaluate`: a run's selected models (its latest checkpoint if unfinished) on `split` of `data`
  (default: the run's own data; other data must share its encoding), its shards checked first."""
  from data_pipelines import integrity  # pylint: disable=g-import-not-at-top
  from federated import reporting, restore, runtime  # pylint: disable=g-import-not-at-top
  with runtime.local_runtime():
    finished = restore.FinishedRun(run)
    integrity.verify(data or finished.data, checksums=verify_data, splits=[split])
    test = finished.evaluate(data, split)
  metrics = {'algorithm': finished.algorithm, 'rounds': finished.round, 'run': finished.run.root,
             **({'selected_round': finished.selected, 'selection': finished.setup.cfg.select}
                if finished.selected else {}),
             'data': data or finished.data, 'split': split, 'test': test, 'mean_auc': reporting.mean_auc(test)}
  return Evaluation(finished.run.root, metrics)


def export(run: str, output: str, scenarios: Sequence[str] = (), version: int = 1,
           overwrite: bool = False) -> Dict[str, str]:
  """`pfmsmt export`: one SavedModel per scenario for TF Serving (OUTPUT/<scenario>/<version>/); returns
  {scenario: path}."""
  from federated import restore, runtime  # pylint: disable=g-import-not-at-top
  from pfmsmt_tf import serving  # pylint: disable=g-import-not-at-top
  with runtime.local_runtime():
    finished = restore.FinishedRun(run)
    targets = {}
    for name in scenarios or finished.spec.scenario_names:
      path = os.path.join(os.path.abspath(output), finished.spec.scenario(name).directory, str(version))
      if os.path.exists(path) and not overwrite:
        raise FileExistsError(f'{path} exists; pass overwrite=True (--overwrite) or another version')
      targets[name] = path
    for name, path in targets.items():
      serving.export_saved_model(
          finished.scenario_model(name), finished.spec, finished.data, name, path,
          provenance={'run': finished.run.root, 'algorithm': finished.algorithm, 'round': finished.round})
  return targets
