"""Hyperparameter search with the same budget for every algorithm, scored on the valid split only.

Optuna's TPE sampler (seeded) searches the client settings every algorithm has (`COMMON`) and the knobs the
algorithm declares as its own (`Algorithm.tuned`); `SPACE` holds every range, in one place, so no
algorithm gets a wider search than another. One trial of the budget runs the defaults, so that tuning never
leaves an algorithm below its untuned row. Each trial is one run (OUTPUT/trials/trial_<n>) with the
run's own seed, or `TuneConfig.trial_seeds` runs on consecutive seeds (trial_<n>_seed_<i> after the first);
its score is the mean valid AUC of the models selected on valid, never a test number. A
trial whose best valid AUC so far falls below the median of the earlier trials at the same round is stopped
there (Optuna's MedianPruner, after `TuneConfig.prune_startup_trials` full trials and
`prune_warmup_rounds` rounds) and counts as one trial of the budget: the search sees as many settings for less
machine time, the same rule for every algorithm.

Optuna (not Vizier, which the stack pins for TFF: its designers need jax libraries the pinned jax cannot
take; not Keras Tuner, which tunes one Keras model, not a federated process): a small pure-Python
dependency whose SQLite storage makes a killed search continue where it stopped. Every trial so far is
written to OUTPUT/tuning.json after each trial, and a search whose study.db is gone (another machine, a
clean checkout) starts from the finished trials of that file: the study is a cache, the file the record.
When the budget is spent, the best trial's settings are written as OUTPUT/best.flags, a flagfile
`pfmsmt train` and `compare` accept.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import warnings
from typing import Callable, Dict, List

from federated import algorithms
from federated.config import RunSetup, TuneConfig

# name -> (kind, low, high): 'log' (float, log-uniform), 'float' (uniform) or 'int' (uniform).
SPACE = {
    'learning_rate': ('log', 1e-4, 1e-2),
    'local_epochs': ('int', 1, 3),
    'embedding_lr_scale': ('log', 1.0, 30.0),
    'sparse_embedding_lr_scale': ('log', 1.0, 30.0),
    'tau': ('log', 0.05, 5.0),
    'reg_lambda': ('log', 1e-4, 1.0),
    'prox_mu': ('log', 1e-4, 1.0),
    'apfl_alpha': ('float', 0.0, 1.0),
    'fedamp_alpha': ('log', 1.0, 1000.0),
    'fedamp_sigma': ('log', 1.0, 10_000.0),
    'hyper_lr': ('log', 1e-4, 1e-1),
}
COMMON = ('learning_rate', 'local_epochs', 'embedding_lr_scale', 'sparse_embedding_lr_scale')
STUDY_FILE, BEST_FLAGS, TRIALS_FILE = 'study.db', 'best.flags', 'tuning.json'
VALID_KEY = 'valid_mean_auc'  # the rounds.csv column a trial reports to the pruner
SPENT = ('COMPLETE', 'PRUNED')  # the trial states that count against the budget


def searched(algorithm: str) -> List[str]:
  """The settings searched for `algorithm`: the common ones, then its own."""
  own = algorithms.get(algorithm).tuned
  unknown = [n for n in own if n not in SPACE]
  if unknown:
    raise ValueError(f'algorithm {algorithm} tunes {unknown}, which tuning.SPACE does not define')
  return list(COMMON) + [n for n in own if n not in COMMON]


def with_settings(setup: RunSetup, params: Dict[str, float]) -> RunSetup:
  """`setup` with `params` in the config that owns each (client or aggregation)."""
  client = {k: v for k, v in params.items() if hasattr(setup.client_cfg, k)}
  aggregation = {k: v for k, v in params.items() if hasattr(setup.aggregation_cfg, k)}
  unknown = set(params) - set(client) - set(aggregation)
  if unknown:
    raise ValueError(f'tuned settings {sorted(unknown)} are neither client nor aggregation settings')
  return dataclasses.replace(setup, client_cfg=dataclasses.replace(setup.client_cfg, **client),
                             aggregation_cfg=dataclasses.replace(setup.aggregation_cfg, **aggregation))


def apply(setup: RunSetup, params: Dict[str, float], output: str) -> RunSetup:
  """A trial's setup: `setup` with `params`, written afresh to `output`."""
  setup = with_settings(setup, params)
  return dataclasses.replace(setup, cfg=dataclasses.replace(setup.cfg, output=output, overwrite=True, resume=False))


def _read_record(path: str, algorithm: str) -> dict:
  """The tuning.json at PATH, which must be the search of `algorithm`."""
  with open(path) as f:
    record = json.load(f)
  if record['algorithm'] != algorithm:
    raise ValueError(f'{path} is the search of {record["algorithm"]}, not of {algorithm}')
  return record


def load_best(folder: str, algorithm: str) -> Dict[str, float] | None:
  """The best settings `pfmsmt tune` found for `algorithm` in FOLDER/<algorithm>/ (None: not tuned there)."""
  path = os.path.join(folder, algorithm, TRIALS_FILE)
  if not os.path.exists(path):
    return None
  record = _read_record(path, algorithm)
  spent = record.get('spent', record.get('complete', record['budget']))  # older records: complete, or final
  if spent < record['budget']:
    raise ValueError(f'{path}: the search of {algorithm} has {spent} of its {record["budget"]} trials; finish '
                     'it (`pfmsmt tune` with the same --output continues it) before using it')
  return record['best']['params']


def valid_score(metrics: dict) -> float:
  """The mean valid AUC of the selected models over the cells where it is defined."""
  aucs = [m['auc'] for tasks in metrics['valid'].values() for m in tasks.values()
          if m['auc'] is not None and not math.isnan(m['auc'])]
  return sum(aucs) / len(aucs) if aucs else float('nan')


def defaults(setup: RunSetup, names) -> Dict[str, float]:
  """The settings `setup` runs with, for the searched `names` inside their range: one trial of the search (its
  first, when the search starts), so that it never ends below the defaults on valid; the rest is the sampler's."""
  out = {}
  for name in names:
    value = getattr(setup.client_cfg if hasattr(setup.client_cfg, name) else setup.aggregation_cfg, name)
    _, low, high = SPACE[name]
    if low <= value <= high:
      out[name] = value
  return out


def _shown(params: Dict[str, float]) -> str:
  return ', '.join(f'{k}={v:.4g}' for k, v in params.items())


def _suggest(trial, name: str):
  kind, low, high = SPACE[name]
  if kind == 'int':
    return trial.suggest_int(name, low, high)
  return trial.suggest_float(name, low, high, log=kind == 'log')


def _write_record(study, algorithm: str, search: TuneConfig, names, output: str) -> dict:
  """OUTPUT/tuning.json: every trial so far (with the valid AUC it reported each round, which the pruner
  compares), the best complete one and how many of the budget are spent."""
  trials = [{'number': t.number, 'state': t.state.name, 'params': t.params,
             'score': t.value if t.state.name == 'COMPLETE' else None,  # a pruned trial has only its rounds
             'rounds': {str(k): v for k, v in sorted(t.intermediate_values.items())},
             'run': t.user_attrs.get('run')} for t in study.trials]
  complete = [t for t in trials if t['state'] == 'COMPLETE']
  best = max(complete, key=lambda t: t['score']) if complete else None
  result = {'algorithm': algorithm, 'budget': search.budget, 'trial_seeds': search.trial_seeds,
            'spent': sum(t['state'] in SPENT for t in trials),
            'complete': len(complete), 'searched': {n: SPACE[n] for n in names},
            'best': best and {k: best[k] for k in ('params', 'score', 'run')}, 'trials': trials}
  tmp = os.path.join(output, TRIALS_FILE + '.tmp')
  with open(tmp, 'w') as f:
    json.dump(result, f, indent=1)
  os.replace(tmp, os.path.join(output, TRIALS_FILE))
  return result


def _distribution(name: str):
  import optuna  # pylint: disable=g-import-not-at-top
  kind, low, high = SPACE[name]
  if kind == 'int':
    return optuna.distributions.IntDistribution(low, high)
  return optuna.distributions.FloatDistribution(low, high, log=kind == 'log')


def _ran_or_queued(study, params: Dict[str, float]) -> bool:
  """Whether a trial at `params` is complete, pruned or waiting to run. A failed one (its process was killed)
  does not count: Optuna's own `skip_if_exists` counts it, and so skipped a search's defaults for good when the
  session that started them ended."""
  for t in study.get_trials(deepcopy=False):
    if t.state.name in SPENT and t.params == params:
      return True
    if t.state.name == 'WAITING' and t.system_attrs.get('fixed_params') == params:
      return True
  return False


def _restore(study, output: str, names) -> int:
  """Adds to an empty `study` the complete and pruned trials OUTPUT/tuning.json records, with what they
  reported each round; returns how many."""
  import optuna  # pylint: disable=g-import-not-at-top
  path = os.path.join(output, TRIALS_FILE)
  if study.trials or not os.path.exists(path):
    return 0
  record = _read_record(path, study.study_name)
  done = [t for t in record['trials'] if t['state'] in SPENT]
  for t in done:
    if set(t['params']) != set(names):
      raise ValueError(f'{path}: trial {t["number"]} searched {sorted(t["params"])}, this search {sorted(names)}')
    complete = t['state'] == 'COMPLETE'
    study.add_trial(optuna.trial.create_trial(
        state=optuna.trial.TrialState[t['state']], value=t['score'] if complete else None,
        params=t['params'], distributions={n: _distribution(n) for n in names},
        intermediate_values={int(k): v for k, v in t.get('rounds', {}).items()}, user_attrs={'run': t['run']}))
  return len(done)


def _pruner(search: TuneConfig):
  import optuna  # pylint: disable=g-import-not-at-top
  if not search.prune:
    return optuna.pruners.NopPruner()
  # Steps are rounds, from 1; Optuna may prune at a step >= n_warmup_steps.
  return optuna.pruners.MedianPruner(n_startup_trials=search.prune_startup_trials,
                                     n_warmup_steps=search.prune_warmup_rounds + 1)


def tune(setup: RunSetup, search: TuneConfig, output: str, train: Callable[[RunSetup, Callable[[dict], None]], dict],
         log=print, on_trial: Callable[[], None] = lambda: None) -> dict:
  """Runs trials until `search.budget` of them are complete or pruned (finished ones in OUTPUT/study.db, or
  recorded in OUTPUT/tuning.json when the study is new, are kept); `train(setup, on_round)` runs one, calling
  `on_round` with each round's row, which stops it (raises) when the pruner says so; `on_trial` runs after each
  trial, once tuning.json has it. Returns the best complete trial's {'params', 'score', 'run'} and writes
  best.flags."""
  import optuna  # pylint: disable=g-import-not-at-top
  budget = search.budget
  os.makedirs(output, exist_ok=True)
  record = os.path.join(output, TRIALS_FILE)
  if os.path.exists(record):  # a search continues only with scores it can compare: as many seeds per trial
    seeds = _read_record(record, setup.cfg.algorithm).get('trial_seeds', 1)  # older records: one
    if seeds != search.trial_seeds:
      raise ValueError(f'{record}: its trials were scored on {seeds} seed(s) each, this search on '
                       f'{search.trial_seeds}; use its --trial_seeds or another output')
  optuna.logging.set_verbosity(optuna.logging.WARNING)
  names = searched(setup.cfg.algorithm)

  def objective(trial):
    params = {n: _suggest(trial, n) for n in names}
    run_dirs = [os.path.join(output, 'trials', f'trial_{trial.number}' + (f'_seed_{i}' if i else ''))
                for i in range(search.trial_seeds)]
    trial.set_user_attr('run', run_dirs[0])

    def on_round(row):
      if not math.isnan(row.get(VALID_KEY, float('nan'))):
        trial.report(row[VALID_KEY], row['round'])
        if trial.should_prune():
          log(f'trial {trial.number}: pruned after round {row["round"]} (valid mean AUC {row[VALID_KEY]:.4f}, '
              'below the median of the earlier trials there) with ' + _shown(params))
          raise optuna.TrialPruned()

    scores = []
    for i, run_dir in enumerate(run_dirs):
      run = apply(setup, params, run_dir)
      run = dataclasses.replace(run, cfg=dataclasses.replace(run.cfg, seed=setup.cfg.seed + i))
      metrics = train(run, on_round if i == 0 else lambda row: None)
      score = valid_score(metrics) if metrics.get('valid') else float('nan')
      if math.isnan(score):
        raise ValueError(f'trial {trial.number} ({run_dir}) has no valid AUC to score: tuning needs a valid split '
                         'with both classes (prepare with --valid_fraction > 0)')
      scores.append(score)
    score = sum(scores) / len(scores)
    each = f' (seeds: {", ".join(f"{s:.4f}" for s in scores)})' if len(scores) > 1 else ''
    log(f'trial {trial.number}: valid mean AUC {score:.4f}{each} with ' + _shown(params))
    return score

  with warnings.catch_warnings():  # heartbeats and stale-trial handling are marked experimental
    warnings.simplefilter('ignore', optuna.exceptions.ExperimentalWarning)
    storage = optuna.storages.RDBStorage(f'sqlite:///{os.path.abspath(os.path.join(output, STUDY_FILE))}',
                                         heartbeat_interval=60, grace_period=120)
    study = optuna.create_study(study_name=setup.cfg.algorithm, storage=storage, direction='maximize',
                                pruner=_pruner(search), load_if_exists=True)
    optuna.storages.fail_stale_trials(study)  # a trial killed with the process is rerun, not counted
    restored = _restore(study, output, names)
    if restored:
      log(f'{restored} finished trial(s) restored from {os.path.join(output, TRIALS_FILE)}')
    # Seeded by the run's seed and the trials made so far: a resumed search draws new settings instead of
    # replaying the first draws of its seed, which would spend the budget on settings it has already run.
    study.sampler = optuna.samplers.TPESampler(seed=setup.cfg.seed * 100_003 + len(study.trials))

    def spent() -> int:
      return sum(t.state.name in SPENT for t in study.trials)

    wanted = defaults(setup, names)
    if spent() < budget and not _ran_or_queued(study, wanted):  # the defaults once, whenever the search started
      study.enqueue_trial(wanted)
    best = _write_record(study, setup.cfg.algorithm, search, names, output)['best']
    while spent() < budget:
      study.optimize(objective, n_trials=1)
      best = _write_record(study, setup.cfg.algorithm, search, names, output)['best']
      on_trial()
  with open(os.path.join(output, BEST_FLAGS), 'w') as f:
    f.write(f'# pfmsmt tune: {setup.cfg.algorithm}, best of {budget} trials, valid mean AUC {best["score"]:.4f}\n')
    f.writelines(f'--{k}={v}\n' for k, v in best['params'].items())
  return best
