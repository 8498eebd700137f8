"""Any CSV or Parquet table described by flags: the way to bring your own data."""

from __future__ import annotations

from typing import Optional, Sequence

from data_pipelines import spec as spec_lib
from data_pipelines import table


def csv_source(path: str, *, categorical: Sequence[str], numerical: Sequence[str], labels: Sequence[str],
               scenario_column: str, test_path: Optional[str] = None, scenarios: Sequence[str] = (),
               normalization: str = 'standard', sep: str = ',',
               split_policy: table.SplitPolicy = table.SplitPolicy()) -> table.TableSource:
  if not labels:
    raise ValueError('--label_columns must name at least one 0/1 label column')
  if not scenario_column:
    raise ValueError('--scenario_column must name the column that holds the scenario')
  clash = set(labels) & (set(categorical) | set(numerical) | {scenario_column})
  if clash:
    raise ValueError(f'label column(s) {sorted(clash)} are also features or the scenario column')
  if test_path:
    files = [table.TableFile(path, split='train'), table.TableFile(test_path, split='test')]
  else:
    files = [table.TableFile(path)]
  return table.TableSource(
      dataset='csv',
      files=files,
      categorical=categorical,
      numerical=numerical,
      normalization={n: normalization for n in numerical},
      tasks=[spec_lib.Task(c, f'{c} == 1') for c in labels],
      labels=table.binary_labels({c: c for c in labels}),
      label_columns=list(labels),
      scenario_column=scenario_column,
      scenarios=scenarios,
      split_policy=split_policy,
      sep=sep,
      numeric_labels=True,
  )
