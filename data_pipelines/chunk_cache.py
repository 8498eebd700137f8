"""Parsed chunks kept on disk between prepare's two passes, so that the input is parsed once.

Prepare needs the vocabularies and normalization statistics (pass 1) before it can encode a row (pass 2), and
holding the rows in memory between the passes would make memory grow with the data. Pass 1 writes each
canonical chunk it has parsed and validated here, whole, with the positions of each split's rows in it
(about 600 bytes a row with 16 categorical and 63 numerical features), and pass 2 reads them back in the same
order, each file deleted once read. Reading a chunk back costs a fraction of parsing its CSV text again.
"""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
from typing import Iterator, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from data_pipelines import sources


class ChunkCache:
  """An ordered list of (chunk, its splits' rows) on disk, under a scratch folder of `parent` removed by `close`."""

  def __init__(self, parent: str):
    self.directory = tempfile.mkdtemp(prefix='.prepare-chunks-', dir=parent)
    self._files: List[str] = []
    self.splits: List[str] = []  # the splits it holds, in the order first added

  def add(self, frame: pd.DataFrame, parts: Sequence[Tuple[str, Optional[np.ndarray]]]) -> None:
    """Keeps `frame` and `parts`: [(split, positions of its rows in `frame`, or None for every row)]."""
    stem = os.path.join(self.directory, f'{len(self._files):06d}')
    floats = [c for c, dtype in frame.dtypes.items() if dtype == np.float64]
    # The float columns as one array (np.save writes pandas' column-major block as it is; pickle copied it
    # first, at 3x the time), the rest pickled.
    with open(stem + '.npy', 'wb') as f:
      np.save(f, frame[floats].to_numpy())
    with open(stem + '.pkl', 'wb') as f:
      pickle.dump((frame.drop(columns=floats), floats, list(parts)), f, protocol=pickle.HIGHEST_PROTOCOL)
    self._files.append(stem)
    for split, _ in parts:
      if split not in self.splits:
        self.splits.append(split)

  def chunks(self) -> Iterator[sources.ChunkParts]:
    """Every (chunk, parts) in the order added, the chunk's float columns last; each file is deleted once
    read."""
    for stem in self._files:
      with open(stem + '.pkl', 'rb') as f:
        rest, floats, parts = pickle.load(f)
      with open(stem + '.npy', 'rb') as f:
        values = np.load(f)
      os.remove(stem + '.pkl')
      os.remove(stem + '.npy')
      frame = pd.concat([rest, pd.DataFrame(values, index=rest.index, columns=floats, copy=False)], axis=1,
                        copy=False)
      yield frame, parts
    self._files = []

  def close(self) -> None:
    shutil.rmtree(self.directory, ignore_errors=True)

  def __enter__(self) -> 'ChunkCache':
    return self

  def __exit__(self, *exc) -> None:
    self.close()
