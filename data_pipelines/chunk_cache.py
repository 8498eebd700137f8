"""Parsed chunks kept on disk between prepare's two passes, so that the input is parsed once.

Prepare needs the vocabularies and normalization statistics (pass 1) before it can encode a row (pass 2), and
holding the rows in memory between the passes would make memory grow with the data. Pass 1 writes each
canonical chunk it has parsed and validated here (pickled: about 600 bytes a row with 16 categorical and 63
numerical features) and pass 2 reads them back in the same order, each file deleted once read. Reading a
pickled chunk costs a fraction of parsing its CSV text again.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Iterator, List, Tuple

import pandas as pd


class ChunkCache:
  """An ordered list of (split, frame) on disk, under a scratch folder of `parent` removed by `close`."""

  def __init__(self, parent: str):
    self.directory = tempfile.mkdtemp(prefix='.prepare-chunks-', dir=parent)
    self._entries: List[Tuple[str, str]] = []  # (split, file)
    self.splits: List[str] = []  # the splits it holds, in the order first added

  def add(self, split: str, frame: pd.DataFrame) -> None:
    path = os.path.join(self.directory, f'{len(self._entries):06d}.pkl')
    frame.to_pickle(path)
    self._entries.append((split, path))
    if split not in self.splits:
      self.splits.append(split)

  def frames(self) -> Iterator[Tuple[str, pd.DataFrame]]:
    """Every (split, frame) in the order added; each file is deleted once read."""
    for split, path in self._entries:
      frame = pd.read_pickle(path)
      os.remove(path)
      yield split, frame
    self._entries = []

  def close(self) -> None:
    shutil.rmtree(self.directory, ignore_errors=True)

  def __enter__(self) -> 'ChunkCache':
    return self

  def __exit__(self, *exc) -> None:
    self.close()
