"""Pass one's statistics: counts and moments summed over chunks give what one pass over all rows gives."""

import collections
import types

import numpy as np
import pandas as pd

from data_pipelines import sources, statistics


def _chunks(n_chunks=70, rows=50, seed=0):
  rng = np.random.default_rng(seed)
  for i in range(n_chunks):
    values = pd.Series([f'v{int(v)}' for v in rng.zipf(1.5, rows) % 40])
    # The fast CSV path hands over categoricals that list values the chunk does not use; pandas, strings.
    yield values.astype(pd.CategoricalDtype(sorted(set(values)) + ['unused'])) if i % 2 else values


def test_value_counts_over_many_chunks_equal_a_counter():
  counts, expected = statistics.ValueCounts(), collections.Counter()
  for chunk in _chunks():
    counts.add(chunk)
    expected.update(chunk.astype(str).tolist())
  got = dict(counts.items())
  assert got == dict(expected) and 'unused' not in got
  assert all(type(v) is str and type(n) is int for v, n in got.items())  # JSON-ready
  assert list(statistics.ValueCounts().items()) == []


def _source(numerical, normalization):
  return types.SimpleNamespace(categorical=['c'], numerical=numerical, normalization=normalization)


def test_moments_and_groups_are_those_of_each_scenario():
  rng = np.random.default_rng(1)
  frames = []
  for i in range(5):
    n = 40
    scenario = ['a'] * n if i < 2 else list(rng.choice(['b', 'a'], n))  # one scenario, then mixed
    frames.append(pd.DataFrame({'c': [f'x{j % 3}' for j in range(n)], 'p': rng.normal(size=n),
                                'q': rng.lognormal(size=n) * 100, sources.SCENARIO: scenario}))
  builder = statistics.StatisticsBuilder(_source(['p', 'q'], {'p': 'standard', 'q': 'log_standard'}), 'scenario')
  for frame in frames:
    builder.add(frame)
  rows = pd.concat(frames)
  for scenario, group in rows.groupby(sources.SCENARIO):
    assert builder.rows[scenario] == len(group)
    for c in ('p', 'q'):
      v = statistics.transform(group[c].to_numpy(), 'log_standard' if c == 'q' else 'standard')
      n, s, ss = builder.moments[scenario][c]
      assert n == len(v)
      np.testing.assert_allclose([s, ss], [v.sum(), np.square(v).sum()], rtol=1e-12)
    assert dict(builder.counts[scenario]['c'].items()) == group['c'].value_counts().to_dict()


def test_scenario_rows_keep_a_one_scenario_chunk_whole_and_group_the_others():
  one = pd.DataFrame({'x': [1, 2], sources.SCENARIO: ['a', 'a']})
  assert list(sources.scenario_rows(one)) == [('a', None)]  # nothing to gather
  [(name, rows)] = list(sources.scenario_rows(one, np.array([1])))
  assert name == 'a' and rows.tolist() == [1]
  mixed = pd.DataFrame({'x': [1, 2, 3, 4], sources.SCENARIO: ['b', 'a', 'b', 'c']})
  assert [(s, r.tolist()) for s, r in sources.scenario_rows(mixed)] == [('b', [0, 2]), ('a', [1]), ('c', [3])]
  # Among some rows: positions in the whole chunk, scenarios in order of first appearance among those rows.
  assert [(s, r.tolist()) for s, r in sources.scenario_rows(mixed, np.array([1, 2, 3]))] == [
      ('a', [1]), ('b', [2]), ('c', [3])]
  assert list(sources.scenario_rows(mixed.iloc[:0])) == []
  assert list(sources.scenario_rows(mixed, np.array([], np.int64))) == []


def test_statistics_of_some_rows_are_those_of_the_rows_taken_apart():
  rng = np.random.default_rng(2)
  n = 60
  frame = pd.DataFrame({'c': pd.Categorical([f'x{j % 4}' for j in range(n)]), 'p': rng.normal(size=n),
                        'q': rng.lognormal(size=n), sources.SCENARIO: list(rng.choice(['a', 'b'], n))})
  rows = np.flatnonzero(rng.random(n) < 0.7)
  source = _source(['p', 'q'], {'p': 'standard', 'q': 'log_standard'})
  some, apart = statistics.StatisticsBuilder(source, 'scenario'), statistics.StatisticsBuilder(source, 'scenario')
  some.add(frame, rows)
  apart.add(sources.take_rows(frame, rows))
  assert some.rows == apart.rows
  for scenario in ('a', 'b'):
    for c in ('p', 'q'):  # bit for bit: the same values summed in the same order
      assert some.moments[scenario][c].tolist() == apart.moments[scenario][c].tolist()
    assert dict(some.counts[scenario]['c'].items()) == dict(apart.counts[scenario]['c'].items())


def test_counts_by_the_codes_a_caller_has_equal_counts_by_value():
  rng = np.random.default_rng(4)
  frames = [pd.DataFrame({'c': pd.Series([f'x{v}' for v in rng.integers(0, 9, 30)]).astype('category'),
                          sources.SCENARIO: list(rng.choice(['a', 'b'], 30))}) for _ in range(4)]
  source = _source([], {})
  coded, plain = statistics.StatisticsBuilder(source, 'scenario'), statistics.StatisticsBuilder(source, 'scenario')
  for frame in frames:
    rows = np.flatnonzero(rng.random(30) < 0.6)
    # prepare's codes: per scope, the chunk's values looked up once, for its writing and its counting alike
    codes = {scope: [coded.counts[scope]['c'].codes(frame['c'])] for scope in ('a', 'b')}
    coded.add(frame, rows, codes=codes)
    plain.add(frame, rows)
  for scenario in ('a', 'b'):
    assert dict(coded.counts[scenario]['c'].items()) == dict(plain.counts[scenario]['c'].items())
    assert sum(n for _, n in coded.counts[scenario]['c'].items()) == coded.rows[scenario]
