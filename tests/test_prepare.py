"""prepare -> tf.data round trip, summary accounting, spec, output safety."""

import collections
import json
import os

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from data_pipelines import integrity, metrics, pipeline, prepare, records, sources, statistics
from data_pipelines import spec as spec_lib
from data_pipelines.config import PipelineConfig, PrepareConfig
from data_pipelines.errors import InputError

NO_SHUFFLE = PipelineConfig(batch_size=7, shuffle_buffer=0, with_true_prob=False)


def _rows(n=120, seed=0):
  rng = np.random.default_rng(seed)
  return pd.DataFrame({
      'app': rng.choice(['news', 'video', 'shop'], n),
      'city': rng.choice(['paris', 'rome', 'oslo', 'a,b "quoted"'], n),
      'device': rng.choice(['ios', 'android'], n),
      'row_id': np.arange(n),
      'price': np.round(rng.lognormal(size=n), 3),
      'click': rng.integers(0, 2, n),
      'buy': rng.integers(0, 2, n),
  })


def _prepare_csv(tmp_path, df, **kw):
  kw.setdefault('valid_fraction', 0.25)  # a few rows per scenario even in these small files
  os.makedirs(tmp_path, exist_ok=True)
  path = str(tmp_path / 'rows.csv')
  df.to_csv(path, index=False)
  cfg = PrepareConfig(dataset='csv', input=path, output=str(tmp_path / 'out'), scenario_column='app',
                      categorical_columns=('city', 'device'), numerical_columns=('row_id', 'price'),
                      label_columns=('click', 'buy'), rows_per_shard=25, chunk_rows=40, **kw)
  return prepare.prepare(cfg, log=lambda *_: None), cfg


def _decode(data_dir, spec, split, scenario):
  """All rows of a partition, decoded back to source values through the spec."""
  vocab = {f.name: spec_lib.load_vocabulary(data_dir, f.vocabulary_files[spec.scope(scenario)])
           for f in spec.categorical}
  out = []
  for features, labels in pipeline.make_dataset(data_dir, spec, split, scenario, NO_SHUFFLE):
    cat, num = features['categorical'].numpy(), features['numerical'].numpy()
    for i in range(len(cat)):
      row = {f.name: (vocab[f.name][cat[i, j] - 1] if cat[i, j] else None) for j, f in enumerate(spec.categorical)}
      for j, f in enumerate(spec.numerical):
        mean, std = f.statistics[spec.scope(scenario)]
        x = num[i, j] * std + mean
        row[f.name] = np.expm1(abs(x)) * np.sign(x) if f.normalization == 'log_standard' else x
      row.update({t: labels[t].numpy()[i] for t in spec.task_names})
      out.append(row)
  return pd.DataFrame(out).sort_values('row_id').reset_index(drop=True)


@pytest.mark.parametrize('scope', ['shared', 'scenario'])
def test_round_trip_returns_the_source_rows(tmp_path, scope):
  df = _rows()
  summary, cfg = _prepare_csv(tmp_path, df, statistics_scope=scope)
  spec = spec_lib.load_spec(cfg.output)
  assert spec.statistics_scope == scope
  seen = 0
  for split in spec.splits:
    for scenario in spec.scenario_names:
      got = _decode(cfg.output, spec, split, scenario)
      got['row_id'] = np.round(got['row_id']).astype(int)
      want = df.iloc[got['row_id']].reset_index(drop=True)
      assert (want['app'] == scenario).all()
      for c in ('city', 'device'):
        assert got[c].tolist() == want[c].tolist()
      np.testing.assert_allclose(got['price'], want['price'], rtol=1e-4, atol=1e-4)
      for t in ('click', 'buy'):
        np.testing.assert_array_equal(got[t], want[t])
      seen += len(got)
      assert summary['partitions'][split][scenario]['rows_kept'] == len(got)
  assert seen == len(df)
  assert sorted(np.concatenate([_decode(cfg.output, spec, s, sc)['row_id'].round().astype(int)
                                for s in spec.splits for sc in spec.scenario_names])) == list(range(len(df)))


def test_summary_counts_add_up_and_files_written(tmp_path):
  df = _rows(90)
  df['price'] = df['price'].astype(object)  # a text cell in a numeric column, as a CSV can hold
  df.loc[5, 'price'] = 'oops'
  df.loc[7, 'click'] = 3
  summary, cfg = _prepare_csv(tmp_path, df, on_bad_row='drop', valid_fraction=0)
  t = summary['totals']
  assert t['rows_read'] == 90 and t['rows_kept'] == 88
  assert t['rows_dropped'] == {'label_not_binary': 1, 'non_numeric_value': 1}
  assert summary['files'][cfg.input] == 90
  for split, parts in summary['partitions'].items():
    for scenario, p in parts.items():
      assert p['rows_read'] == p['rows_kept'] + sum(p['rows_dropped'].values())
      assert p['shards'] and all(os.path.exists(os.path.join(cfg.output, s)) for s in p['shards'])
      assert 0 <= p['label_rate']['click'] <= 1
  on_disk = json.load(open(os.path.join(cfg.output, 'summary.json')))
  assert on_disk['totals'] == summary['totals']
  assert max(len(p['shards']) for parts in summary['partitions'].values() for p in parts.values()) >= 2


def test_unknown_test_category_goes_to_oov_and_is_counted(tmp_path):
  train = pd.DataFrame({'app': ['a'] * 4, 'city': ['x', 'y', 'x', 'y'], 'price': [1.0] * 4, 'click': [0, 1, 0, 1]})
  test = train.assign(city=['x', 'new', 'new', 'y'])
  train.to_csv(tmp_path / 'train.csv', index=False)
  test.to_csv(tmp_path / 'test.csv', index=False)
  cfg = PrepareConfig(dataset='csv', input=str(tmp_path / 'train.csv'), test_input=str(tmp_path / 'test.csv'),
                      output=str(tmp_path / 'out'), scenario_column='app', categorical_columns=('city',),
                      numerical_columns=('price',), label_columns=('click',), valid_fraction=0)
  summary = prepare.prepare(cfg, log=lambda *_: None)
  assert summary['partitions']['test']['a']['handled'] == {'unknown_category_to_oov': {'city': 2}}
  spec = spec_lib.load_spec(cfg.output)
  ids = np.concatenate([f['categorical'].numpy()[:, 0] for f, _ in pipeline.make_dataset(
      cfg.output, spec, 'test', 'a', NO_SHUFFLE)])
  assert sorted(ids.tolist()) == [0, 0, 1, 2]
  # A constant numerical column has std 1 (not 0), so it encodes to 0 rather than NaN.
  assert spec.numerical[0].statistics['*'] == [1.0, 1.0]


def test_min_count_and_hashing(tmp_path):
  summary, cfg = _prepare_csv(tmp_path, _rows(), min_count=1000)
  spec = spec_lib.load_spec(cfg.output)
  assert all(f.vocabulary_size == 1 for f in spec.categorical)  # everything is OOV
  summary, cfg = _prepare_csv(tmp_path / 'h', _rows(), hash_bins=16)
  spec = spec_lib.load_spec(cfg.output)
  assert [f.input_dim for f in spec.categorical] == [16, 16]
  ids = np.concatenate([f['categorical'].numpy() for f, _ in pipeline.make_dataset(
      cfg.output, spec, 'train', 'news', NO_SHUFFLE)])
  assert ids.min() >= 0 and ids.max() < 16 and len(np.unique(ids[:, 0])) > 1


def test_spec_json_round_trip(tmp_path):
  _, cfg = _prepare_csv(tmp_path, _rows())
  spec = spec_lib.load_spec(cfg.output)
  assert spec_lib.DatasetSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec
  assert spec.task_names == ['click', 'buy'] and spec.scenario_column == 'app'
  assert [s.index for s in spec.scenarios] == list(range(len(spec.scenarios)))
  bad = spec.to_json() | {'version': 99}
  with pytest.raises(ValueError, match='version'):
    spec_lib.DatasetSpec.from_json(bad)
  # A vocabulary value with a comma, quotes and a newline survives the vocabulary file.
  vocab = spec_lib.load_vocabulary(cfg.output, spec.categorical[0].vocabulary_files['*'])
  assert 'a,b "quoted"' in vocab


def test_vocabulary_files_round_trip_any_text(tmp_path):
  values = ['', 'a,b "quoted"', 'line\nbreak', 'back\\slash', '\u2028 \x85 \x1c', 'é', '[1]', ' ']
  (tmp_path / 'v.txt').write_text(''.join(json.dumps(v) + '\n' for v in values), encoding='utf-8')
  assert spec_lib.load_vocabulary(str(tmp_path), 'v.txt') == values
  (tmp_path / 'empty.txt').write_text('', encoding='utf-8')
  assert spec_lib.load_vocabulary(str(tmp_path), 'empty.txt') == []


def test_safe_directory_names_are_distinct():
  taken = []
  for name in ['Amer Indian/Aleut', 'Amer Indian Aleut', '..', '']:
    taken.append(spec_lib.safe_directory_name(name, taken))
  assert len(set(taken)) == 4 and all('/' not in t and t not in ('.', '..', '') for t in taken)


def test_output_safety(tmp_path):
  _, cfg = _prepare_csv(tmp_path, _rows())
  with pytest.raises(FileExistsError, match='--overwrite'):
    _prepare_csv(tmp_path, _rows())
  # A failing run leaves neither a half-written folder nor a temporary one behind.
  bad = _rows()
  bad.loc[50, 'click'] = 7
  with pytest.raises(InputError):
    _prepare_csv(tmp_path / 'second', bad)
  assert not os.path.exists(tmp_path / 'second' / 'out')
  assert [n for n in os.listdir(tmp_path / 'second') if n.startswith('.prepare-')] == []


def test_empty_scenario_in_a_split_is_an_error(tmp_path):
  df = _rows(60)
  df.loc[0, 'app'] = 'rare'  # a scenario with one row cannot fill both splits
  with pytest.raises(InputError, match=r"scenario\(s\) \['rare'\] have no usable rows in the (train|test) split|"
                                       r"scenario\(s\).*rare"):
    _prepare_csv(tmp_path, df, test_fraction=0.5)


def test_selected_scenario_without_rows_is_an_error(tmp_path):
  with pytest.raises(InputError, match=r"\['mars'\] have no usable train rows"):
    _prepare_csv(tmp_path, _rows(), scenarios=('news', 'mars'))


def test_synthetic_prepare_records_true_probabilities_and_oracle(tmp_path):
  cfg = PrepareConfig(output=str(tmp_path / 'syn'), rows_per_scenario=2_000, seed=4)
  summary = prepare.prepare(cfg, log=lambda *_: None)
  assert summary['scenarios'] == ['NL', 'ES', 'FR', 'US']
  assert set(summary['oracle_auc']) == {'NL', 'ES', 'FR', 'US'}
  assert all(0.6 < a < 1 for s in summary['oracle_auc'].values() for a in s.values())
  spec = spec_lib.load_spec(cfg.output)
  assert spec.has_true_probabilities
  f, l = next(iter(pipeline.make_dataset(cfg.output, spec, 'test', 'ES',
                                         PipelineConfig(batch_size=400, with_true_prob=True))))
  assert f['true_prob'].shape == (400, 2)
  assert float(tf.reduce_min(f['true_prob'][:, 0] - f['true_prob'][:, 1])) >= 0  # p(ctcvr) <= p(ctr)
  assert set(np.unique(l['ctr'].numpy())) <= {0.0, 1.0}
  # the streamed (binned) oracle AUC is within its stated error of the exact AUC of the written test rows
  test_rows = PipelineConfig(batch_size=400, with_true_prob=True, num_epochs=1)
  batches = list(pipeline.make_dataset(cfg.output, spec, 'test', 'ES', test_rows))
  assert sum(len(l['ctcvr']) for _, l in batches) == summary['partitions']['test']['ES']['rows_kept']
  exact = metrics.exact_auc(np.concatenate([l['ctcvr'].numpy() for _, l in batches]),
                            np.concatenate([f['true_prob'][:, 1].numpy() for f, _ in batches]))
  assert abs(summary['oracle_auc']['ES']['ctcvr'] - exact) <= summary['oracle_auc_max_error'] + 1e-6


def test_log_standard_transform_is_odd_and_invertible():
  x = np.array([-10.0, -1.0, 0.0, 2.0, 1e6])
  y = statistics.transform(x, 'log_standard')
  np.testing.assert_allclose(np.sign(y) * np.expm1(np.abs(y)), x, rtol=1e-9)
  assert records.SHARD_PATTERN.format(3) == 'part-00003.rows'


def test_valid_split_is_held_out_of_train_and_statistics_come_from_train_only(tmp_path):
  df = _rows(400)
  df['city'] = [f'c{i}' for i in range(len(df))]  # one city per row: a valid row's city is unseen in train
  summary, cfg = _prepare_csv(tmp_path, df, valid_fraction=0.25)
  spec = spec_lib.load_spec(cfg.output)
  assert spec.splits == ['train', 'valid', 'test']
  ids = {split: np.concatenate([_decode(cfg.output, spec, split, s)['row_id'].round().astype(int)
                                for s in spec.scenario_names]) for split in spec.splits}
  assert not set(ids['valid']) & set(ids['train']) and not set(ids['valid']) & set(ids['test'])
  share = len(ids['valid']) / (len(ids['valid']) + len(ids['train']))
  assert 0.15 < share < 0.35
  city = spec.categorical[0]
  assert city.name == 'city' and city.vocabulary_size == len(ids['train']) + 1  # + the OOV bucket
  valid_cities = pd.concat([_decode(cfg.output, spec, 'valid', s) for s in spec.scenario_names])['city']
  assert valid_cities.isna().all()  # unseen in train: the OOV bucket
  price = spec.numerical[1]
  train_prices = df.iloc[ids['train']]['price'].astype(float)
  assert price.statistics['*'][0] == pytest.approx(train_prices.mean(), rel=1e-5)
  for scenario, p in summary['partitions']['valid'].items():
    assert p['rows_read'] == p['rows_kept'] > 0 and p['handled']['unknown_category_to_oov']['city'] == p['rows_kept']
  assert summary['totals']['rows_read'] == 400
  # The same seed holds out the same rows; 0 holds out none.
  again, _ = _prepare_csv(tmp_path / 'again', df, valid_fraction=0.25)
  assert again['partitions']['valid'] == summary['partitions']['valid']
  none, cfg0 = _prepare_csv(tmp_path / 'none', df, valid_fraction=0.0)
  assert 'valid' not in none['partitions'] and spec_lib.load_spec(cfg0.output).splits == ['train', 'test']
  with pytest.raises(ValueError, match='valid_fraction'):
    _prepare_csv(tmp_path / 'bad', df, valid_fraction=1.0)


def test_synthetic_test_rows_leave_train_unchanged(tmp_path):
  small = prepare.prepare(PrepareConfig(output=str(tmp_path / 'a'), rows_per_scenario=500), log=lambda *_: None)
  big = prepare.prepare(PrepareConfig(output=str(tmp_path / 'b'), rows_per_scenario=500, test_rows_per_scenario=900),
                        log=lambda *_: None)
  assert big['partitions']['train'] == small['partitions']['train']
  assert big['partitions']['valid'] == small['partitions']['valid']
  assert all(p['rows_kept'] == 900 for p in big['partitions']['test'].values())


def test_vocabulary_report_says_what_went_to_the_oov_bucket_and_why(tmp_path):
  df = _rows(300)
  df['city'] = ['c0'] * 100 + ['c1'] * 80 + ['c2'] * 60 + [f'once{i}' for i in range(60)]
  summary, cfg = _prepare_csv(tmp_path, df, valid_fraction=0.0, test_fraction=0.01, min_count=2,
                              max_vocabulary_size=2)
  report = summary['vocabularies']['city']['*']
  assert report['kept'] == 2 and report['over_max_vocabulary_size'] == 1
  assert report['below_min_count'] == report['distinct'] - 3 and report['below_min_count'] > 40
  assert 100 < report['train_rows_to_oov'] <= 120  # c2's rows and the single ones, less the few drawn into test
  city = spec_lib.load_spec(cfg.output).categorical[0]
  assert city.vocabulary_size == 3  # + the OOV bucket
  assert city.train_rows_per_value == sum(p['rows_kept'] for p in summary['partitions']['train'].values()) / 2
  assert not city.sparse
  assert 'vocabulary city: kept 2 of' in prepare.format_summary(summary)
  assert 'sparse ids' not in prepare.format_summary(summary)
  df['city'] = [f'c{i % 100}' for i in range(len(df))]  # about 3 train rows per city
  summary, cfg = _prepare_csv(tmp_path / 'sparse', df, valid_fraction=0.0, test_fraction=0.01)
  assert 'train rows per kept value, sparse ids: its table steps --sparse_embedding_lr_scale' in (
      prepare.format_summary(summary))
  city = spec_lib.load_spec(cfg.output).categorical[0]
  assert city.sparse and 2.5 < city.train_rows_per_value < 3.0


def test_pass_one_parses_each_input_once_and_writes_what_two_parses_write(tmp_path, monkeypatch):
  df = _rows(300)
  df['price'] = df['price'].astype(object)
  df.loc[7, 'price'] = 'oops'  # a dropped row: counted once
  parsed = collections.Counter()
  read = sources.read_table_chunks

  def counting(path, **kw):
    parsed[os.path.basename(path)] += 1
    yield from read(path, **kw)

  monkeypatch.setattr(sources, 'read_table_chunks', counting)
  once, _ = _prepare_csv(tmp_path / 'once', df, on_bad_row='drop')
  assert parsed == {'rows.csv': 2}  # train and valid in one read, then test (drawn from the same file)
  assert sum(sum(p['rows_dropped'].values()) for p in once['partitions']['train'].values()) + sum(
      sum(p['rows_dropped'].values()) for p in once['partitions']['test'].values()) == 1
  assert not [n for n in os.listdir(tmp_path / 'once') if n.startswith('.prepare')]  # scratch removed
  out = tmp_path / 'once' / 'out'
  assert not [d for d, _, _ in os.walk(out) if os.path.basename(d).startswith('.')]  # partitions renamed


def test_encoding_threads_write_what_one_thread_writes(tmp_path):
  df = _rows(400)
  one, _ = _prepare_csv(tmp_path / 'one', df, encode_threads=1)
  three, _ = _prepare_csv(tmp_path / 'three', df, encode_threads=3)
  assert sum(len(p['shards']) for p in three['partitions']['train'].values()) > 3  # many chunks in flight
  for key in ('partitions', 'totals', integrity.SHARDS, 'vocabularies'):
    assert one[key] == three[key], key
  with pytest.raises(ValueError, match='--encode_threads must be at least 1'):
    _prepare_csv(tmp_path / 'none', df, encode_threads=0)
