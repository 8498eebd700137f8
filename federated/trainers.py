"""Trainers: what differs between the federated process and the centralized reference, behind one interface.

The round loop (federated/training.py) calls only the hooks of `Trainer`; `build_trainer` picks the
implementation from the algorithm's registry entry (`Algorithm.federated`).
"""

from __future__ import annotations

import abc
import collections
import dataclasses
import json
import os
from typing import Callable, Dict

import numpy as np
import tensorflow as tf

from data_pipelines import metrics as metrics_lib
from data_pipelines import pipeline
from data_pipelines.config import PipelineConfig
from federated import algorithms as algorithms_lib
from federated import process as process_lib
from federated import reporting
from federated import worker as worker_lib
from federated import telemetry
from federated.config import RunSetup
from federated.run_directory import KEEP_CLIENT_ROUNDS, RunDirectory, round_seed, snapshot_name
from pfmsmt_tf import config as model_config
from pfmsmt_tf import models
from pfmsmt_tf import optimization
from pfmsmt_tf import template as template_lib

REJECTED = 'rejected'  # scenarios whose update of the round held NaN or Inf


class Trainer(abc.ABC):
  """The hooks the round loop calls, in this order: `initialize` once (its state is also the structure a
  checkpoint is loaded into); per round `run_round`, then `evaluate(..., snapshot=True)` on valid where due,
  then, after the round's checkpoint is saved, `after_round` and `keep_snapshots`; at the end `evaluate` and
  `evaluate_selected` on test. Results are {scenario: {task: {auc, logloss, examples}}}."""

  @abc.abstractmethod
  def initialize(self):
    """The initial server state."""

  @abc.abstractmethod
  def run_round(self, state, round_num: int):
    """Trains round `round_num` + 1 from `state`: (new state, {loss_<task>: float, REJECTED: [...], ...})."""

  @abc.abstractmethod
  def evaluate(self, state, round_num: int, data: str | None = None, spec=None, split: str = 'test',
               snapshot: bool = False) -> Dict[str, Dict[str, dict]]:
    """Each scenario's model on `split` of `data` (default: the run's data); `spec` is that data's spec, whose
    scenarios are evaluated with the run's models of the same name. `snapshot` keeps each evaluated model
    whole (as round `round_num`'s), for `evaluate_selected`."""

  @abc.abstractmethod
  def evaluate_selected(self, state, selected: Dict[str, int], data: str | None = None, spec=None,
                        split: str = 'test') -> Dict[str, Dict[str, dict]]:
    """Like `evaluate`, each scenario with its model kept at round `selected[scenario]`."""

  @abc.abstractmethod
  def keep_snapshots(self, selected: Dict[str, int]) -> None:
    """Deletes every model snapshot but the selected ones."""

  def after_round(self, round_num: int) -> None:
    """Round `round_num` is checkpointed: client storage older than it may go."""


_BUILT: 'collections.OrderedDict[str, process_lib.FederatedProcess]' = collections.OrderedDict()
_BUILT_KEPT = 4  # processes kept; each holds its traced computations (a few MB)


def _built_process(setup: RunSetup, spec, model_fn) -> process_lib.FederatedProcess:
  """The algorithm's process for these settings, built once per Python process: tracing it costs seconds,
  and evaluating or exporting a run just trained (or a second run with the same settings) needs the same
  computations. Everything the computations depend on is in the key; file paths are their inputs, not part
  of them, and --strict is read by the round loop only."""
  template = template_lib.load_template(setup.cfg.template) if setup.cfg.template else None
  key = json.dumps([setup.cfg.algorithm, template.to_json() if template else None,
                    dataclasses.asdict(setup.seeded_model_cfg()), spec.to_json(), dataclasses.asdict(setup.client_cfg),
                    dataclasses.asdict(dataclasses.replace(setup.aggregation_cfg, strict=False))],
                   sort_keys=True, default=str)
  if key not in _BUILT:
    _BUILT[key] = process_lib.build_algorithm_process(setup.cfg.algorithm, model_fn, spec, setup.client_cfg,
                                                      setup.aggregation_cfg, template=template)
    while len(_BUILT) > _BUILT_KEPT:
      _BUILT.popitem(last=False)
  _BUILT.move_to_end(key)
  return _BUILT[key]


class FederatedTrainer(Trainer):
  """Client inputs are absolute paths in the local runtime, and paths relative to each worker's home folder
  (its data and its local states) with remote workers (federated/worker.py)."""

  def __init__(self, setup: RunSetup, spec, data: str, run: RunDirectory, model_fn):
    self.spec, self.data, self.run, self.cfg = spec, data, run, setup.cfg
    self.remote = bool(setup.cfg.workers)
    self.fp = _built_process(setup, spec, model_fn)
    if not self.remote:
      for s in spec.scenarios:
        os.makedirs(os.path.join(run.clients, s.directory), exist_ok=True)

  def _pattern(self, data, spec, split, scenario):
    if self.remote:
      return worker_lib.relative_partition(spec, split, scenario)
    return pipeline.partition_pattern(data, spec, split, scenario)

  def _state(self, scenario_dir, round_num):
    if self.remote:
      return worker_lib.relative_state(self.run.root, scenario_dir, round_num)
    return self.run.client_state(scenario_dir, round_num)

  def _snapshot(self, scenario_dir, round_num):
    if self.remote:
      return worker_lib.relative_state(self.run.root, scenario_dir, round_num, name=snapshot_name(round_num))
    return self.run.snapshot(scenario_dir, round_num)

  def initialize(self):
    return self.fp.process.initialize()

  def run_round(self, state, round_num):
    inputs = [collections.OrderedDict(
        data=self._pattern(self.data, self.spec, 'train', s.name),
        state_in=self._state(s.directory, round_num),
        state_out=self._state(s.directory, round_num + 1),
        key=np.int32(s.index), seed=np.int32(round_seed(self.cfg.seed, round_num))) for s in self.spec.scenarios]
    state, out = self.fp.process.next(state, inputs)
    metrics = {k: float(v) for k, v in out['train'].items()}
    metrics[REJECTED] = [s.name for s in self.spec.scenarios if out['rejected'][s.index]]
    by_index = [s.name for s in sorted(self.spec.scenarios, key=lambda s: s.index)]
    metrics[telemetry.KEY] = telemetry.from_round_output(out[telemetry.KEY], by_index)
    return state, metrics

  def evaluate(self, state, round_num, data=None, spec=None, split='test', snapshot=False):
    return self._evaluate(state, lambda s: round_num, data, spec, split, whole=False, snapshot=snapshot)

  def evaluate_selected(self, state, selected, data=None, spec=None, split='test'):
    return self._evaluate(state, lambda s: selected[s], data, spec, split, whole=True, snapshot=False)

  def keep_snapshots(self, selected):
    if not self.remote:  # on workers the snapshots stay in each silo's storage (one model per evaluation)
      for s in self.spec.scenarios:
        self.run.prune_snapshots(s.directory, selected[s.name])

  def _evaluate(self, state, round_of, data, spec, split, whole, snapshot):
    data, spec = data or self.data, spec or self.spec
    own = [self.spec.scenario(s.name) for s in spec.scenarios]  # the run's scenario: index and storage
    inputs = []
    for s, o in zip(spec.scenarios, own):
      r = round_of(o.name)
      inputs.append(collections.OrderedDict(
          data=self._pattern(data, spec, split, s.name),
          state=self._snapshot(o.directory, r) if whole else self._state(o.directory, r), key=np.int32(o.index),
          whole=np.bool_(whole), snapshot=self._snapshot(o.directory, r) if snapshot else ''))
    results = {int(r['key']): r for r in self.fp.evaluate(state, inputs)}  # by key: any order comes back
    out = {}
    for s, o in zip(spec.scenarios, own):
      r = results[o.index]
      out[s.name] = {t: reporting.cell(r[t]['auc'], r[t]['logloss'], r[t]['positives'], r['examples'])
                     for t in spec.task_names}
    return out

  def after_round(self, round_num):
    if self.remote:
      return  # the states are on the workers (a few hundred kB per scenario and round)
    for s in self.spec.scenarios:
      self.run.prune_client_states(s.directory, round_num + 1 - KEEP_CLIENT_ROUNDS)


def pooled_rows(datasets, batch_size: int, seed: int) -> tf.data.Dataset:
  """The rows of every dataset, drawn at random one by one, in batches.

  A feature with no columns (data without numerical features: [B, 0]) is set aside before `unbatch` and
  put back as zeros after `batch`: TF 2.14's unbatch of a zero-width tensor crashes the process.
  """
  empty = {k for k, v in datasets[0].element_spec[0].items() if v.shape.rank == 2 and v.shape[1] == 0}
  drop = lambda f, l: ({k: v for k, v in f.items() if k not in empty}, l)
  parts = [d.map(drop).unbatch() if empty else d.unbatch() for d in datasets]
  pooled = tf.data.Dataset.sample_from_datasets(parts, seed=seed, stop_on_empty_dataset=False).batch(batch_size)
  if not empty:
    return pooled

  def restore(f, l):
    rows = tf.shape(next(iter(l.values())))[0]
    return {**f, **{k: tf.zeros([rows, 0], tf.float32) for k in empty}}, l
  return pooled.map(restore)


class CentralizedTrainer(Trainer):
  """One Keras model on the pooled rows of every scenario: a non-private reference, not a federated method."""

  def __init__(self, setup: RunSetup, spec, data: str, run: RunDirectory, model_fn):
    self.spec, self.data, self.cfg, self.client_cfg, self.run = spec, data, setup.cfg, setup.client_cfg, run
    self.model = model_fn()
    optimizer = optimization.EmbeddingScaledAdam(self.model, setup.client_cfg.table_scales(spec.categorical),
                                                 learning_rate=setup.client_cfg.learning_rate)
    self.model.compile(optimizer,
                       loss={t: tf.keras.losses.BinaryCrossentropy() for t in spec.task_names},
                       loss_weights={t: 1.0 / len(spec.task_names) for t in spec.task_names})

  def initialize(self):
    return self.model.get_weights()

  def run_round(self, state, round_num):
    self.model.set_weights(state)
    cfg = PipelineConfig(batch_size=self.client_cfg.batch_size, shuffle_buffer=self.client_cfg.shuffle_buffer,
                         seed=round_seed(self.cfg.seed, round_num))
    parts = [pipeline.make_dataset(self.data, self.spec, 'train', s, cfg) for s in self.spec.scenario_names]
    history = self.model.fit(pooled_rows(parts, cfg.batch_size, cfg.seed), epochs=self.client_cfg.local_epochs,
                             verbose=0)
    losses = {f'loss_{t}': float(history.history[f'{t}_loss'][-1]) for t in self.spec.task_names} \
        if len(self.spec.task_names) > 1 else {f'loss_{self.spec.task_names[0]}': float(history.history['loss'][-1])}
    return self.model.get_weights(), losses

  def _snapshot(self, round_num):
    return os.path.join(self.run.root, 'snapshots', snapshot_name(round_num) + '.npz')

  def evaluate(self, state, round_num, data=None, spec=None, split='test', snapshot=False):
    if snapshot:
      os.makedirs(os.path.dirname(self._snapshot(round_num)), exist_ok=True)
      np.savez(self._snapshot(round_num), *state)
    return self._evaluate(state, data, spec, split, None)

  def evaluate_selected(self, state, selected, data=None, spec=None, split='test'):
    spec = spec or self.spec
    out = {}
    for r in sorted(set(selected.values())):
      out.update(self._evaluate(self.snapshot_weights(r), data, spec, split,
                                [s for s in spec.scenario_names if selected[s] == r]))
    return {s: out[s] for s in spec.scenario_names}

  def snapshot_weights(self, round_num: int) -> list:
    with np.load(self._snapshot(round_num)) as saved:
      return [saved[f'arr_{i}'] for i in range(len(saved.files))]

  def keep_snapshots(self, selected):
    folder = os.path.dirname(self._snapshot(0))
    keep = {os.path.basename(self._snapshot(r)) for r in selected.values()}
    for name in os.listdir(folder) if os.path.isdir(folder) else []:
      if name not in keep:
        os.remove(os.path.join(folder, name))

  def _evaluate(self, state, data, spec, split, scenarios):
    data, spec = data or self.data, spec or self.spec
    self.model.set_weights(state)
    out = {}
    for s in scenarios or spec.scenario_names:
      labels = {t: [] for t in self.spec.task_names}
      probs = {t: [] for t in self.spec.task_names}
      for f, l in pipeline.make_dataset(data, spec, split, s, PipelineConfig(batch_size=4096, shuffle_buffer=0)):
        p = self.model(f, training=False)
        for t in self.spec.task_names:
          labels[t].append(l[t].numpy())
          probs[t].append(p[t].numpy())
      out[s] = {}
      for t in self.spec.task_names:
        y, p = (np.concatenate(labels[t]), np.concatenate(probs[t])) if labels[t] else (np.zeros(0), np.zeros(0))
        out[s][t] = reporting.cell(metrics_lib.exact_auc(y, p) if len(y) else np.nan,
                                   metrics_lib.log_loss(y, p) if len(y) else np.nan, y.sum(), len(y))
    return out



def make_model_fn(setup: RunSetup, spec) -> Callable[[], tf.keras.Model]:
  """Builds the run's scenario model: the algorithm's own (`Algorithm.model`) or the MMoE."""
  model_cfg = setup.seeded_model_cfg()
  inputs = model_config.ModelInputs.from_dataset_spec(spec)
  build = algorithms_lib.get(setup.cfg.algorithm).model or models.build_model
  return lambda: build(inputs, model_cfg)


def build_trainer(setup: RunSetup, spec, data: str, run: RunDirectory, model_fn) -> Trainer:
  if algorithms_lib.get(setup.cfg.algorithm).federated:
    return FederatedTrainer(setup, spec, data, run, model_fn)
  return CentralizedTrainer(setup, spec, data, run, model_fn)
