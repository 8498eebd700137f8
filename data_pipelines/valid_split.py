"""The `valid` split: a seeded share of each scenario's train rows, held out for model selection.

Wraps any source whose files have no validation part of their own. The draw is fixed by the seed, the
chunk's position and the row's position in it, so the statistics pass (which reads `train` without these
rows: vocabularies and normalization stay train-only) and the encoding pass see the same rows held out.
Rows read and dropped are counted where the reader counts them (under `train`); each held-out row's read
is moved to `valid`, so read = kept + dropped holds in both.
"""

from __future__ import annotations

from typing import Iterator, List, Tuple

import numpy as np
import pandas as pd

from data_pipelines import accounting as accounting_lib
from data_pipelines import sources

TRAIN, VALID = 'train', 'valid'
_SEED_TAG = 13  # keeps this draw independent of the sources' own train/test draws


def has_own_validation(source: sources.Source) -> bool:
  return VALID in source.splits


class HeldOutValidation(sources.Source):
  """`source` with `fraction` of its train rows moved into a `valid` split."""

  def __init__(self, source: sources.Source, fraction: float, seed: int):
    if not 0 < fraction < 1:
      raise ValueError(f'valid_fraction must be in [0, 1), got {fraction}')
    if has_own_validation(source):
      raise ValueError(f'{source.dataset} has its own {VALID} split')
    self.inner, self.fraction, self.seed = source, fraction, seed
    for name in ('dataset', 'categorical', 'numerical', 'normalization', 'tasks', 'scenario_column',
                 'has_true_probabilities'):
      setattr(self, name, getattr(source, name))
    self.splits: List[str] = [s for s in source.splits if s != TRAIN]
    self.splits = [TRAIN, VALID] + self.splits

  def input_files(self):
    return self.inner.input_files()

  def check_files(self) -> None:
    self.inner.check_files()

  def _held_out(self, chunk_no: int, n: int) -> np.ndarray:
    return np.random.default_rng([self.seed, _SEED_TAG, chunk_no]).random(n) < self.fraction

  def chunks(self, split: str, ctx: sources.ReadContext) -> Iterator[pd.DataFrame]:
    if split not in (TRAIN, VALID):
      yield from self.inner.chunks(split, ctx)
      return
    # The valid pass re-reads the train files; their reads and drops were counted by the train pass.
    inner_ctx = ctx if split == TRAIN else sources.ReadContext(
        TRAIN, accounting_lib.RowAccounting(), ctx.on_bad_row, ctx.chunk_rows, ctx.arrow_csv)
    for frame, parts in self._divided(inner_ctx, [split]):
      for _, rows in parts:
        yield sources.take_rows(frame, rows)

  def split_chunks(self, splits, contexts) -> Iterator[Tuple[str, pd.DataFrame]]:
    for frame, parts in self.split_parts(splits, contexts):
      for split, rows in parts:
        yield split, frame if rows is None else sources.take_rows(frame, rows)

  def split_parts(self, splits, contexts) -> Iterator[sources.ChunkParts]:
    """Train and valid from one read of the train files (they are most of the rows), then the other splits."""
    for split in splits:
      if split == TRAIN:
        yield from self._divided(contexts[TRAIN], [s for s in (TRAIN, VALID) if s in splits])
      elif split != VALID or TRAIN not in splits:
        yield from ((frame, [(split, None)]) for frame in self.chunks(split, contexts[split]))

  def _divided(self, ctx: sources.ReadContext, splits: List[str]) -> Iterator[sources.ChunkParts]:
    """Each chunk of the inner train split, read and counted in `ctx`, with the positions of its rows in each
    of `splits` (train, valid or both); each held-out row's read moves to valid."""
    for chunk_no, frame in enumerate(self.inner.chunks(TRAIN, ctx)):
      held = self._held_out(chunk_no, len(frame))
      for scenario, n in frame.loc[held, sources.SCENARIO].value_counts().items():
        if n:  # (a categorical counts its unused categories too)
          ctx.accounting.move_read(TRAIN, VALID, scenario, int(n))
      parts = [(split, np.flatnonzero(held if split == VALID else ~held)) for split in splits]
      parts = [(split, rows) for split, rows in parts if len(rows)]
      if parts:
        yield frame, parts


def with_validation(source: sources.Source, fraction: float, seed: int) -> sources.Source:
  """The source with a `valid` split: its own where it has one, else held out of train (none at 0)."""
  if has_own_validation(source) or fraction == 0:
    return source
  return HeldOutValidation(source, fraction, seed)
