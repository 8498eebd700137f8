"""`pfmsmt train`: one run of an algorithm, with the run directory contract and checkpoints.

RUN/config.json    every setting (the algorithm's effective ones), package versions and the data spec
RUN/rounds.csv     one row per round: train loss per task, valid metrics where evaluated, seconds
RUN/metrics.json   test metrics of the selected models (`test`) and of the last round's (`last`), the valid
                   metrics and round each scenario selected (federated/selection.py), the oracle on synthetic data
RUN/aggregation.jsonl   what the aggregator did, one JSON object per round (federated/telemetry.py)
RUN/tb/            TensorBoard scalars
RUN/checkpoints/   server state per round (tff.program.FileProgramStateManager)
RUN/clients/<scenario>/round_<r>.state   each client's local parameters: the client's own storage
RUN/clients/<scenario>/valid_<r>.model   the client's whole model at a valid evaluation, kept while selected
"""

from __future__ import annotations

import asyncio
import collections
import csv
import dataclasses
import json
import os
import platform
import shutil
import time
from typing import Callable, Dict, List

import numpy as np
import pandas as pd
import tensorflow as tf
import tensorflow_federated as tff

from data_pipelines import pipeline, prepare
from data_pipelines import spec as spec_lib
from data_pipelines.config import PipelineConfig
from federated import privacy
from federated import process as process_lib
from federated import remote
from federated import runtime
from federated import selection
from federated import telemetry
from federated import algorithms as algorithms_lib
from federated.config import AggregationConfig, ClientConfig, TrainConfig
from pfmsmt_tf import config as model_config
from pfmsmt_tf import metrics as metrics_lib
from pfmsmt_tf import models
from pfmsmt_tf import template as template_lib

CENTRALIZED = 'centralized'
REJECTED = 'rejected'  # scenarios whose update of the round held NaN or Inf
VALID = 'valid'  # the split models are selected on (data_pipelines/valid_split.py)


class NonFiniteUpdateError(ValueError):
  """A client update held NaN or Inf and the run may not go on (--strict, or no client left)."""
KEEP_CLIENT_ROUNDS = 2  # client state files kept per scenario: the last checkpointed round and the next
SNAPSHOT_PREFIX = 'valid_'


def snapshot_name(round_num: int) -> str:
  """A client's whole model as evaluated on valid at `round_num` (kept while it is the selected one)."""
  return f'{SNAPSHOT_PREFIX}{round_num:05d}.model'


@dataclasses.dataclass
class RunSetup:
  cfg: TrainConfig
  model_cfg: model_config.ModelConfig
  client_cfg: ClientConfig
  aggregation_cfg: AggregationConfig

  def seeded_model_cfg(self) -> model_config.ModelConfig:
    """The model is seeded by the run's --seed unless the model config sets its own seed."""
    seed = self.cfg.seed if self.model_cfg.seed is None else self.model_cfg.seed
    return dataclasses.replace(self.model_cfg, seed=seed)


def _versions() -> dict:
  return {'python': platform.python_version(), 'tensorflow': tf.__version__,
          'tensorflow_federated': tff.__version__, 'numpy': np.__version__, 'pandas': pd.__version__}


class RunDirectory:
  """Files of one run; knows how to start fresh or pick up after a kill."""

  def __init__(self, root: str):
    self.root = os.path.abspath(root)
    self.rounds_csv = os.path.join(self.root, 'rounds.csv')
    self.metrics_json = os.path.join(self.root, 'metrics.json')
    self.config_json = os.path.join(self.root, 'config.json')
    self.checkpoints = os.path.join(self.root, 'checkpoints')
    self.clients = os.path.join(self.root, 'clients')
    self.tb = os.path.join(self.root, 'tb')
    self.aggregation_jsonl = os.path.join(self.root, 'aggregation.jsonl')

  def prepare(self, cfg: TrainConfig) -> None:
    """Fails before any training when the directory cannot be used."""
    exists = os.path.isdir(self.root) and os.listdir(self.root)
    if cfg.resume:
      if not os.path.exists(self.config_json):
        raise FileNotFoundError(f'--resume: {self.root} holds no run to resume (no config.json)')
    elif exists:
      if not cfg.overwrite:
        raise FileExistsError(f'{self.root} is not empty; pass --resume to continue that run or --overwrite')
      shutil.rmtree(self.root)
    os.makedirs(self.root, exist_ok=True)
    probe = os.path.join(self.root, '.write-test')
    try:
      with open(probe, 'w') as f:
        f.write('ok')
      os.remove(probe)
    except OSError as e:
      raise PermissionError(f'cannot write into the run directory {self.root}: {e}') from None

  def client_state(self, scenario_dir: str, round_num: int) -> str:
    return os.path.join(self.clients, scenario_dir, f'round_{round_num:05d}.state')

  def snapshot(self, scenario_dir: str, round_num: int) -> str:
    return os.path.join(self.clients, scenario_dir, snapshot_name(round_num))

  def prune_snapshots(self, scenario_dir: str, keep: int) -> None:
    folder = os.path.join(self.clients, scenario_dir)
    for name in os.listdir(folder) if os.path.isdir(folder) else []:
      if name.startswith(SNAPSHOT_PREFIX) and name != snapshot_name(keep):
        os.remove(os.path.join(folder, name))

  def prune_client_states(self, scenario_dir: str, keep_from: int) -> None:
    folder = os.path.join(self.clients, scenario_dir)
    for name in os.listdir(folder):
      if name.startswith('round_') and int(name[6:11]) < keep_from:
        os.remove(os.path.join(folder, name))

  def read_rounds(self, upto: int) -> List[dict]:
    """Rows of completed (checkpointed) rounds; rows written after the last checkpoint are dropped."""
    if not os.path.exists(self.rounds_csv):
      return []
    with open(self.rounds_csv) as f:
      return [r for r in csv.DictReader(f) if int(r['round']) <= upto]

  def write_rounds(self, rows: List[dict]) -> None:
    columns = []
    for r in rows:
      columns += [c for c in r if c not in columns]
    with open(self.rounds_csv, 'w', newline='') as f:
      w = csv.DictWriter(f, fieldnames=columns)
      w.writeheader()
      w.writerows(rows)


def _eval_table(results: Dict[str, Dict[str, dict]], prefix: str = '') -> Dict[str, float]:
  flat = {}
  for scenario, tasks in results.items():
    for task, m in tasks.items():
      flat[f'{prefix}auc/{scenario}/{task}'] = m['auc']
      flat[f'{prefix}logloss/{scenario}/{task}'] = m['logloss']
  aucs = [m['auc'] for tasks in results.values() for m in tasks.values() if not np.isnan(m['auc'])]
  flat[f'{prefix}mean_auc'] = float(np.mean(aucs)) if aucs else float('nan')
  return flat


def mean_auc(results: Dict[str, Dict[str, dict]]) -> float:
  return _eval_table(results)['mean_auc']


def format_results(metrics: dict) -> str:
  """The scenario x task AUC table, beside the oracle when known."""
  test, oracle = metrics['test'], metrics.get('oracle')
  tasks = list(next(iter(test.values())))
  head = f'{"scenario":<24}' + ''.join(f'{"auc:" + t:>14}' for t in tasks)
  if oracle:
    head += ''.join(f'{"oracle:" + t:>14}' for t in tasks)
  title = f'{metrics["algorithm"]} after {metrics["rounds"]} rounds'
  if 'selected_round' in metrics:
    chosen = ', '.join(f'{s} {r}' for s, r in metrics['selected_round'].items())
    title += f'; test AUC of the models selected on valid ({metrics["selection"]}: round {chosen})'
  lines = [title, head]
  for scenario, m in test.items():
    line = f'{scenario[:24]:<24}' + ''.join(f'{m[t]["auc"]:>14.4f}' for t in tasks)
    if oracle:
      line += ''.join(f'{oracle[scenario][t]["auc"]:>14.4f}' for t in tasks)
    lines.append(line)
  tail = f'mean AUC {metrics["mean_auc"]:.4f}'
  if oracle:
    tail += f' (oracle {metrics["oracle_mean_auc"]:.4f})'
  if 'last' in metrics:
    tail += f'; the last round\'s models: {mean_auc(metrics["last"]):.4f}'
  return '\n'.join(lines + [tail])


class _Trainer:
  """The parts that differ between the federated process and the centralized reference."""

  def initialize(self): ...
  def run_round(self, state, round_num: int): ...
  def evaluate(self, state, round_num: int, data: str | None = None, spec=None, split: str = 'test',
               snapshot: bool = False) -> Dict[str, Dict[str, dict]]:
    """Each scenario's model on `split` of `data` (default: the run's data); `spec` is that data's spec, whose
    scenarios are evaluated with the run's models of the same name. `snapshot` keeps each evaluated model
    whole (as round `round_num`'s), for `evaluate_selected`."""
  def evaluate_selected(self, state, selected: Dict[str, int], data: str | None = None, spec=None,
                        split: str = 'test') -> Dict[str, Dict[str, dict]]:
    """Like `evaluate`, each scenario with its model kept at round `selected[scenario]`."""
  def keep_snapshots(self, selected: Dict[str, int]) -> None:
    """Deletes every model snapshot but the selected ones."""
  def after_round(self, round_num: int) -> None: ...


class FederatedTrainer(_Trainer):
  """Client inputs are absolute paths in the local runtime, and paths relative to each worker's home folder
  (its data and its local states) with remote workers (federated/remote.py)."""

  def __init__(self, setup: RunSetup, spec, data: str, run: RunDirectory, model_fn):
    self.spec, self.data, self.run, self.cfg = spec, data, run, setup.cfg
    self.remote = bool(setup.cfg.workers)
    template = template_lib.load_template(setup.cfg.template) if setup.cfg.template else None
    self.fp = process_lib.build_algorithm_process(setup.cfg.algorithm, model_fn, spec, setup.client_cfg,
                                                  setup.aggregation_cfg, template=template)
    if not self.remote:
      for s in spec.scenarios:
        os.makedirs(os.path.join(run.clients, s.directory), exist_ok=True)

  def _pattern(self, data, spec, split, scenario):
    if self.remote:
      return remote.relative_partition(spec, split, scenario)
    return pipeline.partition_pattern(data, spec, split, scenario)

  def _state(self, scenario_dir, round_num):
    if self.remote:
      return remote.relative_state(self.run.root, scenario_dir, round_num)
    return self.run.client_state(scenario_dir, round_num)

  def _snapshot(self, scenario_dir, round_num):
    if self.remote:
      return remote.relative_state(self.run.root, scenario_dir, round_num, name=snapshot_name(round_num))
    return self.run.snapshot(scenario_dir, round_num)

  def initialize(self):
    return self.fp.process.initialize()

  def run_round(self, state, round_num):
    inputs = [collections.OrderedDict(
        data=self._pattern(self.data, self.spec, 'train', s.name),
        state_in=self._state(s.directory, round_num),
        state_out=self._state(s.directory, round_num + 1),
        key=np.int32(s.index), seed=np.int32(self.cfg.seed * 100_003 + round_num)) for s in self.spec.scenarios]
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
      out[s.name] = {t: {'auc': float(r[t]['auc']), 'logloss': float(r[t]['logloss']),
                         'examples': int(r['examples'])} for t in spec.task_names}
    return out

  def after_round(self, round_num):
    if self.remote:
      return  # the states are on the workers (a few hundred kB per scenario and round)
    for s in self.spec.scenarios:
      self.run.prune_client_states(s.directory, round_num + 1 - KEEP_CLIENT_ROUNDS)


class CentralizedTrainer(_Trainer):
  """One Keras model on the pooled rows of every scenario: a non-private reference, not a federated method."""

  def __init__(self, setup: RunSetup, spec, data: str, run: RunDirectory, model_fn):
    self.spec, self.data, self.cfg, self.client_cfg, self.run = spec, data, setup.cfg, setup.client_cfg, run
    self.model = model_fn()
    self.model.compile(tf.keras.optimizers.Adam(setup.client_cfg.learning_rate),
                       loss={t: tf.keras.losses.BinaryCrossentropy() for t in spec.task_names},
                       loss_weights={t: 1.0 / len(spec.task_names) for t in spec.task_names})

  def initialize(self):
    return self.model.get_weights()

  def run_round(self, state, round_num):
    self.model.set_weights(state)
    cfg = PipelineConfig(batch_size=self.client_cfg.batch_size, shuffle_buffer=self.client_cfg.shuffle_buffer,
                         seed=self.cfg.seed * 100_003 + round_num)
    parts = [pipeline.make_dataset(self.data, self.spec, 'train', s, cfg).unbatch()
             for s in self.spec.scenario_names]
    pooled = tf.data.Dataset.sample_from_datasets(parts, seed=cfg.seed, stop_on_empty_dataset=False)
    history = self.model.fit(pooled.batch(cfg.batch_size), epochs=self.client_cfg.local_epochs, verbose=0)
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
        y, p = np.concatenate(labels[t]), np.concatenate(probs[t])
        out[s][t] = {'auc': metrics_lib.exact_auc(y, p), 'logloss': metrics_lib.log_loss(y, p), 'examples': len(y)}
    return out

  def after_round(self, round_num):
    pass


def _check_rejected(rejected: List[str], round_num: int, strict: bool, num_scenarios: int, start_round: int,
                    log) -> None:
  """A rejected update stops the run under --strict or when no client is left; else it is a warning."""
  names = ', '.join(rejected)
  if strict or len(rejected) == num_scenarios:
    why = '--strict' if strict else 'no scenario left to aggregate'
    raise NonFiniteUpdateError(
        f'round {round_num}: the update of scenario(s) {names} holds NaN or Inf; stopped ({why}) before saving '
        f'round {round_num}: the last checkpoint is round {max(round_num - 1, start_round)}')
  log(f'warning: round {round_num}: rejected the update of scenario(s) {names} (NaN or Inf); aggregated the '
      f'other {num_scenarios - len(rejected)}')


def check_disk_space(root: str, model_fn, num_clients: int, free_bytes: Callable[[str], int] | None = None) -> None:
  """Fails before training when the run directory's disk cannot hold its checkpoints and client states."""
  params = sum(int(np.prod(w.shape)) for w in model_fn().weights)
  # Two kept checkpoints plus one being written (at most every client's copy of the model), and two client
  # state files per client; 4 bytes a value, plus room for the CSV, TensorBoard and SavedModel overhead.
  need = 4 * params * (3 * (num_clients + 1) + 2 * num_clients) + 16 * 2**20
  free = (free_bytes or (lambda p: shutil.disk_usage(p).free))(root)
  if free < need:
    raise OSError(f'not enough free disk space for the run directory {root}: about {need / 2**20:.0f} MiB '
                  f'needed, {free / 2**20:.0f} MiB free')


def make_model_fn(setup: RunSetup, spec) -> Callable[[], tf.keras.Model]:
  model_cfg = setup.seeded_model_cfg()
  inputs = model_config.ModelInputs.from_dataset_spec(spec)
  return lambda: models.build_model(inputs, model_cfg)


def build_trainer(setup: RunSetup, spec, data: str, run: RunDirectory, model_fn) -> _Trainer:
  if setup.cfg.algorithm == CENTRALIZED:
    return CentralizedTrainer(setup, spec, data, run, model_fn)
  return FederatedTrainer(setup, spec, data, run, model_fn)


def checkpoint_manager(run: RunDirectory) -> tff.program.FileProgramStateManager:
  return tff.program.FileProgramStateManager(run.checkpoints, keep_total=2, keep_first=False)


def effective_settings(setup: RunSetup) -> dict:
  """The settings a run really uses: the algorithm's overrides applied (a no_conflict run says conflict none)."""
  if setup.cfg.algorithm == CENTRALIZED:
    return {'aggregation': dataclasses.asdict(setup.aggregation_cfg), 'algorithm': {'name': CENTRALIZED}}
  alg = algorithms_lib.get(setup.cfg.algorithm)
  return {'aggregation': dataclasses.asdict(alg.aggregation(setup.aggregation_cfg)),
          'algorithm': dataclasses.asdict(alg)}


def train(setup: RunSetup, log: Callable[[str], None] = print, placement=None) -> dict:
  """Runs (or resumes) a run and returns its metrics.json content."""
  cfg = setup.cfg
  run = RunDirectory(cfg.output)
  run.prepare(cfg)
  data = prepare.resolve_data(cfg.data, run.root, log=lambda *_: None)
  spec = spec_lib.load_spec(data)
  if cfg.select != selection.LAST and VALID not in spec.splits:
    raise ValueError(f'--select={cfg.select} needs a {VALID} split, and {data} has none (prepared with '
                     '--valid_fraction=0, or before it existed): prepare it again, or pass --select=last')
  summary_path = os.path.join(data, spec_lib.SUMMARY_FILE)
  oracle_auc = None
  if os.path.exists(summary_path):
    with open(summary_path) as f:
      oracle_auc = json.load(f).get('oracle_auc')
  model_fn = make_model_fn(setup, spec)
  settings = {'train': dataclasses.asdict(cfg), 'model': dataclasses.asdict(setup.seeded_model_cfg()),
              'client': dataclasses.asdict(setup.client_cfg), **effective_settings(setup),
              'versions': _versions(), 'data_dir': data, 'data_spec': spec.to_json()}
  if cfg.resume:
    with open(run.config_json) as f:
      previous = json.load(f)
    for key in ('model', 'client', 'aggregation'):
      if previous[key] != json.loads(json.dumps(settings[key])):
        raise ValueError(f'--resume with different {key} settings than the run in {run.root}: '
                         f'{previous[key]} != {settings[key]}')
  with open(run.config_json, 'w') as f:
    json.dump(settings, f, indent=1)

  check_disk_space(run.root, model_fn, len(spec.scenarios))
  trainer = build_trainer(setup, spec, data, run, model_fn)
  manager = checkpoint_manager(run)
  dp_on = privacy.enabled(setup.aggregation_cfg) and cfg.algorithm != CENTRALIZED
  state = trainer.initialize()
  start_round = 0
  if cfg.resume:
    loaded, version = asyncio.run(manager.load_latest(state))
    if loaded is not None:
      state, start_round = loaded, version
      log(f'resuming {run.root} after round {start_round}')
  rows = run.read_rounds(start_round)
  aggregation_log = telemetry.RoundLog(run.aggregation_jsonl, start_round)
  writer = tf.summary.create_file_writer(run.tb)
  eval_split = VALID if VALID in spec.splits else 'test'
  started = time.time()
  for r in range(start_round, cfg.rounds):
    t0 = time.time()
    state, train_metrics = _on_workers(lambda: trainer.run_round(state, r), placement, r + 1)
    rejected = train_metrics.pop(REJECTED, [])
    measured = train_metrics.pop(telemetry.KEY, None)
    if rejected:
      _check_rejected(rejected, r + 1, setup.aggregation_cfg.strict, len(spec.scenarios), start_round, log)
    row = {'round': r + 1, **train_metrics, REJECTED: ';'.join(rejected)}
    if dp_on:
      row['dp_epsilon'] = privacy.epsilon(setup.aggregation_cfg, r + 1)
    if (r + 1) % cfg.eval_every == 0 or r + 1 == cfg.rounds:
      evaluated = _on_workers(lambda: trainer.evaluate(state, r + 1, split=eval_split, snapshot=True),
                              placement, r + 1)
      row.update(_eval_table(evaluated, prefix=f'{eval_split}_'))  # test_ only when there is no valid split
    row['seconds'] = round(time.time() - t0, 3)
    rows.append(row)
    run.write_rounds(rows)
    if measured is not None:
      aggregation_log.append(r + 1, measured)
    with writer.as_default(step=r + 1):
      for k, v in row.items():
        if k != 'round' and isinstance(v, float) and not np.isnan(v):
          tf.summary.scalar(k, v)
      if measured is not None:
        telemetry.write_summaries(measured)
    asyncio.run(manager.save(state, r + 1))  # after the CSV: a row past the last checkpoint is recomputed
    trainer.after_round(r + 1)
    # Only now, with round r + 1 saved, may a snapshot that selection no longer needs be deleted.
    trainer.keep_snapshots(selection.selected_rounds(rows, spec.scenario_names, spec.task_names, cfg.select,
                                                     r + 1))
    done = r + 1 - start_round
    eta = (time.time() - started) / done * (cfg.rounds - r - 1)
    shown = ' '.join(f'{k}={v:.4f}' for k, v in train_metrics.items() if k.startswith('loss'))
    if f'{eval_split}_mean_auc' in row:
      shown += f' {eval_split}_mean_auc={row[eval_split + "_mean_auc"]:.4f}'
    if dp_on:
      shown += f' dp_epsilon={row["dp_epsilon"]:.3g}'
    log(f'round {r + 1}/{cfg.rounds} {shown} ({row["seconds"]:.1f}s, eta {eta:.0f}s)')
  writer.flush()
  selected = selection.selected_rounds(rows, spec.scenario_names, spec.task_names, cfg.select, cfg.rounds)
  last = _on_workers(lambda: trainer.evaluate(state, cfg.rounds), placement, cfg.rounds)
  test = last if all(v == cfg.rounds for v in selected.values()) else _on_workers(
      lambda: trainer.evaluate_selected(state, selected), placement, cfg.rounds)
  result = {'algorithm': cfg.algorithm, 'rounds': cfg.rounds, 'selection': cfg.select,
            'selected_round': selected, 'test': test, 'mean_auc': mean_auc(test),
            'valid': selection.valid_metrics(rows, selected, spec.task_names),
            'last': last, 'last_mean_auc': mean_auc(last)}
  if dp_on:
    agg = setup.aggregation_cfg
    result['dp'] = {'noise_multiplier': agg.dp_noise_multiplier, 'clip': agg.dp_clip, 'delta': agg.dp_delta,
                    'rounds': cfg.rounds, 'epsilon': privacy.epsilon(agg, cfg.rounds),
                    'covers': 'global updates, scenario-level; not the personalized groups, counts or losses'}
  if oracle_auc:
    result['oracle'] = {s: {t: {'auc': a} for t, a in tasks.items()} for s, tasks in oracle_auc.items()}
    result['oracle_mean_auc'] = float(np.mean([a for tasks in oracle_auc.values() for a in tasks.values()]))
  with open(run.metrics_json, 'w') as f:
    json.dump(result, f, indent=1)
  return result


def train_in_runtime(setup: RunSetup, log=print) -> dict:
  """`train` in TFF's local runtime (its workers stopped on every exit path), or on remote workers."""
  cfg = setup.cfg
  if not cfg.workers:
    with runtime.local_runtime():
      return train(setup, log)
  if cfg.algorithm == CENTRALIZED:
    raise ValueError('--workers: centralized pools every row in one place; it cannot run on workers')
  if cfg.data == prepare.SYNTHETIC:
    raise ValueError('--workers needs --data=DIR: the folder of spec.json (the workers hold the rows)')
  spec = spec_lib.load_spec(cfg.data)
  placement = remote.Placement.parse(cfg.workers, cfg.placement, spec.scenario_names)
  log(placement.describe())
  with remote.remote_runtime(placement, spec.scenario_names):
    remote.check_data(placement, spec)
    return train(setup, log, placement)


def _on_workers(fn, placement, round_num: int):
  """Runs a round's computation; a failure on remote workers names the worker that stopped answering."""
  if placement is None:
    return fn()
  try:
    return fn()
  except Exception as e:  # pylint: disable=broad-except  (gRPC and TFF raise many kinds)
    down = remote.unreachable(placement)
    who = ', '.join(down) if down else 'a worker'
    raise remote.WorkerError(f'round {round_num}: {who} failed ({type(e).__name__}: {str(e)[:300]}); restart it '
                             'and run the same command with --resume') from e
