"""The fast CSV path (pyarrow) gives what the pandas path gives: the same rows, counts and errors, on clean
files and on files whose later chunks it must hand back to pandas."""

import gzip
import os
import threading

import numpy as np
import pandas as pd
import pytest

from data_pipelines import accounting, arrow_csv, csv_dataset, prepare, records, sources, table
from data_pipelines import spec as spec_lib
from data_pipelines.config import PrepareConfig
from data_pipelines.errors import InputError

from tests.helpers import shaped_csv

CHUNK = 40
COLUMNS = ['app', 'city', 'price', 'click']


def _lines(n=200, seed=0):
  rng = np.random.default_rng(seed)
  return [f'{"xy"[i % 2]},c{rng.integers(0, 7)},{rng.normal():.4f},{int(rng.random() < 0.3)}' for i in range(n)]


def _write(tmp_path, lines, name='rows.csv', last_line_break=True):
  path = str(tmp_path / name)
  text = '\n'.join([','.join(COLUMNS)] + lines) + ('\n' if last_line_break else '')
  if name.endswith('.gz'):
    with gzip.open(path, 'wt') as f:
      f.write(text)
  else:
    with open(path, 'w') as f:
      f.write(text)
  return path


def _read(path, arrow, on_bad_row='error'):
  """(rows as values, per-chunk lengths, the accounting) of the train split."""
  src = csv_dataset.csv_source(path, categorical=['city'], numerical=['price'], labels=['click'],
                               scenario_column='app', test_path=path)
  acct = accounting.RowAccounting()
  ctx = sources.ReadContext('train', acct, on_bad_row, CHUNK, arrow_csv=arrow)
  frames = list(src.chunks('train', ctx))
  rows = pd.concat(frames, ignore_index=True)
  for scenario, group in rows.groupby(sources.SCENARIO):
    acct.keep('train', scenario, len(group), {'click': int(group['click'].sum())})
  rows = rows.astype({c: object for c in rows.columns if isinstance(rows[c].dtype, pd.CategoricalDtype)})
  return rows, [len(f) for f in frames], acct.to_json(['click'])


def _same_on_both_paths(path, on_bad_row='drop'):
  fast, slow = _read(path, True, on_bad_row), _read(path, False, on_bad_row)
  pd.testing.assert_frame_equal(fast[0], slow[0])
  assert fast[1:] == slow[1:]
  return fast


def _fast_path(path):
  reader = arrow_csv.ArrowChunks(path, chunk_rows=CHUNK, header=True, names=None, sep=',',
                                 columns={'city': 'text', 'app': 'text', 'price': 'number', 'click': 'label'})
  frames = list(reader)
  return reader, frames


# One read, many, and reads shorter than the header and the rows (8 bytes, 16 a read).
@pytest.mark.parametrize('block_bytes', [arrow_csv.BLOCK_BYTES, 700, 8])
@pytest.mark.parametrize('last_line_break', [True, False])
@pytest.mark.parametrize('name', ['rows.csv', 'rows.csv.gz'])  # mapped into memory, or read through gzip
def test_a_clean_file_is_read_by_pyarrow_alone(tmp_path, monkeypatch, block_bytes, last_line_break, name):
  monkeypatch.setattr(arrow_csv, 'BLOCK_BYTES', block_bytes)
  path = _write(tmp_path, _lines(), name, last_line_break)
  reader, frames = _fast_path(path)
  assert reader.complete and reader.rows_done == 200 and [len(f) for f, _ in frames] == [CHUNK] * 5
  assert [line for _, line in frames] == [2, 42, 82, 122, 162]
  first = frames[0][0]
  assert isinstance(first['city'].dtype, pd.CategoricalDtype) and first['price'].dtype == np.float64
  rows, lengths, _ = _same_on_both_paths(path)
  assert len(rows) == 200 and lengths == [CHUNK] * 5


@pytest.mark.parametrize('bad,why', [
    ('y,c1,,0', 'empty or non-finite number'),
    ('y,c1,nan,0', 'empty or non-finite number'),
    ('y,c1,-inf,0', 'empty or non-finite number'),
    ('y,c1,1.0,0.5', 'label other than 0 and 1'),
    ('y,c1,oops,0', 'pyarrow'),
    ('y,c1,1.0,2', 'label other than 0 and 1'),
    ('y, c1,1.0,0', 'starts with whitespace'),
    ('', ''),  # a blank line
    ('y,"c1\nc2",1.0,0', 'spans lines'),  # a line break inside a quoted value
    ('y,c1,1.0', 'pyarrow'),  # a short row
])
def test_pandas_reads_on_from_the_chunk_pyarrow_stops_at(tmp_path, monkeypatch, bad, why):
  monkeypatch.setattr(arrow_csv, 'BLOCK_BYTES', 512)  # a parse error fails its read (PARALLEL_BLOCKS blocks) only
  lines = _lines()
  lines[130] = bad  # in the fourth chunk
  path = _write(tmp_path, lines)
  reader, frames = _fast_path(path)
  assert not reader.complete and why in reader.stopped_by
  if 'number' in why or 'label' in why:  # checked chunk by chunk
    assert reader.rows_done == 3 * CHUNK
  else:  # a parse error fails its read; text is checked by its parse blocks' dictionaries
    assert 0 < reader.rows_done <= 3 * CHUNK and reader.rows_done % CHUNK == 0
  _, lengths, _ = _same_on_both_paths(path)
  assert lengths[:3] == [CHUNK] * 3


def test_numbers_whose_sum_overflows_are_read_by_pandas(tmp_path):
  lines = _lines()
  lines[130] = lines[131] = 'y,c1,1.7e308,0'  # finite, each: the fast path checks a chunk's sums
  path = _write(tmp_path, lines)
  reader, _ = _fast_path(path)
  assert reader.rows_done == 3 * CHUNK and 'non-finite' in reader.stopped_by
  rows, lengths, _ = _same_on_both_paths(path)
  assert len(rows) == 200 and lengths == [CHUNK] * 5


def test_a_bad_value_after_the_fast_chunks_is_reported_as_pandas_reports_it(tmp_path):
  lines = _lines()
  lines[130] = 'y,c1,1.0,2'
  path = _write(tmp_path, lines)
  errors = []
  for arrow in (True, False):
    with pytest.raises(InputError) as e:
      _read(path, arrow)
    errors.append(str(e.value))
  assert errors[0] == errors[1]
  assert 'row 132' in errors[0] and "column 'click'" in errors[0] and "'2'" in errors[0]


def test_compressed_file_and_missing_column(tmp_path):
  _same_on_both_paths(_write(tmp_path, _lines(), 'rows.csv.gz'))
  path = str(tmp_path / 'no_price.csv')
  with open(path, 'w') as f:
    f.write('app,city,click\nx,c1,0\n')
  reader, frames = _fast_path(path)
  assert frames == [] and reader.rows_done == 0 and 'pyarrow' in reader.stopped_by
  with pytest.raises(InputError, match=r"missing column\(s\) \['price'\]"):
    _read(path, True)


def test_a_consumer_that_stops_early_leaves_no_parser_thread(tmp_path):
  path = _write(tmp_path, _lines())
  reader = arrow_csv.ArrowChunks(path, chunk_rows=CHUNK, header=True, names=None, sep=',',
                                 columns={'city': 'text', 'price': 'number'})
  it = iter(reader)
  next(it)
  it.close()
  assert not [t for t in threading.enumerate() if t.name == 'arrow-csv']
  assert reader.rows_done == CHUNK and not reader.complete


def test_the_next_file_is_parsed_once_this_one_is_and_a_stopped_read_stops_it(tmp_path):
  columns = {'city': 'text', 'price': 'number'}
  first, second = (arrow_csv.ArrowChunks(_write(tmp_path, _lines(seed=i), f'{i}.csv'), chunk_rows=CHUNK,
                                         header=True, names=None, sep=',', columns=columns) for i in (0, 1))
  started = threading.Event()
  first.then = lambda: (second.start(), started.set())
  frames = list(first)
  assert started.wait(10) and second._parser is not None  # pylint: disable=protected-access
  assert [len(f) for f in second] == [len(f) for f in frames]  # the second file read whole, from its start
  assert second.complete
  # A table source's read stopped at a bad row leaves no parser behind, started ahead or not.
  bad = _lines(seed=2)
  bad[3] = 'xy,c1,oops,0'
  paths = [_write(tmp_path, lines, f'part{i}.csv') for i, lines in enumerate((bad, _lines(seed=3)))]
  src = table.TableSource(dataset='csv', files=[table.TableFile(p, split='train') for p in paths],
                          categorical=['city'], numerical=['price'], tasks=[spec_lib.Task('click', 'click')],
                          labels=table.binary_labels({'click': 'click'}), label_columns=['click'],
                          scenario_column='app', numeric_labels=True)
  with pytest.raises(InputError, match="column 'price'"):
    list(src.chunks('train', sources.ReadContext('train', accounting.RowAccounting(), 'error', CHUNK)))
  assert not [t for t in threading.enumerate() if t.name == 'arrow-csv' and t.is_alive()]


def test_prepare_writes_the_same_bytes_on_both_paths(tmp_path):
  kw = shaped_csv(str(tmp_path / 'data.csv'), scenario_rows=(900, 700), categorical=3, numerical=3)
  outputs = []
  for arrow in (True, False):
    out = str(tmp_path / f'prepared_{arrow}')
    prepare.prepare(PrepareConfig(output=out, chunk_rows=250, arrow_csv=arrow, **kw), log=lambda *_: None)
    outputs.append(out)
  files = sorted(os.path.relpath(os.path.join(d, f), outputs[0]) for d, _, fs in os.walk(outputs[0]) for f in fs
                 if f != 'summary.json')
  assert any(f.endswith(records.SHARD_SUFFIX) for f in files)
  for f in files:
    with open(os.path.join(outputs[0], f), 'rb') as a, open(os.path.join(outputs[1], f), 'rb') as b:
      assert a.read() == b.read(), f
