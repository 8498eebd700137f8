"""The chunk cache between prepare's passes: order, content, clean-up and write errors."""

import os

import numpy as np
import pandas as pd
import pytest

from data_pipelines import chunk_cache


def _frame(i: int) -> pd.DataFrame:
  return pd.DataFrame({'x': np.arange(i, i + 3, dtype=np.float64), 'c': pd.Categorical(['a', 'b', 'a'])})


def test_frames_come_back_in_the_order_added_and_their_files_go(tmp_path):
  with chunk_cache.ChunkCache(str(tmp_path)) as cache:
    for i, split in enumerate(['train', 'valid', 'train', 'train']):
      cache.add(split, _frame(i))
    assert cache.splits == ['train', 'valid']
    out = list(cache.frames())
    assert [s for s, _ in out] == ['train', 'valid', 'train', 'train']
    for i, (_, frame) in enumerate(out):
      pd.testing.assert_frame_equal(frame, _frame(i))
    assert not os.listdir(cache.directory)
  assert not os.path.exists(cache.directory)


def test_a_failed_write_is_raised(tmp_path):
  with chunk_cache.ChunkCache(str(tmp_path)) as cache:
    os.rmdir(cache.directory)
    with pytest.raises(OSError):
      cache.add('train', _frame(0))
