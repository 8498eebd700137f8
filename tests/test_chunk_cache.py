"""The chunk cache between prepare's passes: order, content, clean-up and write errors."""

import os

import numpy as np
import pandas as pd
import pytest

from data_pipelines import chunk_cache


def _frame(i: int) -> pd.DataFrame:
  return pd.DataFrame({'x': np.arange(i, i + 3, dtype=np.float64), 'c': pd.Categorical(['a', 'b', 'a']),
                       'y': np.full(3, 0.5 + i), 'k': np.array([0, 1, i], np.int8)})


def test_chunks_come_back_in_the_order_added_with_their_parts_and_their_files_go(tmp_path):
  added = [[('train', np.array([0, 2])), ('valid', np.array([1]))], [('valid', None)], [('train', None)]]
  with chunk_cache.ChunkCache(str(tmp_path)) as cache:
    for i, parts in enumerate(added):
      cache.add(_frame(i), parts)
    assert cache.splits == ['train', 'valid']
    out = list(cache.chunks())
    assert len(out) == len(added)
    for i, (frame, parts) in enumerate(out):
      pd.testing.assert_frame_equal(frame, _frame(i), check_like=True)  # its float columns last
      assert [(s, None if r is None else r.tolist()) for s, r in parts] == [
          (s, None if r is None else r.tolist()) for s, r in added[i]]
    assert not os.listdir(cache.directory)
  assert not os.path.exists(cache.directory)


def test_a_failed_write_is_raised(tmp_path):
  with chunk_cache.ChunkCache(str(tmp_path)) as cache:
    os.rmdir(cache.directory)
    with pytest.raises(OSError):
      cache.add(_frame(0), [('train', None)])
