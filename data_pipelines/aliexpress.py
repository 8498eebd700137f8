"""AliExpress (Tianchi 74690): one scenario per country, tasks CTR and CTCVR.

Two layouts are read:
- processed: `<dir>/AliExpress_<CC>/{train,test}.csv` with columns `search_id, categorical_1..16,
  numerical_1..63, click, conversion` (the public multi-task benchmarks' preprocessing);
- raw: `<dir>/<CC>_user_{train,test}.csv` (33 columns, no header: search id + 32 user features) joined on the
  search id with `<dir>/<CC>_item_{train,test}.csv` (49 columns, no header: search id + 47 item features +
  label 0 impression / 1 click / 2 click and purchase). The raw files do not say which features are
  categorical: a feature is categorical when every value in the first chunk of the train file is an integer
  (`--raw_categorical_columns` overrides). The user table of one country is held in memory while its item rows
  stream past it.
"""

from __future__ import annotations

import os
import re
from typing import Dict, Iterator, List, Sequence

import numpy as np
import pandas as pd

from data_pipelines import sources
from data_pipelines import table
from data_pipelines import spec as spec_lib
from data_pipelines.errors import InputError

TASKS = [
    spec_lib.Task('ctr', 'click == 1'),
    spec_lib.Task('ctcvr', 'click == 1 and conversion == 1 (raw layout: label == 2)'),
]
SPLITS = ['train', 'test']
RAW_USER_COLUMNS = 33
RAW_ITEM_COLUMNS = 49
# The processed layout's feature columns (its files also hold search_id, click and conversion)
PROCESSED_CATEGORICAL = [f'categorical_{i}' for i in range(1, 17)]
PROCESSED_NUMERICAL = [f'numerical_{i}' for i in range(1, 64)]
_PROCESSED_DIR = re.compile(r'^AliExpress_([A-Za-z]+)$')
_RAW_USER = re.compile(r'^([A-Za-z]+)_user_train\.csv$')


def raw_user_names() -> List[str]:
  return ['search_id'] + [f'user_{i}' for i in range(1, RAW_USER_COLUMNS)]


def raw_item_names() -> List[str]:
  return ['search_id'] + [f'item_{i}' for i in range(1, RAW_ITEM_COLUMNS - 1)] + ['label']


def detect_layout(root: str) -> str:
  if not os.path.isdir(root):
    raise InputError('is not a directory', path=root, expected='an AliExpress data directory')
  names = os.listdir(root)
  if any(_PROCESSED_DIR.match(n) for n in names):
    return 'processed'
  if any(_RAW_USER.match(n) for n in names):
    return 'raw'
  raise InputError('holds no AliExpress data', path=root,
                   expected='AliExpress_<CC>/train.csv folders (processed layout) or <CC>_user_train.csv '
                            'files (raw Tianchi layout)')


def find_countries(root: str, layout: str) -> List[str]:
  pattern = _PROCESSED_DIR if layout == 'processed' else _RAW_USER
  countries = [m.group(1) for m in map(pattern.match, sorted(os.listdir(root))) if m]
  if not countries:
    raise InputError(f'holds no AliExpress data in the {layout} layout', path=root)
  return countries


def aliexpress_source(root: str, layout: str = 'auto', scenarios: Sequence[str] = (),
                      raw_categorical_columns: Sequence[str] = (), chunk_rows: int = 50_000) -> sources.Source:
  """The reader for either layout; scenarios (countries) default to all that are present."""
  layout = detect_layout(root) if layout == 'auto' else layout
  if layout not in ('processed', 'raw'):
    raise ValueError(f'layout must be auto, processed or raw, got {layout!r}')
  countries = find_countries(root, layout)
  if scenarios:
    unknown = sorted(set(scenarios) - set(countries))
    if unknown:
      raise InputError(f'scenario(s) {unknown} not found', path=root, expected=f'some of {countries}')
    countries = [c for c in countries if c in scenarios]
  if layout == 'raw':
    return RawAliExpressSource(root, countries, raw_categorical_columns, chunk_rows)
  return table.TableSource(
      dataset='aliexpress',
      files=[table.TableFile(os.path.join(root, f'AliExpress_{c}', f'{s}.csv'), split=s, scenario=c)
             for c in countries for s in SPLITS],
      categorical=list(PROCESSED_CATEGORICAL),
      numerical=list(PROCESSED_NUMERICAL),
      tasks=TASKS,
      labels=table.ctr_ctcvr_labels('click', 'conversion'),
      label_columns=['click', 'conversion'],
      scenario_column='country',
      numeric_labels=True,
  )


class RawAliExpressSource(sources.Source):
  """The raw Tianchi files: item rows joined with their search's user row."""

  dataset = 'aliexpress'
  scenario_column = 'country'
  splits = SPLITS

  def __init__(self, root: str, countries: Sequence[str], raw_categorical_columns: Sequence[str] = (),
               chunk_rows: int = 50_000):
    self.root, self.countries = root, list(countries)
    self.tasks = list(TASKS)
    self.categorical, self.numerical = self._feature_kinds(raw_categorical_columns, chunk_rows)
    self.normalization = {n: 'standard' for n in self.numerical}

  def _paths(self, country: str, split: str) -> Dict[str, str]:
    return {'user': os.path.join(self.root, f'{country}_user_{split}.csv'),
            'item': os.path.join(self.root, f'{country}_item_{split}.csv')}

  def input_files(self) -> List[str]:
    return [p for c in self.countries for s in self.splits for p in self._paths(c, s).values()]

  def _feature_kinds(self, categorical: Sequence[str], chunk_rows: int):
    features = raw_user_names()[1:] + raw_item_names()[1:-1]
    if categorical:
      unknown = sorted(set(categorical) - set(features))
      if unknown:
        raise InputError(f'--raw_categorical_columns names unknown column(s) {unknown}',
                         expected='names among user_1..user_32, item_1..item_47')
      chosen = set(categorical)
    else:
      paths = self._paths(self.countries[0], 'train')
      user, _ = next(sources.read_table_chunks(paths['user'], chunk_rows=chunk_rows, header=False,
                                               names=raw_user_names(), expected_columns=RAW_USER_COLUMNS))
      item, _ = next(sources.read_table_chunks(paths['item'], chunk_rows=chunk_rows, header=False,
                                               names=raw_item_names(), expected_columns=RAW_ITEM_COLUMNS))
      sample = pd.concat([user.iloc[:, 1:].reset_index(drop=True), item.iloc[:, 1:-1].reset_index(drop=True)],
                         axis=1)
      chosen = {c for c in features if sample[c].dropna().str.fullmatch(r'-?\d+').all()}
    return [f for f in features if f in chosen], [f for f in features if f not in chosen]

  def chunks(self, split: str, ctx: sources.ReadContext) -> Iterator[pd.DataFrame]:
    for country in self.countries:
      paths = self._paths(country, split)
      yield from self._joined_chunks(country, paths['user'], paths['item'], ctx)

  def _joined_chunks(self, country: str, user_path: str, item_path: str,
                     ctx: sources.ReadContext) -> Iterator[pd.DataFrame]:
    users = [chunk for chunk, _ in sources.read_table_chunks(
        user_path, chunk_rows=ctx.chunk_rows, header=False, names=raw_user_names(),
        expected_columns=RAW_USER_COLUMNS)]
    user = pd.concat(users, ignore_index=True)
    duplicated = user['search_id'].duplicated()
    if duplicated.any():
      i = int(np.flatnonzero(duplicated.to_numpy())[0])
      raise InputError('duplicate search id in the user file', path=user_path, row=i + 1, column='search_id',
                       value=user['search_id'].iloc[i], expected='one row per search id')
    user = user.set_index('search_id')
    for item, first_row in sources.read_table_chunks(item_path, chunk_rows=ctx.chunk_rows, header=False,
                                                     names=raw_item_names(), expected_columns=RAW_ITEM_COLUMNS):
      ctx.accounting.files[item_path] += len(item)
      b = sources.ChunkBuilder(item.join(user, on='search_id'), item_path, first_row, ctx)
      raw = b.raw
      b.flag('search_id_not_in_user_file', ~raw['search_id'].isin(user.index).to_numpy(), 'search_id',
             f'a search id present in {user_path}')
      for c in self.categorical:
        b.categorical(c, raw[c])
      for c in self.numerical:
        b.numerical(c, raw[c])
      label = pd.to_numeric(raw['label'], errors='coerce')
      b.flag(sources.MISSING_LABEL, raw['label'].isna().to_numpy(), 'label', 'a label 0, 1 or 2')
      b.flag(sources.LABEL_NOT_BINARY, (raw['label'].notna() & ~label.isin([0, 1, 2])).to_numpy(), 'label',
             'a label 0 (impression), 1 (click) or 2 (click and purchase)')
      b.label('ctr', label.isin([1, 2]))
      b.label('ctcvr', label == 2)
      yield b.build(country, self.scenario_column)
