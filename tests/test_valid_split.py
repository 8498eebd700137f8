"""The held-out valid split: read together with train in one pass over the train files, with the same rows
and counts as reading each split on its own."""

import pandas as pd

from data_pipelines import accounting, sources, valid_split


class _Counted(sources.Source):
  """Two chunks of train rows and one of test; counts the passes over each split's files."""
  dataset, categorical, numerical, normalization, tasks = 'fake', [], [], {}, []
  scenario_column, splits = 'scenario', ['train', 'test']

  def __init__(self):
    self.passes = {'train': 0, 'test': 0}

  def chunks(self, split, ctx):
    self.passes[split] += 1
    for chunk in range(2 if split == 'train' else 1):
      rows = pd.DataFrame({'row': range(chunk * 100, chunk * 100 + 100), sources.SCENARIO: 's'})
      ctx.accounting.read(split, 's', len(rows))
      yield rows


def _contexts(acct):
  return {s: sources.ReadContext(s, acct) for s in ('train', 'valid', 'test')}


def test_train_and_valid_come_from_one_read_with_the_rows_of_separate_reads():
  inner = _Counted()
  source = valid_split.HeldOutValidation(inner, 0.25, seed=3)
  acct = accounting.RowAccounting()
  together = {}
  for split, frame in source.split_chunks(source.splits, _contexts(acct)):
    together.setdefault(split, []).extend(frame['row'])
    acct.keep(split, 's', len(frame), {})  # as prepare does
  assert inner.passes == {'train': 1, 'test': 1}
  separate = {s: [r for f in source.chunks(s, _contexts(accounting.RowAccounting())[s]) for r in f['row']]
              for s in source.splits}
  assert together == separate and 20 < len(together['valid']) < 80
  assert not set(together['valid']) & set(together['train'])
  counts = acct.to_json([])['partitions']
  assert counts['valid']['s']['rows_read'] == len(together['valid'])
  assert counts['train']['s']['rows_read'] == 200 - len(together['valid'])
