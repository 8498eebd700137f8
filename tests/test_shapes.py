"""Unusual data shapes, end to end: prepare -> train -> evaluate -> export -> serve one row.

Each shape either works or stops with one clear error before any training; none crashes the process. The
whole shape x family matrix (about 20 minutes here) is marked slow; the fast suite keeps the shape that once
crashed the process, and a test split without positives.
"""

import json
import math
import os

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from data_pipelines.config import PrepareConfig
from federated import api, reporting
from pfmsmt_tf import serving
from tests import helpers

# name -> helpers.shaped_csv keywords
SHAPES = {
    'no_numerical': dict(numerical=0),
    'no_categorical': dict(categorical=0),
    'one_task': dict(tasks=1),
    'three_tasks': dict(tasks=3),
    'one_scenario': dict(scenario_rows=(600,)),
    'twelve_scenarios': dict(scenario_rows=(120,) * 12),
    'tiny_scenario': dict(scenario_rows=(600, 600, 50)),
    'rare_labels': dict(scenario_rows=(3000, 3000), label_rate=0.001, tasks=1),
}
# One algorithm of each family (and the non-neural reference).
FAMILIES = ('pfmsmtrec', 'pfmsmtrec_no_conflict', 'fedavg', 'ditto', 'centralized', 'logistic')
FAST = {'no_numerical': 'centralized'}  # the shape that crashed the process (issue 15)
SMALL = dict(embedding_dim=4, expert_units=(8,), tower_units=(4,), batch_size=128)


def _matrix():
  for shape in SHAPES:
    for algorithm in FAMILIES:
      marks = () if FAST.get(shape) == algorithm else (pytest.mark.slow,)
      yield pytest.param(shape, algorithm, id=f'{shape}-{algorithm}', marks=marks)


@pytest.fixture(scope='module')
def prepared(tmp_path_factory):
  """Shape name -> its prepared folder, made once per module."""
  made = {}

  def get(shape):
    if shape not in made:
      root = tmp_path_factory.mktemp(shape)
      kw = helpers.shaped_csv(str(root / 'rows.csv'), **SHAPES[shape])
      made[shape] = api.prepare(output=str(root / 'data'), **kw)
    return made[shape]

  return get


def _serve_one_row(path: str, csv: str, scenario: str, tasks):
  info = json.load(open(os.path.join(path, serving.EXPORT_INFO)))
  row = pd.read_csv(csv, dtype=str).query('s == @scenario').iloc[0]
  inputs = {}
  for column, entry in info['inputs'].items():
    value = row[column] if entry['dtype'] == 'string' else np.float32(row[column])
    inputs[entry['name']] = tf.constant([value])
  served = tf.saved_model.load(path).signatures['serving_default'](**inputs)
  for t in tasks:
    p = float(served[t].numpy()[0])
    assert 0.0 < p < 1.0, (t, p)


@pytest.mark.parametrize('shape,algorithm', _matrix())
def test_shape_runs_end_to_end(tmp_path, prepared, shape, algorithm):
  data = prepared(shape)
  spec = json.load(open(os.path.join(data.output, 'spec.json')))
  tasks = [t['name'] for t in spec['tasks']]
  run = api.train(log=lambda *_: None, data=data.output, algorithm=algorithm, rounds=2,
                  output=str(tmp_path / 'run'), **SMALL)
  scenarios = list(run.metrics['test'])
  assert len(scenarios) == len(SHAPES[shape].get('scenario_rows', (400, 400)))
  assert not math.isnan(run.mean_auc) or shape == 'rare_labels'
  evaluation = api.evaluate(run.run_dir)
  for s in scenarios:
    for t in tasks:
      np.testing.assert_allclose(evaluation.metrics['test'][s][t]['auc'], run.metrics['test'][s][t]['auc'],
                                 atol=2e-3)  # the federated side's AUC is thresholded (TF), the pooled exact
  paths = api.export(run.run_dir, str(tmp_path / 'export'), scenarios=scenarios[-1:])
  _serve_one_row(paths[scenarios[-1]], data.summary['config']['input'], scenarios[-1], tasks)


@pytest.mark.slow  # 17 s; the fast suite keeps its time budget
def test_a_test_split_without_positives_is_reported_as_missing(tmp_path):
  kw = helpers.shaped_csv(str(tmp_path / 'train.csv'), tasks=1)
  helpers.shaped_csv(str(tmp_path / 'test.csv'), tasks=1, seed=1)
  test = pd.read_csv(tmp_path / 'test.csv')
  test.loc[test['s'] == 's1', 'y_0'] = 0
  test.to_csv(tmp_path / 'test.csv', index=False)
  data = api.prepare(output=str(tmp_path / 'data'), test_input=str(tmp_path / 'test.csv'), **kw)
  run = api.train(log=lambda *_: None, data=data.output, algorithm='fedavg', rounds=1,
                  output=str(tmp_path / 'run'), **SMALL)
  cell = run.metrics['test']['s1']['y_0']
  assert math.isnan(cell['auc']) and cell['missing'] == 'no positive among 400 rows' and cell['positives'] == 0
  assert 0 < run.metrics['test']['s0']['y_0']['auc'] < 1
  assert run.mean_auc == run.metrics['test']['s0']['y_0']['auc']  # the mean goes on over what is defined
  text = reporting.format_results(run.metrics)
  assert 'the mean is over 1 of 2 cells; left out: s1/y_0 (no positive among 400 rows)' in text
  assert text.splitlines()[3].split() == ['s1', 'n/a']


@pytest.mark.slow
def test_a_million_distinct_ids_are_capped_by_the_vocabulary_limit(tmp_path):
  """1,000,000 distinct values in one column: the vocabulary keeps the most frequent (memory bounded), the
  rest go to the OOV bucket, counted; the run goes on end to end."""
  n, rng = 1_000_000, np.random.default_rng(0)
  frame = pd.DataFrame({'s': np.repeat(['a', 'b'], n // 2), 'id': [f'u{i}' for i in range(n)],
                        'cat_0': rng.integers(0, 20, n).astype(str), 'y_0': (rng.random(n) < 0.05).astype(int)})
  path = str(tmp_path / 'rows.csv')
  frame.to_csv(path, index=False)
  data = api.prepare(output=str(tmp_path / 'data'), dataset='csv', input=path, scenario_column='s',
                     categorical_columns=['id', 'cat_0'], label_columns=['y_0'])
  spec = json.load(open(os.path.join(data.output, 'spec.json')))
  cap = PrepareConfig().max_vocabulary_size
  assert 0 < cap < n and spec['categorical'][0]['vocabulary_size'] <= cap + 1  # + the OOV bucket
  run = api.train(log=lambda *_: None, data=data.output, algorithm='pfmsmtrec', rounds=1,
                  output=str(tmp_path / 'run'), **SMALL)
  assert 0 < run.mean_auc < 1
  paths = api.export(run.run_dir, str(tmp_path / 'export'), scenarios=['a'])
  _serve_one_row(paths['a'], path, 'a', ['y_0'])
