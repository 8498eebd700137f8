"""Tenrec: one CSV per scenario (QK-video, QK-article, QB-video, QB-article) with ids, features and feedback.

Tasks are feedback columns chosen by flag (default click and like). Features are chosen by flag (default
`user_id,item_id,gender,age`, the columns every scenario file has). Rows are split train/test by a seeded draw.
"""

from __future__ import annotations

import os
from typing import Sequence

from data_pipelines import spec as spec_lib
from data_pipelines import table
from data_pipelines.errors import InputError

SCENARIOS = ('QK-video', 'QK-article', 'QB-video', 'QB-article')
DEFAULT_TASKS = ('click', 'like')
DEFAULT_CATEGORICAL = ('user_id', 'item_id', 'gender', 'age')


def tenrec_source(root: str, tasks: Sequence[str] = DEFAULT_TASKS,
                  categorical: Sequence[str] = DEFAULT_CATEGORICAL, numerical: Sequence[str] = (),
                  scenarios: Sequence[str] = (),
                  split_policy: table.SplitPolicy = table.SplitPolicy()) -> table.TableSource:
  if not os.path.isdir(root):
    raise InputError('is not a directory', path=root, expected='a folder of Tenrec scenario files')
  wanted = list(scenarios) or [s for s in SCENARIOS if os.path.isfile(os.path.join(root, f'{s}.csv'))]
  if not wanted:
    raise InputError('holds no Tenrec scenario file', path=root, expected=f'some of {[s + ".csv" for s in SCENARIOS]}')
  files = [table.TableFile(os.path.join(root, f'{s}.csv'), scenario=s) for s in wanted]
  return table.TableSource(
      dataset='tenrec',
      files=files,
      categorical=categorical,
      numerical=numerical,
      tasks=[spec_lib.Task(t, f'{t} == 1') for t in tasks],
      labels=table.binary_labels({t: t for t in tasks}),
      label_columns=list(tasks),
      scenario_column='scenario',
      split_policy=split_policy,
      numeric_labels=True,
  )
