"""Each reader on the real samples in ../shared/data (skipped when absent) and on tiny fixture files."""

import gzip
import os
import shutil

import numpy as np
import pandas as pd
import pytest

from data_pipelines import aliccp, aliexpress, census, csv_dataset, sources, table, tenrec
from data_pipelines.errors import InputError
from tests.conftest import shared_data
from tests.helpers import csv_text, read_all, write


# ---------------------------------------------------------------------------------------------- AliExpress


def _aliexpress_processed(tmp_path, countries=('NL', 'US')):
  sample = shared_data('aliexpress')
  for c in countries:
    os.makedirs(tmp_path / f'AliExpress_{c}')
    shutil.copy(os.path.join(sample, 'aliexpress_train_sample.csv'), tmp_path / f'AliExpress_{c}' / 'train.csv')
    shutil.copy(os.path.join(sample, 'aliexpress_test_sample.csv'), tmp_path / f'AliExpress_{c}' / 'test.csv')
  return str(tmp_path)


def test_aliexpress_processed_real_sample(tmp_path):
  root = _aliexpress_processed(tmp_path)
  src = aliexpress.aliexpress_source(root)
  assert (len(src.categorical), len(src.numerical)) == (16, 63)
  rows, acct = read_all(src, 'train')
  source_rows = pd.read_csv(os.path.join(root, 'AliExpress_NL', 'train.csv'))
  assert len(rows) == 2 * len(source_rows) == 200
  nl = rows[rows[sources.SCENARIO] == 'NL'].reset_index(drop=True)
  np.testing.assert_array_equal(nl['ctr'], source_rows['click'])
  np.testing.assert_array_equal(nl['ctcvr'], source_rows['click'] & source_rows['conversion'])
  np.testing.assert_allclose(nl['numerical_24'], source_rows['numerical_24'])
  assert acct.part('train', 'US').rows_read == 100


def test_aliexpress_scenario_selection_and_unknown(tmp_path):
  root = _aliexpress_processed(tmp_path)
  assert aliexpress.aliexpress_source(root, scenarios=['US']).input_files()[0].endswith('AliExpress_US/train.csv')
  with pytest.raises(InputError, match=r"scenario\(s\) \['FR'\] not found"):
    aliexpress.aliexpress_source(root, scenarios=['FR'])


def _raw_files(tmp_path, labels=(0, 1, 2, 0), extra_item=None):
  rng = np.random.default_rng(0)
  users, items = [], []
  for s in range(2):
    user = [f's{s}'] + [str(rng.integers(0, 5)) for _ in range(10)] + [f'{rng.random():.3f}' for _ in range(22)]
    users.append(','.join(user))
    for lab in labels:
      item = [f's{s}'] + [str(rng.integers(0, 9)) for _ in range(7)] + [f'{rng.random():.3f}' for _ in range(40)]
      items.append(','.join(item + [str(lab)]))
  if extra_item:
    items.append(extra_item)
  for split in ('train', 'test'):
    write(str(tmp_path / f'NL_user_{split}.csv'), '\n'.join(users) + '\n')
    write(str(tmp_path / f'NL_item_{split}.csv'), '\n'.join(items) + '\n')
  return str(tmp_path)


def test_aliexpress_raw_layout_join_and_labels(tmp_path):
  src = aliexpress.aliexpress_source(_raw_files(tmp_path))
  assert isinstance(src, aliexpress.RawAliExpressSource)
  assert src.categorical == [f'user_{i}' for i in range(1, 11)] + [f'item_{i}' for i in range(1, 8)]
  assert len(src.numerical) == 22 + 40
  rows, _ = read_all(src, 'train')
  assert rows['ctr'].tolist() == [0, 1, 1, 0] * 2
  assert rows['ctcvr'].tolist() == [0, 0, 1, 0] * 2


def test_aliexpress_raw_bad_label_and_unmatched_search(tmp_path):
  with pytest.raises(InputError, match=r'NL_item_train.csv.*row 3.*column .label.*expected a label 0'):
    read_all(aliexpress.aliexpress_source(_raw_files(tmp_path, labels=(0, 1, 5))), 'train')
  bad = ','.join(['nosuch'] + ['1'] * 7 + ['0.5'] * 40 + ['1'])
  src = aliexpress.aliexpress_source(_raw_files(tmp_path / 'b', extra_item=bad))
  with pytest.raises(InputError, match=r'row 9.*search_id_not_in_user_file'):
    read_all(src, 'train')
  rows, acct = read_all(src, 'train', on_bad_row='drop')
  assert len(rows) == 8 and acct.part('train', 'NL').rows_dropped == {'search_id_not_in_user_file': 1}


# ---------------------------------------------------------------------------------------------- Ali-CCP


def test_aliccp_raw_ids_header_only_in_train():
  src = aliccp.aliccp_source(shared_data('ali-ccp', 'raw-ids'))
  assert src.splits == ['train', 'test']
  assert '301' not in src.categorical and 'click' not in src.categorical
  train, _ = read_all(src, 'train')
  test, acct = read_all(src, 'test')
  assert len(train) == 48 and len(test) == 50  # test.csv has no header: its first line is a row
  assert set(train[sources.SCENARIO]) <= {'1', '2', '3'}
  assert sum(p for sc in acct.scenarios('test') for p in [acct.part('test', sc).rows_read]) == 50


def test_aliccp_label_encoded_dense_columns_are_numerical():
  src = aliccp.aliccp_source(shared_data('ali-ccp', 'label-encoded'))
  assert src.splits == ['train', 'valid', 'test']
  assert src.numerical == ['D109_14', 'D110_14', 'D127_14', 'D150_14', 'D508', 'D509', 'D702', 'D853']
  rows, _ = read_all(src, 'valid')
  assert len(rows) == 50


def test_aliccp_purchase_without_click_is_counted(tmp_path):
  text = csv_text([{'click': 0, 'purchase': 1, '101': 'a', '301': 1}, {'click': 1, 'purchase': 1, '101': 'b', '301': 1},
                   {'click': 1, 'purchase': 0, '101': 'c', '301': 2}], ['click', 'purchase', '101', '301'])
  write(str(tmp_path / 'train.csv'), text)
  rows, acct = read_all(aliccp.aliccp_source(str(tmp_path)), 'train')
  assert rows['ctcvr'].tolist() == [0, 1, 0]
  assert acct.part('train', '1').handled['purchase_without_click'] == {'purchase': 1}


# ---------------------------------------------------------------------------------------------- Census


def test_census_real_file_seeded_split_and_labels():
  path = shared_data('census-income', 'census-income.test.gz')
  src = census.census_source(path)
  train, _ = read_all(src, 'train', chunk_rows=20_000)
  test, _ = read_all(src, 'test', chunk_rows=20_000)
  assert len(train) + len(test) == 99_762
  assert abs(len(test) / 99_762 - 0.2) < 0.01
  both = pd.concat([train, test])
  assert abs(both['income'].mean() - 6186 / 99_762) < 1e-9  # 6.2% as published
  assert abs(both['never_married'].mean() - 43_143 / 99_762) < 1e-9
  assert sorted(both[sources.SCENARIO].unique()) == sorted(
      ['White', 'Black', 'Asian or Pacific Islander', 'Other', 'Amer Indian Aleut or Eskimo'])
  assert 'race' not in src.categorical and 'instance_weight' not in src.categorical + src.numerical
  # The same seed gives the same split; another seed another one.
  again, _ = read_all(census.census_source(path), 'test', chunk_rows=7_000)
  assert len(again) == len(test)
  other, _ = read_all(census.census_source(path, split_policy=table.SplitPolicy(seed=1)), 'test', chunk_rows=20_000)
  assert len(other) != len(test) or not other['age'].equals(test['age'])


def test_census_scenario_column_choice(tmp_path):
  path = shared_data('census-income', 'census-income.test.gz')
  src = census.census_source(path, scenario_column='sex')
  assert 'sex' not in src.categorical and 'race' in src.categorical
  with pytest.raises(ValueError, match='not a categorical census column'):
    census.census_source(path, scenario_column='income')


def test_census_bad_income_value(tmp_path):
  line = gzip.open(shared_data('census-income', 'census-income.test.gz'), 'rt').readline()
  bad = line.replace('- 50000.', 'maybe')
  path = write(str(tmp_path / 'c.csv'), line + bad)
  with pytest.raises(InputError, match=r"row 2, column 'income'.*'maybe'"):
    read_all(census.census_source(path, split_policy=table.SplitPolicy(test_fraction=1e-9)), 'train')


# ---------------------------------------------------------------------------------------------- Tenrec


def test_tenrec_files_are_scenarios(tmp_path):
  cols = ['user_id', 'item_id', 'click', 'follow', 'like', 'share', 'video_category', 'watching_times', 'gender', 'age']
  rng = np.random.default_rng(0)
  for name in ('QK-video', 'QB-video'):
    rows = [dict(zip(cols, [rng.integers(100), rng.integers(50), 1, 0, rng.integers(2), 0, 3, 2, 1, 4]))
            for _ in range(40)]
    write(str(tmp_path / f'{name}.csv'), csv_text(rows, cols))
  src = tenrec.tenrec_source(str(tmp_path))
  assert [t.name for t in src.tasks] == ['click', 'like']
  train, _ = read_all(src, 'train')
  test, _ = read_all(src, 'test')
  assert len(train) + len(test) == 80
  assert set(train[sources.SCENARIO]) == {'QK-video', 'QB-video'}
  src = tenrec.tenrec_source(str(tmp_path), tasks=['click', 'share'], scenarios=['QB-video'])
  rows, _ = read_all(src, 'train')
  assert set(rows[sources.SCENARIO]) == {'QB-video'} and 'share' in rows
  with pytest.raises(InputError, match='is not a directory'):
    tenrec.tenrec_source(str(tmp_path / 'missing'))
  os.makedirs(tmp_path / 'empty')
  with pytest.raises(InputError, match='holds no Tenrec scenario file'):
    tenrec.tenrec_source(str(tmp_path / 'empty'))


# ---------------------------------------------------------------------------------------------- csv / Parquet


def _csv_fixture(tmp_path, name='rows.csv'):
  rows = [{'app': a, 'city': c, 'price': p, 'click': k, 'buy': b}
          for a, c, p, k, b in [('x', 'p', 1.5, 1, 0), ('x', 'q', 2.0, 0, 0), ('y', 'p', 3.0, 1, 1), ('y', 'r', 0.5, 0, 0)]]
  return write(str(tmp_path / name), csv_text(rows, ['app', 'city', 'price', 'click', 'buy']))


def test_csv_and_parquet_give_the_same_rows(tmp_path):
  path = _csv_fixture(tmp_path)
  pq = str(tmp_path / 'rows.parquet')
  pd.read_csv(path).to_parquet(pq)
  kw = dict(categorical=['city'], numerical=['price'], labels=['click', 'buy'], scenario_column='app', test_path=path)
  a, _ = read_all(csv_dataset.csv_source(path, **kw), 'train')
  b, _ = read_all(csv_dataset.csv_source(pq, **kw), 'train')
  pd.testing.assert_frame_equal(a, b)
  assert a['buy'].tolist() == [0, 0, 1, 0]


def test_csv_flag_errors(tmp_path):
  path = _csv_fixture(tmp_path)
  with pytest.raises(ValueError, match='label column'):
    csv_dataset.csv_source(path, categorical=['click'], numerical=[], labels=['click'], scenario_column='app')
  with pytest.raises(ValueError, match='--label_columns'):
    csv_dataset.csv_source(path, categorical=['city'], numerical=[], labels=[], scenario_column='app')


# ---------------------------------------------------------------------------------------------- bad input


def _csv_source(path, **kw):
  args = dict(categorical=['city'], numerical=['price'], labels=['click'], scenario_column='app', test_path=path)
  args.update(kw)
  return csv_dataset.csv_source(path, **args)


BAD_INPUT = [
    # (case, file text, error pattern, reason counted with --on_bad_row=drop)
    ('non-numeric', 'app,city,price,click\nx,p,1.0,1\nx,q,cheap,0\n', r"row 3, column 'price'.*'cheap'.*finite number",
     'non_numeric_value'),
    ('NaN numerical', 'app,city,price,click\nx,p,,1\nx,q,2,0\n', r"row 2, column 'price'.*expected a number",
     'missing_numerical_value'),
    ('NaN literal', 'app,city,price,click\nx,p,nan,1\nx,q,2,0\n', r"row 2, column 'price'", 'non_numeric_value'),
    ('label 2', 'app,city,price,click\nx,p,1,2\nx,q,2,0\n', r"row 2, column 'click'.*expected a label 0 or 1",
     'label_not_binary'),
    ('label -1', 'app,city,price,click\nx,p,1,-1\nx,q,2,0\n', r"row 2, column 'click'", 'label_not_binary'),
    ('missing label', 'app,city,price,click\nx,p,1,\nx,q,2,0\n', r"row 2, column 'click'", 'missing_label'),
    ('missing scenario', 'app,city,price,click\n,p,1,1\nx,q,2,0\n', r"row 2, column 'app'.*scenario",
     'missing_scenario'),
]


@pytest.mark.parametrize('case,text,pattern,reason', BAD_INPUT, ids=[c[0] for c in BAD_INPUT])
def test_bad_values_error_or_are_counted(tmp_path, case, text, pattern, reason):
  del case
  path = write(str(tmp_path / 'bad.csv'), text)
  with pytest.raises(InputError, match=r'file .*bad.csv, ' + pattern):
    read_all(_csv_source(path), 'train')
  rows, acct = read_all(_csv_source(path), 'train', on_bad_row='drop')
  assert len(rows) == 1
  dropped = {r: n for sc in acct.scenarios('train') for r, n in acct.part('train', sc).rows_dropped.items()}
  assert dropped == {reason: 1}
  acct.check()


@pytest.mark.parametrize('text,pattern', [
    ('', 'file is empty'),
    ('app,city,price,click\n', 'no data rows'),
    ('app;city;price;click\nx;p;1;1\n', r"missing column.*Hint: check the separator"),
    ('app,city,price\nx,p,1\n', r"missing column\(s\) \['click'\]"),
    ('app,city,price,click\nx,p,1,1,9\nx,p,1,1\n', 'cannot be parsed.*does not match'),
    ('app,city,price,click\nx,p,1,1\nx,p,1,1,9\n', r'cannot be parsed.*Expected 4 fields in line 3, saw 5'),
], ids=['empty', 'header only', 'wrong separator', 'missing column', 'extra field in row 1', 'extra field later'])
def test_malformed_files(tmp_path, text, pattern):
  path = write(str(tmp_path / 'bad.csv'), text)
  with pytest.raises(InputError, match=pattern):
    read_all(_csv_source(path), 'train')


def test_truncated_row_names_the_missing_cell(tmp_path):
  path = write(str(tmp_path / 'bad.csv'), 'app,city,price,click\nx,p,1,1\nx,p\n')
  with pytest.raises(InputError, match=r"row 3, column 'click'.*missing_label|row 3, column 'price'"):
    read_all(_csv_source(path), 'train')


def test_missing_file(tmp_path):
  with pytest.raises(InputError, match='nope.csv: input file not found'):
    read_all(_csv_source(str(tmp_path / 'nope.csv')), 'train')


def test_missing_categorical_goes_to_oov_and_is_counted(tmp_path):
  path = write(str(tmp_path / 'rows.csv'), 'app,city,price,click\nx,,1,1\nx,p,2,0\n')
  rows, acct = read_all(_csv_source(path), 'train')
  assert rows['city'].tolist() == [sources.MISSING_CATEGORY, 'p']
  assert acct.part('train', 'x').handled['missing_categorical_to_oov'] == {'city': 1}


def test_unselected_scenarios_are_counted_not_errors(tmp_path):
  path = write(str(tmp_path / 'rows.csv'), 'app,city,price,click\nx,p,1,1\ny,p,2,0\ny,p,bad,0\n')
  rows, acct = read_all(_csv_source(path, scenarios=['x']), 'train')
  assert rows[sources.SCENARIO].tolist() == ['x']
  assert acct.part('train', 'y').rows_dropped == {'scenario_not_selected': 2}
  acct.check()
