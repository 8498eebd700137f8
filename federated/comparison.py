"""`pfmsmt compare`: every algorithm x seed trained under the same settings, then one report.

OUT/runs/<algorithm>/seed_<k>/   one run directory each (a finished run is reused, a killed one resumed)
OUT/report.md, OUT/report.csv     test AUC (of the models selected on valid) mean +- std over seeds per
                                  scenario x task and the mean; paired differences to the reference algorithm
                                  with 95% confidence intervals; the test sets' own AUC uncertainty
OUT/auc_by_round.png              mean valid AUC per evaluated round, one line per algorithm, band = +- std
OUT/auc_by_scenario.png           grouped bars per scenario and task

Runs go seed by seed (every algorithm at seed 0, then seed 1, ...), so a comparison stopped early still has
paired seeds for every algorithm. Runs of one seed share the prepared data and the seed of the model's
initialization and of the shuffles.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Callable, Dict, List

import numpy as np
import pandas as pd

from data_pipelines import prepare
from federated import training, tuning
from federated.config import CompareConfig, RunSetup

MEAN = 'mean'
VALID_MEAN = 'valid_mean_auc'


def run_dir(out: str, algorithm: str, seed: int) -> str:
  return os.path.join(out, 'runs', algorithm, f'seed_{seed}')


def run_all(cfg: CompareConfig, base: RunSetup, log: Callable[[str], None] = print,
            train_missing: bool = True, train_seeds: List[int] | None = None,
            on_run: Callable[[str], None] = lambda path: None) -> List[dict]:
  """Trains what is missing (unless `train_missing` is False: then only finished runs are read; with
  `train_seeds`, only those seeds, in that order, so that two processes can share a comparison's seeds;
  `on_run` gets each newly finished run's directory) and returns every finished run's metrics.json content,
  with its rounds.csv rows and the test split's label counts."""
  out = os.path.abspath(cfg.output)
  os.makedirs(out, exist_ok=True)
  data = prepare.resolve_data(base.cfg.data, out, log=lambda *_: None)  # prepared once, shared by every run
  counts = test_label_counts(data)
  tuned = {}  # algorithm -> its tuned settings, read once

  def settings(algorithm):
    if algorithm not in tuned:
      tuned[algorithm] = tuning.load_best(cfg.tuned, algorithm) if cfg.tuned else None
    return tuned[algorithm]

  if train_missing:  # every search must be finished before the first run; a report reads only those it shows
    for algorithm in cfg.planned():
      settings(algorithm)
  results = []
  order = list(train_seeds) + [s for s in range(cfg.seeds) if s not in train_seeds] if train_seeds else range(cfg.seeds)
  for seed in order:
    for algorithm in cfg.planned():
      path = run_dir(out, algorithm, seed)
      metrics_path = os.path.join(path, 'metrics.json')
      if not os.path.exists(metrics_path) and (not train_missing or (train_seeds and seed not in train_seeds)):
        continue
      if not os.path.exists(metrics_path):
        resume = os.path.exists(os.path.join(path, 'config.json'))
        log(f'{"resuming" if resume else "training"} {algorithm} seed {seed}')
        setup = dataclasses.replace(base, cfg=dataclasses.replace(
            base.cfg, data=data, algorithm=algorithm, seed=seed, output=path, resume=resume, overwrite=not resume))
        if settings(algorithm):
          log(f'  {algorithm}: tuned settings from {cfg.tuned}: {settings(algorithm)}')
          setup = tuning.with_settings(setup, settings(algorithm))
        metrics = training.train(setup, log=lambda line: log(f'  {algorithm}/{seed}: {line}'))
        log(f'  {algorithm} seed {seed}: mean AUC {metrics["mean_auc"]:.4f}')
        on_run(path)
      with open(metrics_path) as f:
        metrics = json.load(f)
      if metrics['rounds'] != base.cfg.rounds:
        raise ValueError(f'{path} ran {metrics["rounds"]} rounds, not --rounds={base.cfg.rounds}; '
                         'use another --output or remove that run')
      metrics['seed'] = seed
      metrics['tuned'] = settings(algorithm)
      metrics['by_round'] = pd.read_csv(os.path.join(path, 'rounds.csv'))
      metrics['test_counts'] = counts
      results.append(metrics)
  order = {a: i for i, a in enumerate(cfg.planned())}
  return sorted(results, key=lambda m: (order[m['algorithm']], m['seed']))


def test_label_counts(data: str) -> Dict[str, Dict[str, tuple]]:
  """Scenario -> task -> (positives, negatives) in the test split, from summary.json."""
  path = os.path.join(data, 'summary.json')
  if not os.path.exists(path):
    return {}
  with open(path) as f:
    parts = json.load(f)['partitions'].get('test', {})
  return {s: {t: (int(n), int(p['rows_kept']) - int(n)) for t, n in p['label_positives'].items()}
          for s, p in parts.items()}


# ------------------------------------------------------------------------------------------ statistics


def t_interval(values, confidence: float = 0.95) -> tuple:
  """(mean, low, high) of a Student t interval over `values` (nan bounds with fewer than 2 values)."""
  from scipy import stats  # pylint: disable=g-import-not-at-top  (a TFF requirement)
  x = np.asarray(values, np.float64)
  mean = float(np.mean(x)) if x.size else float('nan')
  if x.size < 2:
    return mean, float('nan'), float('nan')
  half = float(stats.t.ppf(0.5 + confidence / 2, x.size - 1) * np.std(x, ddof=1) / np.sqrt(x.size))
  return mean, mean - half, mean + half


def paired_differences(results: List[dict], reference: str) -> pd.DataFrame:
  """Per algorithm: the per-seed difference of its mean test AUC to `reference`'s (same seeds), with a 95% t
  interval; `excludes_zero` where the interval lies on one side of 0."""
  by = {(m['algorithm'], m['seed']): m['mean_auc'] for m in results}
  ref_seeds = {s for a, s in by if a == reference}
  rows = []
  for algorithm in dict.fromkeys(m['algorithm'] for m in results):
    if algorithm == reference:
      continue
    seeds = sorted(ref_seeds & {s for a, s in by if a == algorithm})
    diffs = [by[(algorithm, s)] - by[(reference, s)] for s in seeds]
    mean, low, high = t_interval(diffs)
    rows.append({'algorithm': algorithm, 'reference': reference, 'seeds': len(seeds), 'diff_mean': mean,
                 'ci_low': low, 'ci_high': high, 'excludes_zero': bool(low > 0 or high < 0)})
  return pd.DataFrame(rows, columns=['algorithm', 'reference', 'seeds', 'diff_mean', 'ci_low', 'ci_high',
                                     'excludes_zero'])


def auc_half_width(auc: float, positives: int, negatives: int) -> float:
  """95% half-width of an AUC measured on a test set (Hanley and McNeil, 1982): how far the test set alone
  lets the measured AUC fall from the true one. Used instead of a bootstrap because runs keep AUCs, not
  predictions."""
  if positives < 1 or negatives < 1 or np.isnan(auc):
    return float('nan')
  q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
  var = (auc * (1 - auc) + (positives - 1) * (q1 - auc * auc) + (negatives - 1) * (q2 - auc * auc)) / (
      positives * negatives)
  return float(1.96 * np.sqrt(max(var, 0.0)))


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


def headline(paired: pd.DataFrame) -> str:
  """One sentence: which algorithms the paired intervals put above or below the reference, and which not."""
  if paired is None or not len(paired):
    return ''
  ref = paired['reference'].iloc[0]

  def listed(rows):
    return ', '.join(f'{r.algorithm} ({r.diff_mean:+.4f} [{r.ci_low:+.4f}, {r.ci_high:+.4f}])' for r in rows) or 'none'

  better = [r for r in paired.itertuples() if r.excludes_zero and r.diff_mean > 0]
  worse = [r for r in paired.itertuples() if r.excludes_zero and r.diff_mean < 0]
  unclear = [r.algorithm for r in paired.itertuples() if not r.excludes_zero]
  return (f'Paired by seed, with 95% intervals on the difference of mean test AUC to {ref}: better than {ref}: '
          f'{listed(better)}; worse than {ref}: {listed(worse)}; not distinguishable from it: '
          f'{", ".join(unclear) or "none"}.')


def markdown(table: pd.DataFrame, oracle: Dict[str, float] | None, command: str, title: str,
             notes: List[str] = (), paired: pd.DataFrame | None = None,
             test_ci: Dict[str, float] | None = None) -> str:
  """AUC mean +- std per column, best mean of each column in bold; oracle row and gap column when known;
  the paired differences to the reference and the test sets' own AUC uncertainty."""
  columns, means, stds = _wide(table)
  best = {c: max(means[a][c] for a in means) for c in columns}
  seeds = int(table['seeds'].max())
  head = ['algorithm'] + columns + (['gap to oracle'] if oracle else [])
  lines = [f'# {title}', '']
  if headline(paired):
    lines += [headline(paired), '']
  lines += [f'Test AUC of the models selected on the valid split, mean ± std over {seeds} seed(s) '
           '(fewer where the seeds column of report.csv says so); the best mean of each column in bold.', '',
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
  if test_ci:
    lines.append('| ± test set (95%) | ' + ' | '.join(
        f'{test_ci[c]:.4f}' if c in test_ci and not np.isnan(test_ci[c]) else '' for c in columns) +
                 (' | |' if oracle else ' |'))
    lines += ['', 'The last row is the half-width of a 95% interval that the test set alone puts around an AUC of '
              'that size (Hanley and McNeil, from its positives and negatives): differences smaller than it in one '
              'cell are not evidence.']
  if paired is not None and len(paired):
    ref = paired['reference'].iloc[0]
    lines += ['', f'## Paired differences to {ref}', '',
              f'Mean test AUC of the algorithm minus that of {ref} on the same seed (same data, same initial '
              'weights where the algorithms allow); mean and 95% confidence interval (Student t over seeds). '
              '**bold**: the interval excludes 0.', '',
              '| algorithm | seeds | difference | 95% CI |', '|---|---|---|---|']
    for r in paired.itertuples():
      cell = f'{r.diff_mean:+.4f}'
      ci = f'[{r.ci_low:+.4f}, {r.ci_high:+.4f}]' if not np.isnan(r.ci_low) else 'n/a (1 seed)'
      if r.excludes_zero:
        cell, ci = f'**{cell}**', f'**{ci}**'
      lines.append(f'| {r.algorithm} | {r.seeds} | {cell} | {ci} |')
  lines += ['', *notes, '', 'Command:', '', '```', command, '```', '']
  return '\n'.join(lines)


def test_set_half_widths(results: List[dict], table: pd.DataFrame, reference: str) -> Dict[str, float]:
  """Column -> the test set's 95% AUC half-width at `reference`'s mean AUC of that column."""
  counts = results[0].get('test_counts') if results else None
  if not counts:
    return {}
  out = {}
  for r in table.itertuples():
    if r.algorithm == reference and r.scenario != MEAN and r.scenario in counts and r.task in counts[r.scenario]:
      out[f'{r.scenario}:{r.task}'] = auc_half_width(r.auc_mean, *counts[r.scenario][r.task])
  return out


def plot(results: List[dict], table: pd.DataFrame, out: str) -> List[str]:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  import matplotlib.ticker  # pylint: disable=g-import-not-at-top,unused-import
  paths = []
  fig, ax = plt.subplots(figsize=(7, 4.5))
  for algorithm in dict.fromkeys(m['algorithm'] for m in results):
    curves = [m['by_round'].dropna(subset=[VALID_MEAN]).set_index('round')[VALID_MEAN]
              for m in results if m['algorithm'] == algorithm and VALID_MEAN in m['by_round']]
    if not curves:
      continue
    frame = pd.concat(curves, axis=1)
    mean, std = frame.mean(axis=1), frame.std(axis=1, ddof=1).fillna(0.0)
    ax.plot(mean.index, mean.values, marker='o', markersize=3, label=algorithm)
    ax.fill_between(mean.index, mean - std, mean + std, alpha=0.2)
  ax.set_xlabel('round')
  ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
  ax.set_ylabel('mean valid AUC')
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
                 stem: str = 'report', notes: List[str] = (), plots: bool = True,
                 reference: str | None = None) -> pd.DataFrame:
  """OUT/<stem>.md and .csv (and the plots; the paired differences also in OUT/<stem>_paired.csv); returns
  the summary table. `reference` defaults to the first algorithm."""
  table = summarize(results)
  oracle = oracle_row(results)
  tuned = {m['algorithm']: m['tuned'] for m in results if 'tuned' in m}
  if any(tuned.values()):
    notes = list(notes) + ['', 'Settings found by `pfmsmt tune`: ' + '; '.join(
        f'{a}: ' + ', '.join(f'{k}={v:.4g}' for k, v in t.items()) for a, t in tuned.items() if t) +
        '. At the flags\' settings: ' + (', '.join(a for a, t in tuned.items() if not t) or 'none') + '.']
  reference = reference or results[0]['algorithm']
  paired = paired_differences(results, reference)
  paired.to_csv(os.path.join(out, f'{stem}_paired.csv'), index=False, float_format='%.6f')
  test_ci = test_set_half_widths(results, table, reference)
  csv_table = table.copy()
  if oracle:
    extra = [{'algorithm': 'oracle', 'scenario': c.split(':')[0] if c != MEAN else MEAN,
              'task': c.split(':')[1] if c != MEAN else MEAN, 'auc_mean': v, 'auc_std': 0.0, 'seeds': 0}
             for c, v in oracle.items()]
    csv_table = pd.concat([csv_table.astype({'algorithm': str}), pd.DataFrame(extra)], ignore_index=True)
  csv_table.to_csv(os.path.join(out, f'{stem}.csv'), index=False, float_format='%.6f')
  with open(os.path.join(out, f'{stem}.md'), 'w') as f:
    f.write(markdown(table, oracle, command, title, list(notes), paired, test_ci))
  if plots:
    plot(results, table, out)
  return table
