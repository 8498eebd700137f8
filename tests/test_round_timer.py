"""The benchmarks' interleaved timing takes one step of each in turn; a round step carries its own state."""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'benchmarks'))
import round_timer  # noqa: E402  pylint: disable=g-import-not-at-top


class _Trainer:

  def __init__(self, name, calls):
    self.name, self.calls = name, calls

  def run_round(self, state, r):
    self.calls.append((self.name, r, state))
    return state + 1, {}


def test_rounds_alternate_between_setups_and_each_continues_from_its_own_state(monkeypatch):
  calls = []
  monkeypatch.setattr(round_timer, '_started', lambda setup: (_Trainer(setup, calls), 10 * len(setup)))
  times = round_timer.interleaved({key: round_timer.round_step(s) for key, s in {'a': 'x', 'b': 'yy'}.items()}, 3)
  assert calls == [('x', 0, 10), ('yy', 0, 20), ('x', 1, 11), ('yy', 1, 21), ('x', 2, 12), ('yy', 2, 22)]
  assert sorted(times) == ['a', 'b'] and all(len(t) == 3 and min(t) >= 0 for t in times.values())


def test_any_steps_interleave_and_keep_their_own_times():
  order = []
  steps = {key: (lambda key=key: order.append(key) or float(len(order))) for key in ('round', 'epoch')}
  assert round_timer.interleaved(steps, 2) == {'round': [1.0, 3.0], 'epoch': [2.0, 4.0]}
  assert order == ['round', 'epoch', 'round', 'epoch']


def test_round_times_runs_the_rounds_in_order_and_counts_faults_per_round(monkeypatch):
  calls, faults = [], []
  monkeypatch.setattr(round_timer, '_started', lambda setup: (_Trainer(setup, calls), 0))
  monkeypatch.setattr(round_timer, 'worker_page_faults', lambda: len(calls) * 5)
  times = round_timer.round_times('x', 3, faults)
  assert calls == [('x', 0, 0), ('x', 1, 1), ('x', 2, 2)]
  assert len(times) == 3 and min(times) >= 0 and faults == [5, 5, 5]
