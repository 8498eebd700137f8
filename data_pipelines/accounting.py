"""Row accounting: every row read is either kept or dropped with a named reason.

The counts end up in `summary.json`; `check()` enforces read == kept + dropped so no row vanishes uncounted.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Dict


@dataclasses.dataclass
class PartitionCounts:
  """Counts for one (split, scenario) partition."""

  rows_read: int = 0
  rows_kept: int = 0
  rows_dropped: Dict[str, int] = dataclasses.field(default_factory=collections.Counter)
  # Handled-and-kept events (e.g. unknown category mapped to the OOV bucket), keyed by kind then column.
  handled: Dict[str, Dict[str, int]] = dataclasses.field(
      default_factory=lambda: collections.defaultdict(collections.Counter))
  label_positives: Dict[str, int] = dataclasses.field(default_factory=collections.Counter)

  def to_json(self, tasks) -> dict:
    kept = self.rows_kept
    return {
        'rows_read': self.rows_read,
        'rows_kept': kept,
        'rows_dropped': dict(sorted(self.rows_dropped.items())),
        'label_rate': {t: (self.label_positives[t] / kept if kept else None) for t in tasks},
        'label_positives': {t: int(self.label_positives[t]) for t in tasks},
        'handled': {k: dict(sorted(v.items())) for k, v in sorted(self.handled.items()) if v},
    }


class RowAccounting:
  """Counts per split and scenario, filled by readers (drops) and the writer (kept rows)."""

  UNKNOWN_SCENARIO = '<unknown>'

  def __init__(self):
    self._parts: Dict[tuple, PartitionCounts] = {}
    self.files: Dict[str, int] = collections.Counter()  # path -> data rows read

  def part(self, split: str, scenario: str) -> PartitionCounts:
    key = (split, scenario)
    if key not in self._parts:
      self._parts[key] = PartitionCounts()
    return self._parts[key]

  def read(self, split: str, scenario: str, n: int) -> None:
    self.part(split, scenario).rows_read += int(n)

  def move_read(self, from_split: str, to_split: str, scenario: str, n: int) -> None:
    """Rows read under one split that belong to another (rows held out of train for validation)."""
    self.part(from_split, scenario).rows_read -= int(n)
    self.part(to_split, scenario).rows_read += int(n)

  def drop(self, split: str, scenario: str, reason: str, n: int = 1) -> None:
    if n:
      self.part(split, scenario).rows_dropped[reason] += int(n)

  def handled(self, split: str, scenario: str, kind: str, column: str, n: int) -> None:
    if n:
      self.part(split, scenario).handled[kind][column] += int(n)

  def keep(self, split: str, scenario: str, n: int, positives: Dict[str, int]) -> None:
    p = self.part(split, scenario)
    p.rows_kept += int(n)
    for task, count in positives.items():
      p.label_positives[task] += int(count)

  def splits(self):
    return sorted({s for s, _ in self._parts})

  def scenarios(self, split: str):
    return sorted(sc for s, sc in self._parts if s == split)

  def check(self) -> None:
    for (split, scenario), p in self._parts.items():
      dropped = sum(p.rows_dropped.values())
      if p.rows_read != p.rows_kept + dropped:
        raise AssertionError(
            f'row accounting broken for {split}/{scenario}: read {p.rows_read} != kept {p.rows_kept} + '
            f'dropped {dropped}')

  def to_json(self, tasks) -> dict:
    self.check()
    out = {}
    for split in self.splits():
      out[split] = {sc: self._parts[(split, sc)].to_json(tasks) for sc in self.scenarios(split)}
    totals = collections.Counter()
    dropped = collections.Counter()
    for p in self._parts.values():
      totals['rows_read'] += p.rows_read
      totals['rows_kept'] += p.rows_kept
      dropped.update(p.rows_dropped)
    return {
        'partitions': out,
        'totals': {**totals, 'rows_dropped': dict(sorted(dropped.items()))},
        'files': dict(sorted(self.files.items())),
    }
