"""What every reader shares: the `Source` interface, chunked file reading and row validation.

A source turns its files into *canonical frames*: pandas chunks with a `SCENARIO` column, the categorical
features as strings (a pandas categorical of them where pyarrow parsed the file), the numerical features as
floats, one 0/1 column per task and, for synthetic data, the true probability per task. Chunks keep memory
flat however large the input is.
"""

from __future__ import annotations

import abc
import dataclasses
import os
import warnings
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from data_pipelines import arrow_csv
from data_pipelines import spec as spec_lib
from data_pipelines.accounting import RowAccounting
from data_pipelines.errors import InputError

SCENARIO = '__scenario__'
# A chunk and the rows of each split in it: [(split, positions, or None for every row)].
ChunkParts = Tuple[pd.DataFrame, List[Tuple[str, Optional[np.ndarray]]]]
TRUE_PROB_PREFIX = '__true__'
MISSING_CATEGORY = '<missing>'  # never in a vocabulary, so a missing categorical value lands in the OOV bucket
BAD_ROW_POLICIES = ('error', 'drop')

# Drop reasons, in priority order: a row bad in several ways is counted once, under the first.
MISSING_SCENARIO = 'missing_scenario'
MISSING_LABEL = 'missing_label'
LABEL_NOT_BINARY = 'label_not_binary'
MISSING_NUMERICAL = 'missing_numerical_value'
NON_NUMERIC = 'non_numeric_value'
_REASON_ORDER = (MISSING_SCENARIO, MISSING_LABEL, LABEL_NOT_BINARY, MISSING_NUMERICAL, NON_NUMERIC)


def true_prob_column(task: str) -> str:
  return TRUE_PROB_PREFIX + task


@dataclasses.dataclass
class ReadContext:
  """Where rows are counted and what to do with a bad one."""

  split: str
  accounting: RowAccounting
  on_bad_row: str = 'error'
  chunk_rows: int = 50_000
  arrow_csv: bool = True  # read clean CSV rows with pyarrow (arrow_csv.py); pandas reads the rest

  def __post_init__(self):
    if self.on_bad_row not in BAD_ROW_POLICIES:
      raise ValueError(f'on_bad_row must be one of {BAD_ROW_POLICIES}, got {self.on_bad_row!r}')


class Source(abc.ABC):
  """A dataset in its source format. Subclasses set the schema attributes and implement `chunks`."""

  dataset: str
  categorical: List[str]
  numerical: List[str]
  normalization: Dict[str, str]  # numerical feature -> one of spec.NORMALIZATIONS
  tasks: List[spec_lib.Task]
  scenario_column: str
  splits: List[str]
  has_true_probabilities: bool = False

  @abc.abstractmethod
  def chunks(self, split: str, ctx: ReadContext) -> Iterator[pd.DataFrame]:
    """Yields canonical frames of one split."""

  def split_chunks(self, splits: Sequence[str],
                   contexts: Dict[str, ReadContext]) -> Iterator[Tuple[str, pd.DataFrame]]:
    """(split, canonical frame) for every chunk of `splits`, each split read with its context. A source whose
    splits share files overrides this to read them once."""
    for split in splits:
      for frame in self.chunks(split, contexts[split]):
        yield split, frame

  def split_parts(self, splits: Sequence[str], contexts: Dict[str, ReadContext]) -> Iterator[ChunkParts]:
    """(chunk, [(split, its rows' positions or None for all)]) for every chunk of `splits`: a source whose
    splits share a chunk (a held-out valid split) names each split's rows instead of copying them apart, so
    that their columns are gathered once, where they are encoded."""
    for split, frame in self.split_chunks(splits, contexts):
      yield frame, [(split, None)]

  def input_files(self) -> List[str]:
    """Every file the source will read; checked before any work starts."""
    return []

  def check_files(self) -> None:
    for path in self.input_files():
      if not os.path.isfile(path):
        raise InputError('input file not found', path=path)


def column_block(frame: pd.DataFrame, names: Sequence[str], dtype=np.float64) -> np.ndarray:
  """[n, len(names)] of `frame`'s columns, column-major, filled column by column: `frame[names].to_numpy()`
  first gathers the columns into a new frame, which held the GIL for 0.7 s of a prepare of 1M AliExpress rows
  (py-spy --gil)."""
  out = np.empty((len(frame), len(names)), dtype, order='F')
  for j, c in enumerate(names):
    out[:, j] = frame[c].to_numpy()
  return out


def scenario_rows(frame: pd.DataFrame, rows: Optional[np.ndarray] = None
                  ) -> Iterator[Tuple[str, Optional[np.ndarray]]]:
  """(scenario, positions of its rows) among `rows` (positions in `frame`, ascending; None: every row), in order
  of first appearance. A chunk of one scenario (a file per scenario, as AliExpress has) keeps `rows` as they
  are: None stays None, so nothing is gathered."""
  column = frame[SCENARIO]
  if isinstance(column.dtype, pd.CategoricalDtype) and len(column.cat.categories) == 1:
    if (rows is None or len(rows)) and len(column) and (column.cat.codes.to_numpy() == 0).all():
      yield column.cat.categories[0], rows
      return
  scenarios = column.to_numpy()
  if rows is not None:
    scenarios = scenarios[rows]
  if not len(scenarios):
    return
  if (scenarios == scenarios[0]).all():
    yield scenarios[0], rows
    return
  codes, names = pd.factorize(scenarios)  # in order of first appearance
  for code, name in enumerate(names):
    positions = np.flatnonzero(codes == code)
    yield name, positions if rows is None else rows[positions]


def take_rows(frame: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
  """The rows of `frame` where `rows` (a mask, or positions) is True, indexed 0..n-1. (`reset_index` would copy
  them a second time.)"""
  part = frame[rows] if rows.dtype == bool else frame.take(rows)
  part.index = pd.RangeIndex(len(part))
  return part


# --------------------------------------------------------------------------------------------------------------
# Reading files in chunks.


def read_table_chunks(
    path: str,
    *,
    chunk_rows: int,
    header: bool = True,
    names: Optional[Sequence[str]] = None,
    sep: str = ',',
    expected_columns: Optional[int] = None,
    text_columns: Optional[Sequence[str]] = None,
    fast: Optional[arrow_csv.ArrowChunks] = None,
) -> Iterator[Tuple[pd.DataFrame, int]]:
  """Yields (chunk, file line number of its first row); Parquet files are read by row group.

  Validation, not the parser, decides what is bad: `text_columns` (default: every column) are read as
  strings (empty -> NaN); the parser types the others per chunk only where every value of the chunk is a plain
  number, and leaves a column with any other text ('oops', 'nan', 'inf') as strings, so a bad value still
  reaches validation as written. Typing numbers in the parser is what makes reading fast: a million
  strings per numerical column cost more than the rest of prepare.

  With `fast` (pyarrow's reader of the file, from `arrow_reader` with the same settings, perhaps started
  already), pyarrow reads the columns it was given first, text as categoricals, numbers and labels as float64,
  for as long as the rows are clean (arrow_csv.py); pandas reads the rest.
  """
  if not os.path.isfile(path):
    raise InputError('input file not found', path=path)
  if _is_parquet(path):
    yield from _parquet_chunks(path, chunk_rows)
    return
  first_line = 2 if header else 1
  done = 0  # rows read by pyarrow
  if fast is not None:
    yield from fast
    if fast.complete:
      return
    done = fast.rows_done
  seen_any = done > 0
  first_line += done
  try:
    reader = pd.read_csv(
        path, sep=sep, header=0 if header else None, names=names,
        dtype=str if text_columns is None else {c: str for c in text_columns}, na_values=[''],
        keep_default_na=False, skipinitialspace=True, chunksize=chunk_rows, compression='infer',
        index_col=False, skiprows=(range(1, done + 1) if header else done) if done else None)
    while True:
      with warnings.catch_warnings():
        # pandas only warns when the first data row has more fields than the header: an error here.
        warnings.simplefilter('error', pd.errors.ParserWarning)
        chunk = next(reader, None)
      if chunk is None:
        break
      if chunk.empty:
        continue
      if not seen_any and expected_columns is not None and chunk.shape[1] != expected_columns:
        raise InputError(
            f'has {chunk.shape[1]} columns', path=path, row=first_line, expected=f'{expected_columns} columns',
            hint=f'is the separator {sep!r}?')
      seen_any = True
      yield chunk, first_line
      first_line += len(chunk)
  except pd.errors.EmptyDataError:
    raise InputError('file is empty', path=path, expected='a header and data rows' if header else 'data rows')
  except (pd.errors.ParserError, pd.errors.ParserWarning) as e:
    raise InputError(f'cannot be parsed: {str(e).strip()}', path=path,
                     hint=f'rows must have the same number of {sep!r}-separated fields') from None
  except UnicodeDecodeError as e:
    raise InputError(f'is not UTF-8 text: {e}', path=path) from None
  if not seen_any:
    raise InputError('file has no data rows', path=path)


def arrow_reader(path: str, *, chunk_rows: int, header: bool = True, names: Optional[Sequence[str]] = None,
                 sep: str = ',', arrow_columns: Optional[Dict[str, str]] = None
                 ) -> Optional[arrow_csv.ArrowChunks]:
  """The fast reader `read_table_chunks` would use for `path` (not started), or None: pandas reads it all."""
  if not arrow_columns or _is_parquet(path):
    return None
  return arrow_csv.ArrowChunks(path, chunk_rows=chunk_rows, header=header, names=names, sep=sep,
                               columns=arrow_columns)


def _is_parquet(path: str) -> bool:
  return path.endswith('.parquet') or path.endswith('.pq')


def _parquet_chunks(path: str, chunk_rows: int) -> Iterator[Tuple[pd.DataFrame, int]]:
  import pyarrow.parquet as pq  # pylint: disable=g-import-not-at-top
  try:
    pf = pq.ParquetFile(path)
  except Exception as e:  # pyarrow raises several types for corrupt files
    raise InputError(f'is not a readable Parquet file: {e}', path=path) from None
  row = 1
  seen_any = False
  for batch in pf.iter_batches(batch_size=chunk_rows):
    df = batch.to_pandas()
    seen_any = seen_any or len(df) > 0
    yield df, row
    row += len(df)
  if not seen_any:
    raise InputError('file has no data rows', path=path)


def require_columns(df: pd.DataFrame, columns: Sequence[str], path: str) -> None:
  missing = [c for c in columns if c not in df.columns]
  if missing:
    found = list(df.columns)
    raise InputError(
        f'missing column(s) {missing}', path=path,
        expected=f'columns {list(columns)}; found {found[:12]}{"..." if len(found) > 12 else ""}',
        hint='check the separator and the header row' if len(found) == 1 else None)


def seeded_split_mask(n: int, rng: np.random.Generator, test_fraction: float) -> np.ndarray:
  """True for rows that go to the test split. The caller keeps one generator per pass over a file."""
  return rng.random(n) < test_fraction


# --------------------------------------------------------------------------------------------------------------
# Validating a chunk into a canonical frame.


def _positional(values: pd.Series) -> pd.Series:
  """`values` indexed 0..n-1, as the builder's columns are; copied only when its index is another."""
  index = values.index
  if isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1:
    return values
  return values.reset_index(drop=True)


class ChunkBuilder:
  """Builds one canonical frame from a raw chunk, recording every bad value with its row and column.

  With `on_bad_row='error'` the first bad value raises an `InputError` naming file, row and column; with
  'drop' the row is dropped and counted under its reason, per scenario.
  """

  def __init__(self, raw: pd.DataFrame, path: str, first_row: int, ctx: ReadContext,
               row_numbers: Optional[np.ndarray] = None):
    self.raw, self.path, self.ctx = raw.set_axis(pd.RangeIndex(len(raw)), copy=False), path, ctx
    # File row number of each raw row (they are not contiguous after a seeded split).
    self.row_numbers = first_row + np.arange(len(raw)) if row_numbers is None else np.asarray(row_numbers)
    self.columns: Dict[str, pd.Series] = {}
    self._bad: List[Tuple[str, np.ndarray, str, str]] = []  # (reason, mask, column, expected)
    self._excluded: List[Tuple[str, np.ndarray]] = []  # dropped by choice, whatever the bad-row policy
    self._handled: List[Tuple[str, np.ndarray, str]] = []  # (kind, mask, column)
    # Columns the fast CSV path checked (arrow_csv.CHECKED): finite float64 numbers, labels 0.0 or 1.0.
    checked = raw.attrs.get(arrow_csv.CHECKED, {})
    self._checked_numbers, self._checked_labels = set(checked.get('number', ())), set(checked.get('label', ()))

  def _flag(self, reason: str, mask: np.ndarray, column: str, expected: str) -> None:
    if mask.any():
      self._bad.append((reason, mask, column, expected))

  def categorical(self, out: str, values: pd.Series) -> None:
    """Text as written, or a pandas categorical of it (the fast CSV path's); missing -> MISSING_CATEGORY."""
    values = _positional(values)
    missing = values.isna().to_numpy()
    if missing.any():
      self._handled.append(('missing_categorical_to_oov', missing, out))
    if isinstance(values.dtype, pd.CategoricalDtype):
      if missing.any():
        if MISSING_CATEGORY not in values.cat.categories:
          values = values.cat.add_categories([MISSING_CATEGORY])
        values = values.fillna(MISSING_CATEGORY)
      self.columns[out] = values
    else:
      self.columns[out] = values.astype(str).where(~missing, MISSING_CATEGORY)

  def numerical(self, out: str, values: pd.Series, column: Optional[str] = None) -> None:
    values = _positional(values)
    column = column or out
    if column in self._checked_numbers and values.dtype == np.float64:
      self.columns[out] = values
      return
    number = pd.to_numeric(values, errors='coerce').astype('float64', copy=False)
    missing = values.isna().to_numpy()
    non_numeric = (~missing) & ~np.isfinite(number.to_numpy())
    self._flag(MISSING_NUMERICAL, missing, column, 'a number')
    self._flag(NON_NUMERIC, non_numeric, column, 'a finite number')
    self.columns[out] = number

  def binary(self, out: str, values: pd.Series, column: Optional[str] = None) -> pd.Series:
    """A 0/1 label column; returns it for derived labels (e.g. CTCVR = click AND conversion)."""
    values = _positional(values)
    column = column or out
    if column in self._checked_labels and values.dtype == np.float64:
      self.columns[out] = label = values.astype('int8')
      return label
    number = pd.to_numeric(values, errors='coerce')
    missing = values.isna().to_numpy()
    not_binary = (~missing) & ~number.isin([0, 1]).to_numpy()
    self._flag(MISSING_LABEL, missing, column, 'a label 0 or 1')
    self._flag(LABEL_NOT_BINARY, not_binary, column, 'a label 0 or 1')
    label = number.where(number.isin([0, 1]), 0).astype('int8')
    self.columns[out] = label
    return label

  def label(self, out: str, label: pd.Series) -> None:
    """A label the source derived and validated itself."""
    self.columns[out] = _positional(label).astype('int8')

  def flag(self, reason: str, mask: np.ndarray, column: str, expected: str) -> None:
    """Lets a source flag a format-specific bad value (e.g. an AliExpress raw label outside {0, 1, 2})."""
    self._flag(reason, np.asarray(mask, bool), column, expected)

  def exclude(self, reason: str, mask: np.ndarray) -> None:
    """Drops rows by the user's choice (e.g. an unselected scenario); counted, never an error."""
    mask = np.asarray(mask, bool)
    if mask.any():
      self._excluded.append((reason, mask))

  def note(self, kind: str, mask: np.ndarray, column: str) -> None:
    """Counts a handled-and-kept event (e.g. purchase without click) in the summary."""
    mask = np.asarray(mask, bool)
    if mask.any():
      self._handled.append((kind, mask, column))

  def build(self, scenario, scenario_column: str) -> pd.DataFrame:
    """Applies the bad-row policy, counts every row under its scenario, returns the kept rows.

    `scenario` is each row's (a Series) or, for a file of one scenario, its name: then nothing is looked up
    per row (about half a second of pass 1 per million rows)."""
    n = len(self.raw)
    if isinstance(scenario, str):
      groups = {scenario: np.arange(n)}
    else:
      scenario = pd.Series(np.asarray(scenario, dtype=object))
      missing_scenario = scenario.isna().to_numpy()
      self._flag(MISSING_SCENARIO, missing_scenario, scenario_column, 'a scenario value')
      scenario = scenario.astype(str).where(~missing_scenario, RowAccounting.UNKNOWN_SCENARIO).to_numpy()
      groups = pd.Series(np.arange(n)).groupby(scenario).groups
    rank = {r: i for i, r in enumerate(_REASON_ORDER)}
    bad = sorted(self._bad, key=lambda b: rank.get(b[0], -1))  # format-specific reasons first
    excluded = np.zeros(n, bool)
    for _, mask in self._excluded:
      excluded |= mask
    if self.ctx.on_bad_row == 'error':
      for reason, mask, column, expected in bad:
        hits = np.flatnonzero(mask & ~excluded)
        if hits.size:
          i = int(hits[0])
          value = self.raw[column].iloc[i] if column in self.raw.columns else None
          raise InputError(f'bad value ({reason})', path=self.path, row=int(self.row_numbers[i]),
                           column=column, value=value, expected=expected,
                           hint='pass --on_bad_row=drop to drop and count such rows instead')
    keep = np.ones(n, bool)
    first_reason = np.empty(n, dtype=object)
    for reason, mask, _, _ in [(r, m, None, None) for r, m in self._excluded] + bad:
      first_reason[mask & keep] = reason
      keep &= ~mask
    acct, split = self.ctx.accounting, self.ctx.split
    for sc, idx in groups.items():
      idx = np.asarray(idx)
      acct.read(split, sc, len(idx))
      dropped = ~keep[idx]
      if dropped.any():
        for reason, count in pd.Series(first_reason[idx][dropped]).value_counts().items():
          acct.drop(split, sc, reason, count)
      for kind, mask, column in self._handled:
        acct.handled(split, sc, kind, column, int((mask[idx] & keep[idx]).sum()))
    frame = pd.DataFrame(self.columns, copy=False)
    frame.index = self.raw.index
    if isinstance(scenario, str):  # the file's: codes of one byte, not a string object per row
      scenario = pd.Categorical.from_codes(np.zeros(len(frame), np.int8), categories=[scenario])
    frame[SCENARIO] = scenario
    return frame if keep.all() else take_rows(frame, keep)
