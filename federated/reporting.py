"""What a run reports: its evaluation as flat rows, the mean AUC, and the scenario x task table."""

from __future__ import annotations

import math
from typing import Dict, List

import numpy as np


def cell(auc: float, logloss: float, positives: float, examples: float) -> dict:
  """One scenario x task evaluation; AUC is undefined (NaN, with the reason under `missing`) when the split
  holds only one class, rather than the 0 or 1 that a thresholded AUC reports there."""
  out = {'auc': float(auc), 'logloss': float(logloss), 'positives': int(round(positives)), 'examples': int(examples)}
  reason = ('no rows' if not examples else 'no positive' if not positives else
            'no negative' if positives == examples else '')
  if reason:
    out.update(auc=float('nan'), missing=f'{reason} among {int(examples)} rows')
  return out


def left_out(results: Dict[str, Dict[str, dict]]) -> List[str]:
  """The cells the mean AUC leaves out, each with its reason: 'scenario/task (no positive among 280 rows)'."""
  return [f'{scenario}/{task} ({m.get("missing", "AUC undefined")})' for scenario, tasks in results.items()
          for task, m in tasks.items() if math.isnan(m['auc'])]


def eval_table(results: Dict[str, Dict[str, dict]], prefix: str = '') -> Dict[str, float]:
  flat = {}
  for scenario, tasks in results.items():
    for task, m in tasks.items():
      flat[f'{prefix}auc/{scenario}/{task}'] = m['auc']
      flat[f'{prefix}logloss/{scenario}/{task}'] = m['logloss']
  aucs = [m['auc'] for tasks in results.values() for m in tasks.values() if not np.isnan(m['auc'])]
  flat[f'{prefix}mean_auc'] = float(np.mean(aucs)) if aucs else float('nan')
  return flat


def mean_auc(results: Dict[str, Dict[str, dict]]) -> float:
  return eval_table(results)['mean_auc']


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
    line = f'{scenario[:24]:<24}' + ''.join(_auc_text(m[t]['auc']) for t in tasks)
    if oracle:
      line += ''.join(f'{oracle[scenario][t]["auc"]:>14.4f}' for t in tasks)
    lines.append(line)
  tail = f'mean AUC {metrics["mean_auc"]:.4f}'
  if oracle:
    tail += f' (oracle {metrics["oracle_mean_auc"]:.4f})'
  if 'last' in metrics:
    tail += f'; the last round\'s models: {mean_auc(metrics["last"]):.4f}'
  missing = left_out(test)
  if missing:
    cells = sum(len(tasks) for tasks in test.values())
    tail += f'\nthe mean is over {cells - len(missing)} of {cells} cells; left out: ' + '; '.join(missing)
  return '\n'.join(lines + [tail])


def _auc_text(auc: float) -> str:
  return f'{"n/a":>14}' if math.isnan(auc) else f'{auc:>14.4f}'

