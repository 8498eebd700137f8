"""`pfmsmt train`: the round loop of one run, with checkpoints, model selection on valid and its reports.

The run directory's files are described in federated/run_directory.py; what differs between the federated
process and the centralized reference is behind `trainers.Trainer`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import platform
import time
from typing import Callable, List

import numpy as np
import pandas as pd
import tensorflow as tf
import tensorflow_federated as tff

from data_pipelines import integrity, prepare
from data_pipelines import spec as spec_lib
from federated import algorithms as algorithms_lib
from federated import privacy
from federated import coordinator
from federated import runtime
from federated import selection
from federated import telemetry
from federated import trainers as trainers_lib
from federated.config import RunSetup
from federated.reporting import eval_table, mean_auc
from federated.run_directory import RunDirectory, check_disk_space, checkpoint_manager

VALID = 'valid'  # the split models are selected on (data_pipelines/valid_split.py)
REJECTED = trainers_lib.REJECTED


class NonFiniteUpdateError(ValueError):
  """A client update held NaN or Inf and the run may not go on (--strict, or no client left)."""


def _versions() -> dict:
  return {'python': platform.python_version(), 'tensorflow': tf.__version__,
          'tensorflow_federated': tff.__version__, 'numpy': np.__version__, 'pandas': pd.__version__}


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


def effective_settings(setup: RunSetup) -> dict:
  """The settings a run really uses: the algorithm's overrides applied (a no_conflict run says conflict none)."""
  alg = algorithms_lib.get(setup.cfg.algorithm)
  aggregation = alg.aggregation(setup.aggregation_cfg) if alg.federated else setup.aggregation_cfg
  return {'aggregation': dataclasses.asdict(aggregation), 'algorithm': alg.to_json()}


def train(setup: RunSetup, log: Callable[[str], None] = print, placement=None,
          on_round: Callable[[dict], None] = lambda row: None, test: bool = True) -> dict:
  """Runs (or resumes) one run in the current TFF execution context (see `train_in_runtime`).

  Args:
    setup: the run's settings; `setup.cfg.output` is the run directory.
    log: receives one line per round and the notices.
    placement: the scenarios' workers (federated/coordinator.py), or None for the local runtime.
    on_round: gets each round's rounds.csv row once the round is saved; an exception it raises stops the run
      there, as a kill would (`pfmsmt tune` stops unpromising trials so).
    test: evaluate the selected and the last models on test at the end (see `train_trial`).

  Returns:
    The content of RUN/metrics.json: `test` (the models selected on valid), `mean_auc`, `selected_round`,
    `valid`, `last` (the last round's models), `last_mean_auc`, and `oracle`/`dp` where they apply; without
    `test`, no `test`, `mean_auc`, `last` or `last_mean_auc`.
  """
  cfg = setup.cfg
  run = RunDirectory(cfg.output)
  run.prepare(cfg)
  data = prepare.resolve_data(cfg.data, run.root, log=lambda *_: None)
  spec = spec_lib.load_spec(data)
  if placement is None:  # on workers the shards are theirs: each checks its own at start-up
    integrity.verify(data, checksums=cfg.verify_data, log=log)
  if cfg.select != selection.LAST and VALID not in spec.splits:
    raise ValueError(f'--select={cfg.select} needs a {VALID} split, and {data} has none (prepared with '
                     '--valid_fraction=0, or before it existed): prepare it again, or pass --select=last')
  summary_path = os.path.join(data, spec_lib.SUMMARY_FILE)
  oracle_auc = None
  if os.path.exists(summary_path):
    with open(summary_path) as f:
      oracle_auc = json.load(f).get('oracle_auc')
  model_fn = trainers_lib.make_model_fn(setup, spec)
  settings = {'train': dataclasses.asdict(cfg), 'model': dataclasses.asdict(setup.seeded_model_cfg()),
              'client': dataclasses.asdict(setup.client_cfg), **effective_settings(setup),
              'versions': _versions(), 'data_dir': data, 'data_spec': spec.to_json()}
  if cfg.resume:
    with open(run.config_json) as f:
      previous = json.load(f)
    for key in ('model', 'client', 'aggregation'):
      now = json.loads(json.dumps(settings[key]))
      if previous[key] != now:
        # A setting the run's version did not record (added since) counts as different: its default may not
        # be what that version did.
        differ = sorted(k for k in set(previous[key]) | set(now) if previous[key].get(k, '(unset)') != now.get(k))
        raise ValueError(f'--resume with different {key} settings than the run in {run.root}: ' + ', '.join(
            f'{k} was {previous[key].get(k, "(not recorded)")}, now {now.get(k, "(unset)")}' for k in differ))
  with open(run.config_json, 'w') as f:
    json.dump(settings, f, indent=1)

  params = check_disk_space(run.root, model_fn, len(spec.scenarios))
  if placement is None:  # before the first computation starts the local executors (a silo's keep the worker's)
    runtime.use_model_size(params)
  trainer = trainers_lib.build_trainer(setup, spec, data, run, model_fn)
  manager = checkpoint_manager(run)
  dp_on = privacy.enabled(setup.aggregation_cfg) and algorithms_lib.get(cfg.algorithm).federated
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
    row = {'round': r + 1, **train_metrics, REJECTED: ';'.join(rejected),
           'train_seconds': round(time.time() - t0, 3)}  # the round without its evaluation
    if dp_on:
      row['dp_epsilon'] = privacy.epsilon(setup.aggregation_cfg, r + 1)
    if (r + 1) % cfg.eval_every == 0 or r + 1 == cfg.rounds:
      evaluated = _on_workers(lambda: trainer.evaluate(state, r + 1, split=eval_split, snapshot=True),
                              placement, r + 1)
      row.update(eval_table(evaluated, prefix=f'{eval_split}_'))  # test_ only when there is no valid split
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
    on_round(row)
  writer.flush()
  selected = selection.selected_rounds(rows, spec.scenario_names, spec.task_names, cfg.select, cfg.rounds)
  result = {'algorithm': cfg.algorithm, 'rounds': cfg.rounds, 'selection': cfg.select,
            'selected_round': selected, 'valid': selection.valid_metrics(rows, selected, spec.task_names)}
  if test:
    last = _on_workers(lambda: trainer.evaluate(state, cfg.rounds), placement, cfg.rounds)
    tested = last if all(v == cfg.rounds for v in selected.values()) else _on_workers(
        lambda: trainer.evaluate_selected(state, selected), placement, cfg.rounds)
    result.update({'test': tested, 'mean_auc': mean_auc(tested), 'last': last, 'last_mean_auc': mean_auc(last)})
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


def train_trial(setup: RunSetup, on_round: Callable[[dict], None]) -> dict:
  """One tuning trial, quietly: `train` without the test evaluation. A search is scored on valid only, so test
  numbers there would cost the run's final evaluations (about 6 s of a 2-minute synthetic run) and be one
  look at test too many."""
  return train(setup, log=lambda *_: None, on_round=on_round, test=False)


def train_in_runtime(setup: RunSetup, log=print) -> dict:
  """`train` in TFF's local runtime (its workers stopped on every exit path), or on remote workers
  (`setup.cfg.workers`); returns the metrics.json content."""
  cfg = setup.cfg
  if not cfg.workers:
    with runtime.local_runtime():
      return train(setup, log)
  if not algorithms_lib.get(cfg.algorithm).federated:
    raise ValueError(f'--workers: {cfg.algorithm} pools every row in one place; it cannot run on workers')
  if cfg.data == prepare.SYNTHETIC:
    raise ValueError('--workers needs --data=DIR: the folder of spec.json (the workers hold the rows)')
  spec = spec_lib.load_spec(cfg.data)
  placement = coordinator.Placement.parse(cfg.workers, cfg.placement, spec.scenario_names,
                                          coordinator.Credentials.from_files(cfg.tls_ca, cfg.tls_cert, cfg.tls_key))
  log(placement.describe())
  with coordinator.remote_runtime(placement, spec.scenario_names):
    coordinator.check_data(placement, spec)
    return train(setup, log, placement)


def _on_workers(fn, placement, round_num: int):
  """Runs a round's computation. A failure on remote workers names the worker that stopped answering; a
  computation that failed in the local runtime is reported by its cause, in one line."""
  if placement is None:
    try:
      return fn()
    except Exception as e:  # pylint: disable=broad-except  (gRPC and TFF raise many kinds)
      cause = runtime.computation_cause(e)
      if cause is None:
        raise
      raise runtime.ComputationError(
          f'round {round_num}: a client computation failed: {cause} (a damaged shard names a record here: '
          'check the data without --verify_data=false, or prepare it again)') from e
  try:
    return fn()
  except Exception as e:  # pylint: disable=broad-except  (gRPC and TFF raise many kinds)
    down = coordinator.unreachable(placement)
    who = ', '.join(down) if down else 'a worker'
    cause = runtime.computation_cause(e) or f'{type(e).__name__}: {str(e)[:300]}'
    raise coordinator.WorkerError(f'round {round_num}: {who} failed ({cause}); restart it and run the same command '
                                  'with --resume') from e
