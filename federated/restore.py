"""A run directory read back: its settings, the latest checkpointed state, and each scenario's Keras model.

`pfmsmt evaluate` and `pfmsmt export` start here. A finished run's scenario model is the one selected on the
valid split (metrics.json `selected_round`), saved whole in the scenario's own storage
(`RUN/clients/<scenario>/valid_<r>.model`; `RUN/snapshots/` for the centralized reference). A run that has
not finished uses its latest checkpoint: the global parameters of the server state, the scenario's own row of
each personalized group, and its local parameters (`RUN/clients/<scenario>/round_<r>.state`).
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Dict

import tensorflow as tf

from data_pipelines import spec as spec_lib
from federated import algorithms
from federated import client_work
from federated import run_directory
from federated import trainers
from federated.config import AggregationConfig, ClientConfig, RunSetup, TrainConfig
from pfmsmt_tf import config as model_config


def load_setup(run_dir: str) -> tuple:
  """(RunSetup, settings) from RUN/config.json."""
  path = os.path.join(os.path.abspath(run_dir), 'config.json')
  if not os.path.exists(path):
    raise FileNotFoundError(f'{path} not found: {run_dir} is not a run directory (written by `pfmsmt train`)')
  with open(path) as f:
    settings = json.load(f)
  setup = RunSetup(
      cfg=TrainConfig(**{**settings['train'], 'output': os.path.abspath(run_dir), 'resume': True,
                         'overwrite': False}),
      model_cfg=model_config.ModelConfig(**settings['model']),
      client_cfg=ClientConfig(**settings['client']),
      aggregation_cfg=AggregationConfig(**settings['aggregation']))
  return setup, settings


class FinishedRun:
  """The latest checkpoint of a run; needs TFF's execution context (`runtime.local_runtime()`)."""

  def __init__(self, run_dir: str):
    self.setup, self.settings = load_setup(run_dir)
    if self.setup.cfg.workers:
      raise ValueError(f'{run_dir} was trained on workers {list(self.setup.cfg.workers)}: its scenarios\' local '
                       'parameters stay there (clients/<run>/<scenario>/ under each --state_root), so it cannot be '
                       'evaluated or exported here')
    self.run = run_directory.RunDirectory(run_dir)
    self.data = self.settings['data_dir']
    self.spec = spec_lib.load_spec(self.data)
    self.model_fn = trainers.make_model_fn(self.setup, self.spec)
    self.trainer = trainers.build_trainer(self.setup, self.spec, self.data, self.run, self.model_fn)
    state, version = asyncio.run(run_directory.checkpoint_manager(self.run).load_latest(self.trainer.initialize()))
    if state is None:
      raise ValueError(f'{self.run.root} has no checkpoint yet (not one round finished)')
    self.state, self.round = state, int(version)
    self.selected = None  # scenario -> round of the model selected on valid, once the run has finished
    if os.path.exists(self.run.metrics_json):
      with open(self.run.metrics_json) as f:
        metrics = json.load(f)
      if metrics.get('rounds') == self.round and 'selected_round' in metrics:
        self.selected = {s: int(r) for s, r in metrics['selected_round'].items()}

  @property
  def algorithm(self) -> str:
    return self.setup.cfg.algorithm

  @property
  def federated(self) -> bool:
    return algorithms.get(self.algorithm).federated

  def evaluate(self, data: str | None = None, split: str = 'test') -> Dict[str, Dict[str, dict]]:
    """Every scenario's model on `split` of `data`, which must share the run's encoding."""
    spec = None
    if data is not None:
      spec = spec_lib.load_spec(data)
      problems = spec_lib.encoding_differences(self.spec, self.data, spec, data)
      if problems:
        raise ValueError(f'{data} is not encoded like the data of run {self.run.root} ({self.data}): '
                         f'{"; ".join(problems)}. Prepare it with `pfmsmt prepare --encoding_from={self.data}`.')
    if self.selected:
      return self.trainer.evaluate_selected(self.state, self.selected, data=data, spec=spec, split=split)
    return self.trainer.evaluate(self.state, self.round, data=data, spec=spec, split=split)

  def scenario_model(self, scenario: str) -> tf.keras.Model:
    """The Keras model that scenario's client evaluates, with its weights at the checkpoint."""
    model = self.model_fn()
    s = self.spec.scenario(scenario)
    if self.selected:
      if not self.federated:
        model.set_weights(self.trainer.snapshot_weights(self.selected[scenario]))
        return model
      path = self.run.snapshot(s.directory, self.selected[scenario])
      if not os.path.exists(path):
        raise FileNotFoundError(f'{path} not found: the model scenario {scenario!r} selected at round '
                                f'{self.selected[scenario]} is missing from the run directory')
      client_work.load_state(tf.constant(path), list(model.weights))
      return model
    if not self.federated:
      model.set_weights(self.state)
      return model
    fp = self.trainer.fp
    layout, weights = fp.layout, model.weights
    for j, i in enumerate(layout.global_idx):
      weights[i].assign(self.state['model']['global'][j])
    for key in layout.group_idx:
      for i, value in layout.unflatten_group(key, self.state['model']['personalized'][key][s.index]).items():
        weights[i].assign(value)
    local = list(weights) if fp.algorithm.personal_model else [weights[i] for i in layout.local_idx]
    path = self.run.client_state(s.directory, self.round)
    if local and not os.path.exists(path):
      raise FileNotFoundError(f'{path} not found: the local parameters of scenario {scenario!r} at round '
                              f'{self.round} are missing from the run directory')
    if fp.algorithm.personal_mixing:
      client_work.load_mixed(tf.constant(path), weights, self.model_fn().weights, tf.Variable(0.0))
    else:
      client_work.load_state(tf.constant(path), local)
    return model
