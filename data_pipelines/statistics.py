"""Pass one of `prepare`: vocabularies and normalization statistics from the train split, streamed.

Statistics are kept per scope: one shared scope (needed for globally shared embeddings) or one per scenario
(nothing about a scenario's categories leaves it). Only counts and moments are held, never rows.
"""

from __future__ import annotations

import collections
import json
import os
from typing import Dict, Optional, Sequence, Tuple

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

  def add(self, frame: pd.DataFrame, rows: Optional[np.ndarray] = None, numerical: Optional[np.ndarray] = None,
          codes: Optional[Dict[str, list]] = None) -> None:
    """Counts and moments of the rows at positions `rows` of `frame` (None: every row). `numerical`: the
    frame's numerical columns, `sources.column_block(frame, source.numerical)`, when the caller has them;
    `codes`: {scope: per categorical feature `self.counts[scope][feature].codes(frame[feature])`}, when the
    caller has them (prepare, which writes them)."""
    if numerical is None and self.source.numerical:
      numerical = sources.column_block(frame, self.source.numerical)
    # One row per feature, each summed as one contiguous array (the same sums, bit for bit, as per column).
    block = numerical.T if self.source.numerical else None
    for scenario, positions in sources.scenario_rows(frame, rows):
      key = spec_lib.SHARED_SCOPE if self.scope == 'shared' else scenario
      self.rows[scenario] += len(frame) if positions is None else len(positions)
      if not self.hash_bins:
        coded = codes[key] if codes is not None else None
        for j, c in enumerate(self.source.categorical):
          counts = self.counts[key][c]
          counts.count(*(coded[j] if coded is not None else counts.codes(frame[c])), positions)
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
  """The values of one feature in one scope, each numbered in the order first met, and how often the train rows
  held each. The numbers are the provisional ids prepare writes before the vocabulary exists (provisional.py),
  so a chunk's values are looked up once for both: counting them by pandas value counts per chunk, merged
  every 32 chunks, was as much of the GIL's time as the lookup (1M AliExpress-layout rows)."""

  def __init__(self):
    self._ids: Dict = {}
    self._counts = np.zeros(0, np.int64)  # by id; grown as values are met

  def codes(self, values: pd.Series) -> Tuple[np.ndarray, np.ndarray]:
    """(code of each row, [k] int32: the id of each code), each distinct value looked up once; new values are
    numbered on. A categorical's codes are its own (its unused categories get ids too). A canonical frame holds
    no missing value (sources.MISSING_CATEGORY stands for one), so every code is an index into the ids."""
    if isinstance(values.dtype, pd.CategoricalDtype):
      codes, distinct = values.cat.codes.to_numpy(), values.cat.categories.tolist()
    else:
      codes, uniques = pd.factorize(values.to_numpy(), use_na_sentinel=False)
      distinct = uniques.tolist()
    ids = self._ids
    return codes, np.fromiter((ids.setdefault(v, len(ids)) for v in distinct), np.int32, len(distinct))

  def count(self, codes: np.ndarray, ids: np.ndarray, rows: Optional[np.ndarray] = None) -> None:
    """Counts the rows at positions `rows` (None: every row) of a chunk whose `codes` returned (codes, ids)."""
    if len(self._counts) < len(self._ids):
      self._counts = np.concatenate([self._counts, np.zeros(max(len(self._ids), 2 * len(self._counts))
                                                             - len(self._counts), np.int64)])
    self._counts[ids] += np.bincount(codes if rows is None else codes[rows], minlength=len(ids))

  def add(self, values: pd.Series, rows: Optional[np.ndarray] = None) -> None:
    """Counts the values at positions `rows` (None: every value)."""
    self.count(*self.codes(values), rows)

  def values(self) -> list:
    """Every value met, counted or not, in id order."""
    return list(self._ids)

  def id_of(self, value) -> Optional[int]:
    return self._ids.get(value)

  def items(self):
    """(value, count) pairs, as Python objects, of the values counted at least once."""
    values, n = self.arrays()
    return zip(values.tolist(), n.tolist())

  def arrays(self):
    """(values [k] object, their counts [k] int64) of the values counted at least once, in id order."""
    counted = np.flatnonzero(self._counts[:len(self._ids)])
    values = np.empty(len(self._ids), dtype=object)
    values[:] = self.values()
    return values[counted], self._counts[counted]


def _json_lines(values) -> list:
  """Each value as `json.dumps` writes it, one per line; a string by json's own C encoder, which `json.dumps`
  calls after some Python (half the time of writing 100,000 vocabulary lines)."""
  return [(_JSON_STRING(v) if isinstance(v, str) else json.dumps(v)) + '\n' for v in values]


_JSON_STRING = json.encoder.encode_basestring_ascii  # what json.dumps(str) returns, with its defaults


def _file_name(name: str) -> str:
  return 'shared' if name == spec_lib.SHARED_SCOPE else spec_lib.safe_directory_name(name)
