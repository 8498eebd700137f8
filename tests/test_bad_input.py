"""Bad input, end to end through `prepare`: a clear error naming file, row and column, or a counted handling,
and summary.json's row counts always add up (read = kept + dropped, per partition and in total)."""

import json
import os

import numpy as np
import pytest

from data_pipelines import prepare
from data_pipelines import spec as spec_lib
from data_pipelines.config import PrepareConfig
from data_pipelines.errors import InputError
from tests.helpers import write

HEADER = 'app,city,price,click,buy'


def _prepare(tmp_path, text, test_text=None, **kw):
  kw.setdefault('valid_fraction', 0)  # row accounting of the files as they are; valid has its own tests
  train = write(str(tmp_path / 'train.csv'), text)
  test = write(str(tmp_path / 'test.csv'), test_text if test_text is not None else text)
  cfg = PrepareConfig(dataset='csv', input=train, test_input=test, output=str(tmp_path / 'out'),
                      scenario_column='app', categorical_columns=('city',), numerical_columns=('price',),
                      label_columns=('click', 'buy'), **kw)
  return prepare.prepare(cfg, log=lambda *_: None), cfg


def _adds_up(summary):
  for parts in summary['partitions'].values():
    for p in parts.values():
      assert p['rows_read'] == p['rows_kept'] + sum(p['rows_dropped'].values())
  t = summary['totals']
  assert t['rows_read'] == t['rows_kept'] + sum((t['rows_dropped'] or {}).values())
  assert t['rows_read'] == sum(summary['files'].values())


GOOD = '\n'.join(f'{app},c{i % 5},{i}.5,{i % 2},{int(i % 4 == 1)}' for i, app in
                 enumerate(['x', 'y'] * 10)) + '\n'


ERRORS = [
    # (case, rows appended to good rows, error pattern)
    ('label 2', 'x,c1,1,2,0\n', r"column 'click'.*'2'.*label 0 or 1"),
    ('label -1', 'y,c1,1,0,-1\n', r"column 'buy'.*label 0 or 1"),
    ('non-numeric', 'x,c1,abc,0,0\n', r"column 'price'.*'abc'"),
    ('truncated row', 'x,c1\n', r"column '(price|click)'"),
    ('missing scenario', ',c1,1,0,0\n', r"column 'app'"),
    ('infinite number', 'x,c1,inf,0,0\n', r"column 'price'.*finite"),
]


@pytest.mark.parametrize('case,extra,pattern', ERRORS, ids=[c[0] for c in ERRORS])
def test_bad_rows_error_by_default_and_are_counted_with_drop(tmp_path, case, extra, pattern):
  del case
  text = f'{HEADER}\n{GOOD}{extra}'
  with pytest.raises(InputError, match=r'file .*train.csv, row \d+, ' + pattern):
    _prepare(tmp_path, text)
  summary, _ = _prepare(tmp_path, text, on_bad_row='drop', overwrite=True)
  _adds_up(summary)
  assert summary['totals']['rows_kept'] == 2 * 20 and sum(summary['totals']['rows_dropped'].values()) == 2


def test_all_nan_column_is_an_error_naming_it(tmp_path):
  text = HEADER + '\n' + ''.join(f'x,c{i},,0,0\n' for i in range(5))
  with pytest.raises(InputError, match=r"row 2, column 'price'.*expected a number"):
    _prepare(tmp_path, text)
  with pytest.raises(InputError, match='no usable train rows'):  # every row dropped: nothing to train on
    _prepare(tmp_path, text, on_bad_row='drop', overwrite=True)


def test_scenario_whose_rows_are_all_dropped_is_counted_not_kept(tmp_path):
  text = f'{HEADER}\n{GOOD}' + ''.join('z,c1,bad,0,0\n' for _ in range(3))
  summary, cfg = _prepare(tmp_path, text, on_bad_row='drop')
  _adds_up(summary)
  assert summary['scenarios'] == ['x', 'y']
  assert summary['partitions']['train']['z']['rows_dropped'] == {'non_numeric_value': 3}
  assert summary['partitions']['train']['z']['rows_kept'] == 0
  assert spec_lib.load_spec(cfg.output).scenario_names == ['x', 'y']


def test_huge_category_strings_round_trip(tmp_path):
  huge = 'q' * 200_000 + ', with a comma'
  text = f'{HEADER}\n{GOOD}x,"{huge}",1,1,0\nx,"{huge}",2,0,0\n'
  summary, cfg = _prepare(tmp_path, text)
  _adds_up(summary)
  spec = spec_lib.load_spec(cfg.output)
  vocab = spec_lib.load_vocabulary(cfg.output, spec.categorical[0].vocabulary_files['*'])
  assert huge in vocab and len(vocab) == 6


def test_empty_files(tmp_path):
  with pytest.raises(InputError, match='file is empty'):
    _prepare(tmp_path, '')
  with pytest.raises(InputError, match='no data rows'):
    _prepare(tmp_path, HEADER + '\n', overwrite=True)


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_random_corruption_counts_add_up(tmp_path, seed):
  """Property: whatever mix of bad cells, kept = the rows the generator left good, and counts add up."""
  rng = np.random.default_rng(seed)
  bad_cells = [('price', 'oops'), ('price', ''), ('click', '2'), ('buy', '-1'), ('app', ''), ('click', '')]
  lines, good = [HEADER], 0
  for i in range(400):
    row = {'app': ['x', 'y', 'z'][i % 3], 'city': f'c{rng.integers(50)}', 'price': f'{rng.normal():.3f}',
           'click': str(rng.integers(2)), 'buy': '0'}
    if rng.random() < 0.2:
      column, value = bad_cells[rng.integers(len(bad_cells))]
      row[column] = value
    else:
      good += 1
    if rng.random() < 0.05:
      row['city'] = ''  # a missing categorical is handled (OOV), not dropped
    lines.append(','.join(row[c] for c in HEADER.split(',')))
  text = '\n'.join(lines) + '\n'
  summary, cfg = _prepare(tmp_path, text, on_bad_row='drop')
  _adds_up(summary)
  assert summary['partitions']['train'] and sum(p['rows_kept'] for p in summary['partitions']['train'].values()) == good
  assert json.load(open(os.path.join(cfg.output, 'summary.json')))['totals'] == summary['totals']
