"""What a run reports: its evaluation as flat rows, the mean AUC, and the scenario x task table."""

from __future__ import annotations

from typing import Dict

import numpy as np


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
