"""UCI Census-Income (KDD), raw format: no header, ', '-separated, 42 columns.

Tasks: income > 50K and marital status "Never married" (the classic multi-task pair). The scenario column
defaults to `race`, which gives 5 scenarios of 1.2k to 84k rows in the 99,762-row test split; any categorical
column can be chosen with `--scenario_column`. The instance weight (a survey sampling weight, not a feature)
is not used; the scenario column and the label columns are not features.
"""

from __future__ import annotations

import os
from typing import List, Sequence

import pandas as pd

from data_pipelines import sources
from data_pipelines import spec as spec_lib
from data_pipelines import table
from data_pipelines.errors import InputError

COLUMNS = [
    'age', 'class_of_worker', 'industry_code', 'occupation_code', 'education', 'wage_per_hour',
    'enrolled_in_edu_inst_last_wk', 'marital_status', 'major_industry_code', 'major_occupation_code', 'race',
    'hispanic_origin', 'sex', 'member_of_a_labor_union', 'reason_for_unemployment',
    'full_or_part_time_employment_stat', 'capital_gains', 'capital_losses', 'dividends_from_stocks',
    'tax_filer_status', 'region_of_previous_residence', 'state_of_previous_residence',
    'detailed_household_and_family_stat', 'detailed_household_summary_in_household', 'instance_weight',
    'migration_code_change_in_msa', 'migration_code_change_in_reg', 'migration_code_move_within_reg',
    'live_in_this_house_1_year_ago', 'migration_prev_res_in_sunbelt', 'num_persons_worked_for_employer',
    'family_members_under_18', 'country_of_birth_father', 'country_of_birth_mother', 'country_of_birth_self',
    'citizenship', 'own_business_or_self_employed', 'fill_inc_questionnaire_for_veterans_admin',
    'veterans_benefits', 'weeks_worked_in_year', 'year', 'income',
]
NUMERICAL = {
    'age': 'standard', 'wage_per_hour': 'log_standard', 'capital_gains': 'log_standard',
    'capital_losses': 'log_standard', 'dividends_from_stocks': 'log_standard',
    'num_persons_worked_for_employer': 'standard', 'weeks_worked_in_year': 'standard',
}
LABEL_COLUMNS = ['income', 'marital_status']
NOT_FEATURES = {'instance_weight', *LABEL_COLUMNS}
DEFAULT_SCENARIO_COLUMN = 'race'
INCOME_VALUES = {'- 50000.': 0, '50000+.': 1}
TASKS = [
    spec_lib.Task('income', "income == '50000+.' (income > 50K)"),
    spec_lib.Task('never_married', "marital_status == 'Never married'"),
]


def _labels(b: sources.ChunkBuilder, raw: pd.DataFrame) -> None:
  income = raw['income'].str.strip()
  b.flag(sources.MISSING_LABEL, income.isna().to_numpy(), 'income', repr(sorted(INCOME_VALUES)))
  b.flag(sources.LABEL_NOT_BINARY, (income.notna() & ~income.isin(list(INCOME_VALUES))).to_numpy(), 'income',
         f'one of {sorted(INCOME_VALUES)}')
  b.label('income', income.map(INCOME_VALUES).fillna(0))
  marital = raw['marital_status']
  b.flag(sources.MISSING_LABEL, marital.isna().to_numpy(), 'marital_status', 'a marital status')
  b.label('never_married', marital.str.strip() == 'Never married')


def input_files(path: str) -> List[table.TableFile]:
  """A file is split train/test by a seeded draw; a folder holds census-income.data[.gz] (train) and
  census-income.test[.gz] (test)."""
  if os.path.isdir(path):
    files = []
    for split, stem in (('train', 'census-income.data'), ('test', 'census-income.test')):
      found = [os.path.join(path, stem + ext) for ext in ('', '.gz') if os.path.isfile(os.path.join(path, stem + ext))]
      if not found:
        raise InputError(f'has no {stem}[.gz]', path=path, expected='census-income.data and census-income.test')
      files.append(table.TableFile(found[0], split=split, header=False, names=COLUMNS))
    return files
  return [table.TableFile(path, header=False, names=COLUMNS)]


def census_source(path: str, scenario_column: str = DEFAULT_SCENARIO_COLUMN, scenarios: Sequence[str] = (),
                  split_policy: table.SplitPolicy = table.SplitPolicy()) -> table.TableSource:
  if scenario_column not in COLUMNS or scenario_column in NOT_FEATURES or scenario_column in NUMERICAL:
    raise ValueError(f'--scenario_column={scenario_column!r} is not a categorical census column; choose one of '
                     f'{[c for c in COLUMNS if c not in NOT_FEATURES and c not in NUMERICAL]}')
  features = [c for c in COLUMNS if c not in NOT_FEATURES and c != scenario_column]
  return table.TableSource(
      dataset='census',
      files=input_files(path),
      categorical=[c for c in features if c not in NUMERICAL],
      numerical=[c for c in features if c in NUMERICAL],
      normalization=NUMERICAL,
      tasks=TASKS,
      labels=_labels,
      label_columns=LABEL_COLUMNS,
      scenario_column=scenario_column,
      scenarios=scenarios,
      split_policy=split_policy,
  )
