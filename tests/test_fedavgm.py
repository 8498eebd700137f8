"""FedAvgM: a registered algorithm whose server applies the mean global update with momentum."""

import numpy as np
import pytest

from data_pipelines import prepare, spec as spec_lib
from data_pipelines.config import PrepareConfig
from federated import algorithms, run_directory, runtime, trainers
from federated.algorithms import fedavgm
from tests import helpers


@pytest.fixture(scope='module')
def data(tmp_path_factory):
  out = str(tmp_path_factory.mktemp('fedavgm') / 'data')
  prepare.prepare(PrepareConfig(output=out, rows_per_scenario=600), log=lambda *_: None)
  return out


def _global_values(data, output, algorithm):
  """The global values at the start and after rounds 1 and 2."""
  setup = helpers.small_setup(data, output, algorithm)
  spec = spec_lib.load_spec(data)
  trainer = trainers.build_trainer(setup, spec, data, run_directory.RunDirectory(output),
                                   trainers.make_model_fn(setup, spec))
  state = trainer.initialize()
  out = [[np.asarray(w) for w in state['model']['global']]]
  for r in range(2):
    state, _ = trainer.run_round(state, r)
    out.append([np.asarray(w) for w in state['model']['global']])
  return out


def test_fedavgm_is_fedavg_with_server_momentum(data, tmp_path):
  assert 'fedavgm' in algorithms.names() and algorithms.get('fedavgm').family == 'baseline'
  with runtime.local_runtime():
    avg = _global_values(data, str(tmp_path / 'avg'), 'fedavg')
    avgm = _global_values(data, str(tmp_path / 'avgm'), 'fedavgm')
  # Round 1: the momentum buffer is empty, so the step is the mean update itself, as in FedAvg. Round 2 starts
  # from the same weights, so the clients send the same updates, and the server adds momentum x the first.
  beta = fedavgm.SERVER_MOMENTUM
  for w0, a1, m1, a2, m2 in zip(avg[0], avg[1], avgm[1], avg[2], avgm[2]):
    np.testing.assert_allclose(m1, a1, atol=1e-6)
    np.testing.assert_allclose(m2, a2 + beta * (a1 - w0), atol=1e-5)
  assert any(np.abs(m - a).max() > 1e-4 for m, a in zip(avgm[2], avg[2]))  # the momentum made a difference
