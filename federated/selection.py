"""Model selection on the valid split: which round's model each scenario deploys.

Training evaluates on `valid` every `eval_every` rounds and records the metrics in rounds.csv; the test split
is evaluated only for the selected models (and, so nothing is hidden, for the last round's). Selection reads
only rounds.csv, so a resumed run selects exactly as an uninterrupted one.

- `last`: the last round, for every scenario;
- `best`: the round with the best mean valid AUC over scenarios x tasks, for every scenario;
- `best_per_scenario`: for each scenario the round with its own best mean valid AUC (over its tasks): what a
  silo would deploy, since it can compare its own models on its own rows and needs nobody else's.
Ties go to the earlier round; a scenario whose valid AUC is undefined in every round keeps the last round.
"""

from __future__ import annotations

import math
from typing import Dict, List, Sequence

LAST, BEST, BEST_PER_SCENARIO = 'last', 'best', 'best_per_scenario'
MODES = (LAST, BEST, BEST_PER_SCENARIO)
VALID_PREFIX = 'valid_'


def valid_column(metric: str, scenario: str, task: str) -> str:
  return f'{VALID_PREFIX}{metric}/{scenario}/{task}'


def _number(value) -> float:
  try:
    x = float(value)
  except (TypeError, ValueError):
    return math.nan
  return x


def _mean(values: List[float]) -> float:
  kept = [v for v in values if not math.isnan(v)]
  return sum(kept) / len(kept) if kept else math.nan


def _argmax(scores: Dict[int, float], fallback: int) -> int:
  best, best_round = -math.inf, fallback
  for r in sorted(scores):
    if not math.isnan(scores[r]) and scores[r] > best:
      best, best_round = scores[r], r
  return best_round


def evaluated_rounds(rows: Sequence[dict]) -> List[dict]:
  """The rows of rounds evaluated on valid: some valid AUC in them is a number (rounds.csv leaves the
  others empty)."""
  prefix = VALID_PREFIX + 'auc/'
  return [r for r in rows if any(k.startswith(prefix) and not math.isnan(_number(v)) for k, v in r.items())]


def selected_rounds(rows: Sequence[dict], scenarios: Sequence[str], tasks: Sequence[str], mode: str,
                    last_round: int) -> Dict[str, int]:
  """Scenario -> the round whose model it deploys, from the valid metrics in `rows` (rounds.csv rows)."""
  if mode not in MODES:
    raise ValueError(f'unknown selection {mode!r}; choose one of {MODES}')
  if mode == LAST:
    return {s: last_round for s in scenarios}
  evaluated = {int(r['round']): r for r in evaluated_rounds(rows)}

  def scenario_score(row, s):
    return _mean([_number(row.get(valid_column('auc', s, t))) for t in tasks])

  if mode == BEST:
    scores = {r: _mean([scenario_score(row, s) for s in scenarios]) for r, row in evaluated.items()}
    chosen = _argmax(scores, last_round)
    return {s: chosen for s in scenarios}
  return {s: _argmax({r: scenario_score(row, s) for r, row in evaluated.items()}, last_round) for s in scenarios}


def valid_metrics(rows: Sequence[dict], selected: Dict[str, int], tasks: Sequence[str]) -> Dict[str, dict]:
  """Scenario -> task -> {auc, logloss} on valid at that scenario's selected round."""
  by_round = {int(r['round']): r for r in rows}
  out = {}
  for s, r in selected.items():
    row = by_round.get(r, {})
    out[s] = {t: {'auc': _number(row.get(valid_column('auc', s, t))),
                  'logloss': _number(row.get(valid_column('logloss', s, t)))} for t in tasks}
  return out

