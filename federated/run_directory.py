"""The run directory: where a run keeps its settings, rounds, metrics, checkpoints and client storage.

RUN/config.json    every setting (the algorithm's effective ones), package versions and the data spec
RUN/rounds.csv     one row per round: train loss per task, valid metrics where evaluated, seconds
RUN/metrics.json   test metrics of the selected models (`test`) and of the last round's (`last`), the valid
                   metrics and round each scenario selected (federated/selection.py), the oracle on synthetic data
RUN/aggregation.jsonl   what the aggregator did, one JSON object per round (federated/telemetry.py)
RUN/tb/            TensorBoard scalars
RUN/checkpoints/   server state per round (tff.program.FileProgramStateManager)
RUN/clients/<scenario>/round_<r>.state   each client's local parameters: the client's own storage
RUN/clients/<scenario>/valid_<r>.model   the client's whole model at a valid evaluation, kept while selected
RUN/snapshots/valid_<r>.model.npz        the same for the centralized reference
"""

from __future__ import annotations

import csv
import os
import shutil
from typing import Callable, List

import numpy as np
import tensorflow_federated as tff

from federated.config import TrainConfig
from pfmsmt_tf.template import BYTES_PER_VALUE

KEEP_CLIENT_ROUNDS = 2  # client state files kept per scenario: the last checkpointed round and the next
KEEP_CHECKPOINTS = 2
SNAPSHOT_PREFIX = 'valid_'
STATE_PREFIX = 'round_'
_ROUND_SEED_STRIDE = 100_003  # a prime: the seeds of (run seed, round) pairs do not collide for < 100k rounds


def round_seed(run_seed: int, round_num: int) -> int:
  """The seed of one round's shuffling (every client's and the centralized reference's)."""
  return run_seed * _ROUND_SEED_STRIDE + round_num


def client_state_name(round_num: int) -> str:
  """A client's local parameters at the start of round `round_num` + 1."""
  return f'{STATE_PREFIX}{round_num:05d}.state'


def snapshot_name(round_num: int) -> str:
  """A client's whole model as evaluated on valid at `round_num` (kept while it is the selected one)."""
  return f'{SNAPSHOT_PREFIX}{round_num:05d}.model'


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
    return os.path.join(self.clients, scenario_dir, client_state_name(round_num))

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
      if name.startswith(STATE_PREFIX) and int(name[len(STATE_PREFIX):len(STATE_PREFIX) + 5]) < keep_from:
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


def check_disk_space(root: str, model_fn, num_clients: int, free_bytes: Callable[[str], int] | None = None) -> int:
  """Fails before training when the run directory's disk cannot hold its checkpoints and client states;
  returns the model's number of parameters."""
  params = sum(int(np.prod(w.shape)) for w in model_fn().weights)
  # The kept checkpoints plus one being written (at most every client's copy of the model), and the kept client
  # state files per client, plus room for the CSV, TensorBoard and SavedModel overhead.
  copies = (KEEP_CHECKPOINTS + 1) * (num_clients + 1) + KEEP_CLIENT_ROUNDS * num_clients
  need = BYTES_PER_VALUE * params * copies + 16 * 2**20
  free = (free_bytes or (lambda p: shutil.disk_usage(p).free))(root)
  if free < need:
    raise OSError(f'not enough free disk space for the run directory {root}: about {need / 2**20:.0f} MiB '
                  f'needed, {free / 2**20:.0f} MiB free')
  return params


def checkpoint_manager(run: RunDirectory) -> tff.program.FileProgramStateManager:
  return tff.program.FileProgramStateManager(run.checkpoints, keep_total=KEEP_CHECKPOINTS, keep_first=False)
