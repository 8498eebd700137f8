"""A source made of CSV or Parquet tables: the common ground of the census, Ali-CCP, Tenrec and csv readers.

Each file belongs to one split, or to none, in which case a seeded draw sends each row to train or test.
The scenario of a row comes from a column, or from the file (one file per scenario).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Dict, Iterator, List, Optional, Sequence

import numpy as np
import pandas as pd

from data_pipelines import sources
from data_pipelines import spec as spec_lib

# Sets the task labels of a chunk on the builder, validating them.
LabelFn = Callable[[sources.ChunkBuilder, pd.DataFrame], None]
SEEDED_SPLITS = ['train', 'test']
SCENARIO_NOT_SELECTED = 'scenario_not_selected'


@dataclasses.dataclass
class TableFile:
  path: str
  split: Optional[str] = None  # None: rows are split train/test by a seeded draw
  scenario: Optional[str] = None  # None: read from the scenario column
  header: bool = True
  names: Optional[Sequence[str]] = None  # column names for a file without a header


@dataclasses.dataclass(frozen=True)
class SplitPolicy:
  seed: int = 0
  test_fraction: float = 0.2


def binary_labels(columns: Dict[str, str]) -> LabelFn:
  """Tasks whose labels are 0/1 source columns: {task: column}."""

  def fn(b: sources.ChunkBuilder, raw: pd.DataFrame) -> None:
    for task, column in columns.items():
      b.binary(task, raw[column], column)

  return fn


def ctr_ctcvr_labels(click: str, conversion: str) -> LabelFn:
  """CTR = click; CTCVR = click AND conversion; a conversion without a click is counted, not trusted."""

  def fn(b: sources.ChunkBuilder, raw: pd.DataFrame) -> None:
    c = b.binary('ctr', raw[click], click)
    v = b.binary('__conversion', raw[conversion], conversion)
    b.columns.pop('__conversion')
    b.note(f'{conversion}_without_{click}', (v == 1) & (c == 0), conversion)
    b.label('ctcvr', c & v)

  return fn


class TableSource(sources.Source):

  def __init__(
      self,
      *,
      dataset: str,
      files: Sequence[TableFile],
      categorical: Sequence[str],
      numerical: Sequence[str],
      tasks: Sequence[spec_lib.Task],
      labels: LabelFn,
      label_columns: Sequence[str],
      scenario_column: str,
      normalization: Optional[Dict[str, str]] = None,
      scenarios: Sequence[str] = (),
      split_policy: SplitPolicy = SplitPolicy(),
      sep: str = ',',
      numeric_labels: bool = False,
  ):
    """`numeric_labels`: `labels` reads its columns with `to_numeric` (binary_labels, ctr_ctcvr_labels), so
    the fast CSV path (arrow_csv.py) may hand them over as numbers; a source whose labels are text is read by
    pandas only."""
    self.dataset = dataset
    self.files = list(files)
    self.categorical, self.numerical = list(categorical), list(numerical)
    self.tasks = list(tasks)
    self._labels = labels
    self._label_columns = list(label_columns)
    self.scenario_column = scenario_column
    self.normalization = {n: (normalization or {}).get(n, 'standard') for n in self.numerical}
    self._selected = set(scenarios)
    self._split_policy = split_policy
    self._sep = sep
    self._numeric_labels = numeric_labels
    overlap = set(self.categorical) & set(self.numerical)
    if overlap:
      raise ValueError(f'column(s) {sorted(overlap)} are both categorical and numerical')
    explicit = [f.split for f in self.files if f.split]
    self.splits = SEEDED_SPLITS if len(explicit) < len(self.files) else sorted(set(explicit), key=_split_order)
    if 'train' not in self.splits:
      raise ValueError(f'{dataset}: no train split among the input files ({[f.path for f in self.files]})')

  def input_files(self) -> List[str]:
    return [f.path for f in self.files]

  def chunks(self, split: str, ctx: sources.ReadContext) -> Iterator[pd.DataFrame]:
    files = [f for f in self.files if f.split is None or f.split == split]
    readers = [sources.arrow_reader(f.path, chunk_rows=ctx.chunk_rows, header=f.header, names=f.names,
                                    sep=self._sep, arrow_columns=self._arrow_columns(f)) if ctx.arrow_csv else None
               for f in files]
    for reader, following in zip(readers, readers[1:]):
      if reader is not None and following is not None:
        reader.then = following.start  # the next file parsed while this one's last chunks are checked
    try:
      for f, reader in zip(files, readers):
        yield from self._file_chunks(f, split, ctx, reader)
    finally:  # a reader started ahead whose file was never reached (a bad row stopped the read)
      for reader in readers:
        if reader is not None:
          reader.close()

  def _file_chunks(self, f: TableFile, split: str, ctx: sources.ReadContext, fast) -> Iterator[pd.DataFrame]:
    # One generator per pass over a file, so every pass draws the same split for every row.
    rng = np.random.default_rng([self._split_policy.seed, self.files.index(f)])
    required = self.categorical + self.numerical + self._label_columns
    if f.scenario is None:
      required = required + [self.scenario_column]
    for raw, first_row in sources.read_table_chunks(
        f.path, chunk_rows=ctx.chunk_rows, header=f.header, names=f.names, sep=self._sep,
        expected_columns=len(f.names) if f.names and not f.header else None,
        text_columns=self.categorical + self._label_columns + [self.scenario_column], fast=fast):
      sources.require_columns(raw, required, f.path)
      if f.split is None:
        in_split = sources.seeded_split_mask(len(raw), rng, self._split_policy.test_fraction)
        if split == 'train':
          in_split = ~in_split
        row_numbers = first_row + np.flatnonzero(in_split)
        raw = raw[in_split]
      else:
        row_numbers = None
      if raw.empty:
        continue
      ctx.accounting.files[f.path] += len(raw)
      yield self._frame(raw, f, first_row, row_numbers, ctx)

  def _arrow_columns(self, f: TableFile) -> Optional[Dict[str, str]]:
    """What the fast CSV path reads of `f` (every column the source needs, typed), or None: pandas only."""
    if not self._numeric_labels:
      return None
    columns = {c: 'text' for c in self.categorical + ([self.scenario_column] if f.scenario is None else [])}
    columns.update({c: 'number' for c in self.numerical})
    columns.update({c: 'label' for c in self._label_columns})
    return columns

  def _frame(self, raw, f: TableFile, first_row, row_numbers, ctx) -> pd.DataFrame:
    b = sources.ChunkBuilder(raw, f.path, first_row, ctx, row_numbers)
    raw = b.raw
    for c in self.categorical:
      b.categorical(c, raw[c])
    for c in self.numerical:
      b.numerical(c, raw[c])
    self._labels(b, raw)
    if f.scenario is not None:  # the file's scenario
      if self._selected and f.scenario not in self._selected:
        b.exclude(SCENARIO_NOT_SELECTED, np.ones(len(raw), bool))
      return b.build(f.scenario, self.scenario_column)
    scenario = raw[self.scenario_column].astype(object)
    if self._selected:
      b.exclude(SCENARIO_NOT_SELECTED, (scenario.notna() & ~scenario.isin(self._selected)).to_numpy())
    return b.build(scenario, self.scenario_column)


def _split_order(split: str) -> tuple:
  order = {'train': 0, 'valid': 1, 'val': 1, 'validation': 1, 'test': 2}
  return (order.get(split, 3), split)
