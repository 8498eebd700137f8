"""FedAvgM: a registered algorithm whose server applies the mean global update with momentum."""

import collections

import numpy as np
import pytest

from data_pipelines import pipeline, prepare, spec as spec_lib
from data_pipelines.config import PrepareConfig
from federated import algorithms, run_directory, runtime, trainers
from federated.algorithms import fedavgm
from tests import helpers


@pytest.fixture(scope='module')
def data(tmp_path_factory):
  out = str(tmp_path_factory.mktemp('fedavgm') / 'data')
  prepare.prepare(PrepareConfig(output=out, rows_per_scenario=600), log=lambda *_: None)
  return out


def _mean_update(fp, spec, data, global_w, round_num):
  """The example-weighted mean of the clients' updates from `global_w`, computed outside the round by the
  round's own client computation (same inputs, same seed)."""
  total, weight = None, 0.0
  for s in spec.scenarios:
    out = fp.client_update(global_w, collections.OrderedDict(
        data=pipeline.partition_pattern(data, spec, 'train', s.name), state_in='', state_out='',
        key=np.int32(s.index), seed=np.int32(run_directory.round_seed(0, round_num))))
    update = [float(out['weight']) * np.asarray(u, np.float64) for u in out['update']['global']]
    total = update if total is None else [t + u for t, u in zip(total, update)]
    weight += float(out['weight'])
  return [t / weight for t in total]


def test_fedavgm_steps_are_the_mean_update_plus_momentum(data, tmp_path):
  assert 'fedavgm' in algorithms.names() and algorithms.get('fedavgm').family == 'baseline'
  setup = helpers.small_setup(data, str(tmp_path / 'run'), 'fedavgm')
  spec = spec_lib.load_spec(data)
  with runtime.local_runtime():
    trainer = trainers.build_trainer(setup, spec, data, run_directory.RunDirectory(setup.cfg.output),
                                     trainers.make_model_fn(setup, spec))
    state = trainer.initialize()
    w = [[np.asarray(x) for x in state['model']['global']]]
    steps = []
    for r in range(2):
      steps.append(_mean_update(trainer.fp, spec, data, w[-1], r))
      state, _ = trainer.run_round(state, r)
      w.append([np.asarray(x) for x in state['model']['global']])
  beta = fedavgm.SERVER_MOMENTUM
  for w0, w1, w2, d1, d2 in zip(w[0], w[1], w[2], steps[0], steps[1]):
    np.testing.assert_allclose(w1, w0 + d1, atol=2e-6)  # the momentum buffer starts empty: FedAvg's step
    np.testing.assert_allclose(w2, w1 + d2 + beta * d1, atol=2e-6)  # then the first step, times beta, again
  assert max(np.abs(beta * d).max() for d in steps[0]) > 1e-4  # momentum made a visible difference
