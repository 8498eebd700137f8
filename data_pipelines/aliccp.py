"""Ali-CCP (Alibaba Click and Conversion Prediction): field `301` is the scenario, tasks CTR and CTCVR.

Both public layouts are read from a folder of `*train*.csv`, `*val*.csv`, `*test*.csv`:
- raw ids: header `click,purchase,101,...,853,301` in the train file only; other files reuse it;
- label-encoded: every file has a header; columns starting with `D` are dense (numerical) features.
Every other column except `click`, `purchase` and `301` is a categorical feature. CTCVR = click AND purchase;
rows with purchase = 1 and click = 0 are kept with CTCVR = 0 and counted as `purchase_without_click`.
"""

from __future__ import annotations

import glob
import os
from typing import List, Sequence

from data_pipelines import spec as spec_lib
from data_pipelines import table
from data_pipelines.errors import InputError

SCENARIO_COLUMN = '301'
LABEL_COLUMNS = ['click', 'purchase']
TASKS = [spec_lib.Task('ctr', 'click == 1'), spec_lib.Task('ctcvr', 'click == 1 and purchase == 1')]
_SPLIT_WORDS = (('train', 'train'), ('valid', 'val'), ('test', 'test'))  # its val files are our valid split


def _first_line(path: str) -> List[str]:
  with open(path, encoding='utf-8', errors='replace') as f:
    return f.readline().strip().split(',')


def aliccp_source(root: str, scenarios: Sequence[str] = ()) -> table.TableSource:
  if not os.path.isdir(root):
    raise InputError('is not a directory', path=root, expected='a folder of Ali-CCP *train*.csv / *test*.csv')
  by_split = {}
  for split, word in _SPLIT_WORDS:
    found = sorted(glob.glob(os.path.join(root, f'*{word}*.csv')))
    if len(found) > 1:
      raise InputError(f'has several {split} files {found}', path=root, expected='one file per split')
    if found:
      by_split[split] = found[0]
  if 'train' not in by_split:
    raise InputError('has no *train*.csv', path=root)
  header = _first_line(by_split['train'])
  if 'click' not in header:
    raise InputError('has no header row', path=by_split['train'], expected='a header naming click, purchase, 301')
  files = []
  for split, path in by_split.items():
    has_header = 'click' in _first_line(path)
    files.append(table.TableFile(path, split=split, header=has_header, names=None if has_header else header))
  features = [c for c in header if c not in LABEL_COLUMNS and c != SCENARIO_COLUMN]
  return table.TableSource(
      dataset='aliccp',
      files=files,
      categorical=[c for c in features if not c.startswith('D')],
      numerical=[c for c in features if c.startswith('D')],
      tasks=TASKS,
      labels=table.ctr_ctcvr_labels('click', 'purchase'),
      label_columns=LABEL_COLUMNS,
      scenario_column=SCENARIO_COLUMN,
      scenarios=scenarios,
      numeric_labels=True,
  )
