"""What the aggregator did each round: RUN/aggregation.jsonl, TensorBoard scalars, and `pfmsmt inspect`.

The measurements come out of the round's TFF computation (`process.build_process`: the aggregator's
measurements and each client's global-update norm), so they are the same on remote workers. One JSON object
per round:

  {"round": r, "scenarios": [names by client index], "global_update_norm": [K],
   "groups": {group: {"update_norm": [K], "cosine_before": [K][K], "cosine_after": [K][K], "attention": [K][K],
                      "pcgrad_projections": n, "pcgrad_removed_norm": [K]        (pcgrad)
                      "cagrad_weights": [K], "cagrad_shift_norm": x}},          (cagrad)
   "global": {the global factory's measurements, e.g. DP's clip and noise}}

BatchNorm statistics are not compared between clients: with FedBN they are local and never leave a client
(ALGORITHM.md, "What crosses the network"); tests compare them from the clients' own state files.
"""

from __future__ import annotations

import json
import os
from typing import Dict, List, Sequence

import numpy as np

KEY = 'aggregation'  # the round output's field, and the metrics key the trainer hands to the loop


def _plain(value):
  """Nested TFF/numpy values -> JSON-able lists and numbers."""
  if hasattr(value, 'items'):
    return {str(k): _plain(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [_plain(v) for v in value]
  array = np.asarray(value)
  if array.dtype.kind in 'fc':
    array = np.round(array.astype(np.float64), 6)
  return array.tolist()


def from_round_output(aggregation, scenario_names: Sequence[str]) -> dict:
  """The round output's `aggregation` field as one JSON-able record (scenario names by client index)."""
  aggregator = aggregation['aggregator']
  record = {'scenarios': list(scenario_names), 'global_update_norm': _plain(aggregation['global_update_norm'])}
  keys = list(aggregator.keys()) if hasattr(aggregator, 'keys') else []
  record['groups'] = _plain(aggregator['personalized']) if 'personalized' in keys else {}
  if 'global' in keys:
    record['global'] = _plain(aggregator['global'])
  return record


class RoundLog:
  """RUN/aggregation.jsonl; on resume, records of rounds after the last checkpoint are dropped."""

  def __init__(self, path: str, start_round: int):
    self.path = path
    kept = [r for r in read(path) if r['round'] <= start_round] if os.path.exists(path) else []
    with open(path, 'w') as f:
      for record in kept:
        f.write(json.dumps(record) + '\n')

  def append(self, round_num: int, record: dict) -> None:
    with open(self.path, 'a') as f:
      f.write(json.dumps({'round': round_num, **record}) + '\n')


def read(path: str) -> List[dict]:
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def off_diagonal_mean(matrix) -> float:
  m = np.asarray(matrix, np.float64)
  if m.shape[0] < 2:
    return float('nan')
  return float((m.sum() - np.trace(m)) / (m.size - m.shape[0]))


def peer_contrast(attention) -> float:
  """How much a mix tells the other clients apart: per row, (largest - smallest weight on another client) /
  their mean, averaged over rows; 0 when every client gives all its peers the same weight, whatever it is.
  Attention on updates whose cosines are all near 0 gives 0 here and a fixed weight on self set by tau alone
  (docs/CHOICES.md). NaN with fewer than 3 clients (one peer each)."""
  a = np.asarray(attention, np.float64)
  k = a.shape[0]
  if k < 3:
    return float('nan')
  peers = a[~np.eye(k, dtype=bool)].reshape(k, k - 1)
  mean = peers.mean(axis=1)  # 0 only where every peer weighs 0, and then so does the spread
  return float(np.mean((peers.max(axis=1) - peers.min(axis=1)) / np.where(mean > 0, mean, 1.0)))


def scalars(record: dict) -> Dict[str, float]:
  """The few numbers per group worth a curve: mean cosine before/after, weight on self, peer contrast,
  projections."""
  out = {}
  for group, g in record.get('groups', {}).items():
    out[f'aggregation/{group}/mean_cosine_before'] = off_diagonal_mean(g['cosine_before'])
    out[f'aggregation/{group}/mean_cosine_after'] = off_diagonal_mean(g['cosine_after'])
    out[f'aggregation/{group}/attention_on_self'] = float(np.mean(np.diag(np.asarray(g['attention']))))
    out[f'aggregation/{group}/attention_peer_contrast'] = peer_contrast(g['attention'])
    out[f'aggregation/{group}/mean_update_norm'] = float(np.mean(g['update_norm']))
    if 'pcgrad_projections' in g:
      out[f'aggregation/{group}/pcgrad_projections'] = float(g['pcgrad_projections'])
      out[f'aggregation/{group}/pcgrad_removed_norm'] = float(np.sum(g['pcgrad_removed_norm']))
    if 'cagrad_shift_norm' in g:
      out[f'aggregation/{group}/cagrad_shift_norm'] = float(g['cagrad_shift_norm'])
  if record.get('global_update_norm'):
    out['aggregation/global/mean_update_norm'] = float(np.mean(record['global_update_norm']))
  return out


def write_summaries(record: dict) -> None:
  """TensorBoard scalars of `scalars(record)`, inside the caller's writer and step."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  for name, value in scalars(record).items():
    if not np.isnan(value):
      tf.summary.scalar(name, value)


def summary(records: List[dict], at_rounds: Sequence[int] = ()) -> str:
  """A text summary: per group, the telemetry at a few rounds."""
  if not records:
    return 'no aggregation records (the run has not finished a round)'
  by_round = {r['round']: r for r in records}
  rounds = [r for r in (at_rounds or default_rounds(records)) if r in by_round]
  names = records[0]['scenarios']
  lines = [f'{len(records)} rounds recorded; scenarios {", ".join(names)}']
  for group in records[0].get('groups', {}):
    lines.append(f'group {group}:')
    for r in rounds:
      g = by_round[r]['groups'][group]
      attention = np.asarray(g['attention'])
      line = (f'  round {r:>3}: cosine {off_diagonal_mean(g["cosine_before"]):+.3f} -> '
              f'{off_diagonal_mean(g["cosine_after"]):+.3f}, weight on self '
              + ' '.join(f'{n}={attention[i, i]:.3f}' for i, n in enumerate(names)))
      contrast = peer_contrast(attention)
      if not np.isnan(contrast):
        line += f', peer contrast {contrast:.2f}'
      if 'pcgrad_projections' in g:
        line += (f', pcgrad projections {g["pcgrad_projections"]} removing '
                 f'{np.sum(g["pcgrad_removed_norm"]):.3g} of norm {np.sum(g["update_norm"]):.3g}')
      if 'cagrad_shift_norm' in g:
        line += f', cagrad |d - g0| {g["cagrad_shift_norm"]:.3g}, w ' + ' '.join(f'{w:.2f}' for w in g['cagrad_weights'])
      lines.append(line)
  if not records[0].get('groups'):
    lines.append('no personalized groups: the algorithm only averages global parameters')
  norms = np.asarray([r['global_update_norm'] for r in records if r.get('global_update_norm')])
  if norms.size:
    lines.append('global update norm per scenario (first -> last round): ' + ', '.join(
        f'{n} {norms[0, i]:.3g} -> {norms[-1, i]:.3g}' for i, n in enumerate(names)))
  return '\n'.join(lines)


def default_rounds(records: List[dict]) -> List[int]:
  """Rounds 1, 5, 10 and the last, where recorded."""
  last = records[-1]['round']
  return sorted({r for r in (1, 5, 10, last) if r <= last})


def plot(records: List[dict], out: str, at_rounds: Sequence[int] = ()) -> List[str]:
  """attention_<group>.png (heatmaps at a few rounds) and conflicts.png (projections per round)."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use('Agg')
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  os.makedirs(out, exist_ok=True)
  paths = []
  by_round = {r['round']: r for r in records}
  rounds = [r for r in (at_rounds or default_rounds(records)) if r in by_round]
  names = records[0]['scenarios'] if records else []
  for group in (records[0].get('groups', {}) if records else {}):
    fig, axes = plt.subplots(1, len(rounds), figsize=(3.2 * len(rounds), 3.2), squeeze=False)
    for ax, r in zip(axes[0], rounds):
      image = ax.imshow(np.asarray(by_round[r]['groups'][group]['attention']), vmin=0, vmax=1, cmap='viridis')
      ax.set_title(f'round {r}', fontsize=9)
      ax.set_xticks(range(len(names)), names, fontsize=7, rotation=90)
      ax.set_yticks(range(len(names)), names, fontsize=7)
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8)
    fig.suptitle(f'attention weights, group {group} (row: receiving scenario)', fontsize=9)
    paths.append(os.path.join(out, f'attention_{group}.png'))
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
  fig, ax = plt.subplots(figsize=(6, 3.5))
  for group in (records[0].get('groups', {}) if records else {}):
    xs = [r['round'] for r in records]
    if 'pcgrad_projections' in records[0]['groups'][group]:
      ax.plot(xs, [r['groups'][group]['pcgrad_projections'] for r in records], marker='o', label=f'{group}: projections')
    ax.plot(xs, [off_diagonal_mean(r['groups'][group]['cosine_before']) for r in records], linestyle='--',
            label=f'{group}: mean cosine')
  ax.set_xlabel('round')
  ax.set_ylabel('projections (count) / mean cosine')
  ax.grid(alpha=0.3)
  ax.legend(fontsize=7)
  fig.tight_layout()
  paths.append(os.path.join(out, 'conflicts.png'))
  fig.savefig(paths[-1], dpi=110)
  plt.close(fig)
  return paths
