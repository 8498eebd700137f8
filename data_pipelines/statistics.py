"""Pass one of `prepare`: vocabularies and normalization statistics from the train split, streamed.

Statistics are kept per scope: one shared scope (needed for globally shared embeddings) or one per scenario
(nothing about a scenario's categories leaves it). Only counts and moments are held, never rows.
"""

from __future__ import annotations

import collections
import json
import os
from typing import Dict, Optional, Sequence

import numpy as np
import pandas as pd

from data_pipelines import sources
from data_pipelines import spec as spec_lib

VOCAB_DIR = 'vocabularies'


TRANSFORMED = ('log_standard',)  # the normalizations whose transform is not the identity


def transform(values: np.ndarray, normalization: str) -> np.ndarray:
  """The value transform before standardization; serving applies the same."""
  if normalization == 'log_standard':
    return np.sign(values) * np.log1p(np.abs(values))
  return values


class StatisticsBuilder:

  def __init__(self, source: sources.Source, scope: str, min_count: int = 1, max_vocabulary_size: int = 0,
               hash_bins: int = 0):
    if scope not in ('shared', 'scenario'):
      raise ValueError(f'statistics scope must be shared or scenario, got {scope!r}')
    for name, how in source.normalization.items():
      if how not in spec_lib.NORMALIZATIONS:
        raise ValueError(f'normalization of {name!r} must be one of {spec_lib.NORMALIZATIONS}, got {how!r}')
    self.source, self.scope = source, scope
    self.min_count, self.max_vocabulary_size, self.hash_bins = min_count, max_vocabulary_size, hash_bins
    self.counts: Dict[str, Dict[str, ValueCounts]] = collections.defaultdict(
        lambda: collections.defaultdict(ValueCounts))
    self.moments: Dict[str, Dict[str, np.ndarray]] = collections.defaultdict(dict)  # scope -> name -> [n, s, ss]
    self.rows: Dict[str, int] = collections.Counter()  # train rows kept per scenario
    # feature -> scope -> what the vocabulary kept of the train values, and why the rest share the OOV bucket
    self.vocabulary_report: Dict[str, Dict[str, dict]] = collections.defaultdict(dict)

  def add(self, frame: pd.DataFrame, rows: Optional[np.ndarray] = None, numerical: Optional[np.ndarray] = None
          ) -> None:
    """Counts and moments of the rows at positions `rows` of `frame` (None: every row). `numerical`: the
    frame's numerical columns, `sources.column_block(frame, source.numerical)`, when the caller has them."""
    if numerical is None and self.source.numerical:
      numerical = sources.column_block(frame, self.source.numerical)
    # One row per feature, each summed as one contiguous array (the same sums, bit for bit, as per column).
    block = numerical.T if self.source.numerical else None
    for scenario, positions in sources.scenario_rows(frame, rows):
      key = spec_lib.SHARED_SCOPE if self.scope == 'shared' else scenario
      self.rows[scenario] += len(frame) if positions is None else len(positions)
      if not self.hash_bins:
        for c in self.source.categorical:
          self.counts[key][c].add(frame[c], positions)
      if not self.source.numerical:
        continue
      values = np.ascontiguousarray(block) if positions is None else np.take(block, positions, axis=1)
      for i, c in enumerate(self.source.numerical):
        v = transform(values[i], self.source.normalization[c])
        m = self.moments[key].setdefault(c, np.zeros(3))
        m += (v.size, v.sum(), np.square(v).sum())

  def build_spec(self, data_dir: str, scenarios: Sequence[str]) -> spec_lib.DatasetSpec:
    """Writes the vocabulary files and returns the spec for the given (non-empty) scenarios."""
    scopes = [spec_lib.SHARED_SCOPE] if self.scope == 'shared' else list(scenarios)
    categorical = []
    train_rows = sum(self.rows.values())
    for c in self.source.categorical:
      feature = spec_lib.CategoricalFeature(name=c)
      if self.hash_bins:
        feature.hash_bins = self.hash_bins
        feature.train_rows_per_value = train_rows / self.hash_bins
      else:
        for key in scopes:
          vocab = self._vocabulary(self.counts[key][c], self.vocabulary_report[c].setdefault(key, {}))
          rel = os.path.join(VOCAB_DIR, _file_name(key), f'{_file_name(c)}.txt')
          os.makedirs(os.path.dirname(os.path.join(data_dir, rel)), exist_ok=True)
          with open(os.path.join(data_dir, rel), 'w', encoding='utf-8') as f:
            f.writelines(_json_lines(vocab))
          feature.vocabulary_files[key] = rel
          feature.vocabulary_size = max(feature.vocabulary_size, len(vocab) + 1)
        values = sum(self.vocabulary_report[c][key]['kept'] for key in scopes)
        feature.train_rows_per_value = train_rows / values if values else float(train_rows)
      categorical.append(feature)
    numerical = []
    for c in self.source.numerical:
      stats = {}
      for key in scopes:
        n, s, ss = self.moments[key].get(c, np.zeros(3))
        mean = s / n if n else 0.0
        std = float(np.sqrt(max(ss / n - mean * mean, 0.0))) if n else 1.0
        stats[key] = [float(mean), std if std > 1e-12 else 1.0]  # a constant column stays constant (0)
      numerical.append(spec_lib.NumericalFeature(c, self.source.normalization[c], stats))
    taken = []
    scenario_specs = []
    for i, name in enumerate(scenarios):
      directory = spec_lib.safe_directory_name(name, taken)
      taken.append(directory)
      scenario_specs.append(spec_lib.Scenario(name=name, index=i, directory=directory))
    return spec_lib.DatasetSpec(
        dataset=self.source.dataset, categorical=categorical, numerical=numerical, tasks=list(self.source.tasks),
        scenario_column=self.source.scenario_column, scenarios=scenario_specs, splits=list(self.source.splits),
        statistics_scope=self.scope, has_true_probabilities=self.source.has_true_probabilities)

  def _vocabulary(self, counts: 'ValueCounts', report: dict) -> list:
    """The kept values, most frequent first, ties by value (deterministic). On whole arrays: sorting 100,000
    values as (count, value) pairs in Python was a third of the time between prepare's passes, when nothing
    else runs."""
    values, n = counts.arrays()
    present = values != sources.MISSING_CATEGORY
    values, n = values[present], n[present]
    frequent = n >= self.min_count
    kept_values, kept_n = values[frequent], n[frequent]
    by_value = np.argsort(kept_values, kind='stable')  # the values are distinct: a total order
    order = by_value[np.argsort(-kept_n[by_value], kind='stable')]
    over = max(len(order) - self.max_vocabulary_size, 0) if self.max_vocabulary_size else 0
    order = order[: len(order) - over]
    report.update(distinct=len(values), kept=len(order), below_min_count=int((~frequent).sum()),
                  over_max_vocabulary_size=over, train_rows_to_oov=int(n.sum() - kept_n[order].sum()))
    return kept_values[order].tolist()


class ValueCounts:
  """How often each value of one column occurs, summed over chunks by pandas. A Counter, which adds each
  chunk's values in a Python loop, made `add` the largest holder of the GIL in the statistics pass (py-spy
  --gil on 1M AliExpress-layout rows), and the GIL is what that pass waits on."""

  MERGE_EVERY = 32  # chunks' counts kept apart before they are summed: memory stays within 32 chunks' values

  def __init__(self):
    self._parts = []

  def add(self, values: pd.Series, rows: Optional[np.ndarray] = None) -> None:
    """Counts the values at positions `rows` (None: every value)."""
    if isinstance(values.dtype, pd.CategoricalDtype):  # counted by code; a categorical lists unused values too
      codes = values.cat.codes.to_numpy()
      codes = codes if rows is None else codes[rows]
      n = np.bincount(codes[codes >= 0], minlength=len(values.cat.categories))
      used = np.flatnonzero(n)
      part = pd.Series(n[used], index=values.cat.categories[used])
    else:
      part = (values if rows is None else values.iloc[rows]).value_counts(sort=False)
    self._parts.append(part)
    if len(self._parts) >= self.MERGE_EVERY:
      self._parts = [self._total()]

  def _total(self) -> pd.Series:
    if len(self._parts) == 1:
      return self._parts[0]
    return pd.concat(self._parts).groupby(level=0, sort=False).sum()

  def items(self):
    """(value, count) pairs, as Python objects, in no particular order."""
    values, n = self.arrays()
    return zip(values.tolist(), n.tolist())

  def arrays(self):
    """(values [k] object, their counts [k] int64), each value once, in no particular order."""
    if not self._parts:
      return np.array([], dtype=object), np.array([], dtype=np.int64)
    total = self._total()
    return total.index.to_numpy(dtype=object), total.to_numpy().astype(np.int64)


def _json_lines(values) -> list:
  """Each value as `json.dumps` writes it, one per line; a string by json's own C encoder, which `json.dumps`
  calls after some Python (half the time of writing 100,000 vocabulary lines)."""
  return [(_JSON_STRING(v) if isinstance(v, str) else json.dumps(v)) + '\n' for v in values]


_JSON_STRING = json.encoder.encode_basestring_ascii  # what json.dumps(str) returns, with its defaults


def _file_name(name: str) -> str:
  return 'shared' if name == spec_lib.SHARED_SCOPE else spec_lib.safe_directory_name(name)
