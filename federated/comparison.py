"""`pfmsmt compare`: every algorithm x seed trained under the same settings, then one report.

OUT/runs/<algorithm>/seed_<k>/   one run directory each (a finished run is reused, a killed one resumed)
OUT/report.md, OUT/report.csv     test AUC mean +- std over seeds per scenario x task and the mean
OUT/auc_by_round.png              mean AUC per evaluated round, one line per algorithm, band = +- std
OUT/auc_by_scenario.png           grouped bars per scenario and task
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Callable, Dict, List

import numpy as np
import pandas as pd

from data_pipelines import prepare
from federated import training
from federated.config import CompareConfig

MEAN = 'mean'


def run_dir(out: str, algorithm: str, seed: int) -> str:
  return os.path.join(out, 'runs', algorithm, f'seed_{seed}')


def run_all(cfg: CompareConfig, base: training.RunSetup, log: Callable[[str], None] = print) -> List[dict]:
  """Trains what is missing and returns every run's metrics.json content (with its rounds.csv rows)."""
  out = os.path.abspath(cfg.output)
  os.makedirs(out, exist_ok=True)
  data = prepare.resolve_data(base.cfg.data, out, log=lambda *_: None)  # prepared once, shared by every run
  results = []
  for algorithm in cfg.algorithms:
    for seed in range(cfg.seeds):
      path = run_dir(out, algorithm, seed)
      metrics_path = os.path.join(path, 'metrics.json')
      if not os.path.exists(metrics_path):
        resume = os.path.exists(os.path.join(path, 'config.json'))
        log(f'{"resuming" if resume else "training"} {algorithm} seed {seed}')
        setup = dataclasses.replace(base, cfg=dataclasses.replace(
            base.cfg, data=data, algorithm=algorithm, seed=seed, output=path, resume=resume, overwrite=not resume))
        metrics = training.train(setup, log=lambda line: log(f'  {algorithm}/{seed}: {line}'))
        log(f'  {algorithm} seed {seed}: mean AUC {metrics["mean_auc"]:.4f}')
      with open(metrics_path) as f:
        metrics = json.load(f)
      if metrics['rounds'] != base.cfg.rounds:
        raise ValueError(f'{path} ran {metrics["rounds"]} rounds, not --rounds={base.cfg.rounds}; '
                         'use another --output or remove that run')
      metrics['seed'] = seed
      metrics['by_round'] = pd.read_csv(os.path.join(path, 'rounds.csv'))
      results.append(metrics)
  return results


def summarize(results: List[dict]) -> pd.DataFrame:
  """One row per algorithm x scenario x task (and scenario 'mean'): auc_mean, auc_std, seeds."""
  rows = []
  for m in results:
    for scenario, tasks in m['test'].items():
      for task, v in tasks.items():
        rows.append({'algorithm': m['algorithm'], 'seed': m['seed'], 'scenario': scenario, 'task': task,
                     'auc': v['auc']})
    rows.append({'algorithm': m['algorithm'], 'seed': m['seed'], 'scenario': MEAN, 'task': MEAN,
                 'auc': m['mean_auc']})
  frame = pd.DataFrame(rows)
  order = list(dict.fromkeys(frame['algorithm']))
  table = frame.groupby(['algorithm', 'scenario', 'task'], sort=False)['auc'].agg(
      auc_mean='mean', auc_std=lambda x: float(np.std(x, ddof=1)) if len(x) > 1 else 0.0, seeds='count')
  table = table.reset_index()
  table['algorithm'] = pd.Categorical(table['algorithm'], order)
  return table.sort_values('algorithm', kind='stable').reset_index(drop=True)


def oracle_row(results: List[dict]) -> Dict[str, float] | None:
  """Column -> oracle AUC (synthetic data only)."""
  m = results[0]
  if 'oracle' not in m:
    return None
  out = {f'{s}:{t}': v['auc'] for s, tasks in m['oracle'].items() for t, v in tasks.items()}
  out[MEAN] = m['oracle_mean_auc']
  return out


def _wide(table: pd.DataFrame):
  columns = [f'{s}:{t}' if s != MEAN else MEAN for s, t in dict.fromkeys(zip(table['scenario'], table['task']))]
  means, stds = {}, {}
  for r in table.itertuples():
    col = MEAN if r.scenario == MEAN else f'{r.scenario}:{r.task}'
    means.setdefault(r.algorithm, {})[col] = r.auc_mean
    stds.setdefault(r.algorithm, {})[col] = r.auc_std
  return columns, means, stds


def markdown(table: pd.DataFrame, oracle: Dict[str, float] | None, command: str, title: str,
             notes: List[str] = ()) -> str:
  """AUC mean +- std per column, best mean of each column in bold; oracle row and gap column when known."""
  columns, means, stds = _wide(table)
  best = {c: max(means[a][c] for a in means) for c in columns}
  seeds = int(table['seeds'].max())
  head = ['algorithm'] + columns + (['gap to oracle'] if oracle else [])
  lines = [f'# {title}', '', f'Test AUC, mean ± std over {seeds} seed(s); the best mean of each column in bold.', '',
           '| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
  for a in means:
    cells = []
    for c in columns:
      text = f'{means[a][c]:.4f} ± {stds[a][c]:.4f}'
      cells.append(f'**{text}**' if np.isclose(means[a][c], best[c]) else text)
    if oracle:
      cells.append(f'{means[a][MEAN] - oracle[MEAN]:+.4f}')
    lines.append(f'| {a} | ' + ' | '.join(cells) + ' |')
  if oracle:
    lines.append('| oracle | ' + ' | '.join(f'{oracle[c]:.4f}' for c in columns) + ' | 0 |')
  lines += ['', *notes, '', 'Command:', '', '```', command, '```', '']
  return '\n'.join(lines)


def plot(results: List[dict], table: pd.DataFrame, out: str) -> List[str]:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  import matplotlib.ticker  # pylint: disable=g-import-not-at-top,unused-import
  paths = []
  fig, ax = plt.subplots(figsize=(7, 4.5))
  for algorithm in dict.fromkeys(m['algorithm'] for m in results):
    curves = [m['by_round'].dropna(subset=['mean_auc']).set_index('round')['mean_auc']
              for m in results if m['algorithm'] == algorithm]
    frame = pd.concat(curves, axis=1)
    mean, std = frame.mean(axis=1), frame.std(axis=1, ddof=1).fillna(0.0)
    ax.plot(mean.index, mean.values, marker='o', markersize=3, label=algorithm)
    ax.fill_between(mean.index, mean - std, mean + std, alpha=0.2)
  ax.set_xlabel('round')
  ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
  ax.set_ylabel('mean test AUC')
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  fig.tight_layout()
  paths.append(os.path.join(out, 'auc_by_round.png'))
  fig.savefig(paths[-1], dpi=120)
  plt.close(fig)

  columns, means, stds = _wide(table)
  algorithms = list(means)
  width = 0.8 / len(algorithms)
  fig, ax = plt.subplots(figsize=(max(7, 1.2 * len(columns)), 4.5))
  x = np.arange(len(columns))
  for j, a in enumerate(algorithms):
    ax.bar(x + j * width - 0.4 + width / 2, [means[a][c] for c in columns], width,
           yerr=[stds[a][c] for c in columns], label=a, capsize=2)
  low = min(min(means[a].values()) for a in algorithms)
  ax.set_ylim(max(0.0, low - 0.05), 1.0)
  ax.set_xticks(x, columns, rotation=30, ha='right', fontsize=8)
  ax.set_ylabel('test AUC')
  ax.legend(fontsize=8, ncol=2)
  fig.tight_layout()
  paths.append(os.path.join(out, 'auc_by_scenario.png'))
  fig.savefig(paths[-1], dpi=120)
  plt.close(fig)
  return paths


def write_report(results: List[dict], out: str, command: str, title: str = 'Comparison',
                 stem: str = 'report', notes: List[str] = (), plots: bool = True) -> pd.DataFrame:
  """OUT/<stem>.md and .csv (and the plots); returns the summary table."""
  table = summarize(results)
  oracle = oracle_row(results)
  csv_table = table.copy()
  if oracle:
    extra = [{'algorithm': 'oracle', 'scenario': c.split(':')[0] if c != MEAN else MEAN,
              'task': c.split(':')[1] if c != MEAN else MEAN, 'auc_mean': v, 'auc_std': 0.0, 'seeds': 0}
             for c, v in oracle.items()]
    csv_table = pd.concat([csv_table.astype({'algorithm': str}), pd.DataFrame(extra)], ignore_index=True)
  csv_table.to_csv(os.path.join(out, f'{stem}.csv'), index=False, float_format='%.6f')
  with open(os.path.join(out, f'{stem}.md'), 'w') as f:
    f.write(markdown(table, oracle, command, title, list(notes)))
  if plots:
    plot(results, table, out)
  return table
