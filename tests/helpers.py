"""Small builders for fixture files the tests write."""

import os
from typing import Dict, List

import pandas as pd

from data_pipelines import accounting, sources


def write(path: str, text: str) -> str:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'w') as f:
    f.write(text)
  return path


def csv_text(rows: List[Dict], columns: List[str]) -> str:
  lines = [','.join(columns)] + [','.join(str(r.get(c, '')) for c in columns) for r in rows]
  return '\n'.join(lines) + '\n'


def read_all(source: sources.Source, split: str, on_bad_row: str = 'error', chunk_rows: int = 1000):
  """(all canonical rows of a split, the accounting)."""
  acct = accounting.RowAccounting()
  ctx = sources.ReadContext(split, acct, on_bad_row, chunk_rows)
  frames = list(source.chunks(split, ctx))
  rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
  # Text is a categorical where pyarrow parsed it (arrow_csv.py): compared here as the strings it holds.
  rows = rows.astype({c: object for c in rows.columns if isinstance(rows[c].dtype, pd.CategoricalDtype)})
  tasks = [t.name for t in source.tasks]
  if len(rows):  # prepare counts kept rows when it writes them; here they are kept when returned
    for scenario, group in rows.groupby(sources.SCENARIO):
      acct.keep(split, scenario, len(group), group[tasks].sum().to_dict())
  return rows, acct


def small_model_config():
  from pfmsmt_tf import config as model_config  # pylint: disable=g-import-not-at-top
  return model_config.ModelConfig(embedding_dim=4, expert_units=(8,), tower_units=(4,), seed=0)


def small_setup(data: str, output: str, algorithm: str = 'pfmsmtrec', rounds: int = 2, **kw):
  """A run of the small model, evaluated every round."""
  from federated.config import AggregationConfig, ClientConfig, RunSetup, TrainConfig  # pylint: disable=g-import-not-at-top
  return RunSetup(TrainConfig(data=data, algorithm=algorithm, rounds=rounds, output=output, eval_every=1,
                                       **kw), small_model_config(), ClientConfig(batch_size=128), AggregationConfig())


def shaped_csv(path: str, scenario_rows=(400, 400), categorical=2, cardinality=20, numerical=2, tasks=2,
               label_rate=0.2, seed=0) -> dict:
  """A CSV of a given shape (columns s, cat_<i>, num_<i>, y_<i>), its labels tied to the first categorical and
  numerical columns so that a model can learn; returns the `prepare` keywords that read it."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(seed)
  n = int(sum(scenario_rows))
  frame = pd.DataFrame({'s': np.repeat([f's{i}' for i in range(len(scenario_rows))], scenario_rows)})
  logit = np.zeros(n)
  for i in range(categorical):
    ids = rng.integers(0, cardinality, n)
    frame[f'cat_{i}'] = ['c%d' % v for v in ids]
    if i == 0:
      logit += np.where(ids % 2 == 0, 1.0, -1.0)
  for i in range(numerical):
    frame[f'num_{i}'] = rng.normal(size=n).round(4)
    if i == 0:
      logit += frame['num_0'].to_numpy()
  bias = np.log(label_rate / (1 - label_rate))
  labels = [f'y_{j}' for j in range(tasks)]
  for j, name in enumerate(labels):
    frame[name] = (rng.random(n) < 1 / (1 + np.exp(-(bias + (-1) ** j * logit)))).astype(int)
  frame.to_csv(path, index=False)
  return dict(dataset='csv', input=path, scenario_column='s',
              categorical_columns=[f'cat_{i}' for i in range(categorical)],
              numerical_columns=[f'num_{i}' for i in range(numerical)], label_columns=labels)
