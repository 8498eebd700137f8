"""Quality on small synthetic data with fixed seeds: PF-MSMTrec above training alone and above FedAvg.

The synthetic default has scenarios whose own part of the true logits is as strong as the shared part
(concept_shift=1.0), the regime in which personalization pays; see README "Results" for the measured regimes.
"""

import pytest

from data_pipelines import prepare
from data_pipelines.config import PrepareConfig
from federated import training
from federated.config import AggregationConfig, ClientConfig, TrainConfig
from pfmsmt_tf.config import ModelConfig

# Measured (pfmsmt train, 2 cores): pfmsmtrec 0.7830, fedbn 0.7697, local 0.7644, fedavg 0.7618 mean AUC.
# With fewer local steps (10,000 rows per scenario, 8 rounds) the federated methods had not converged and
# local training led (local 0.758, pfmsmtrec 0.722, fedavg 0.710): the test uses the default size.
ROWS_PER_SCENARIO = 25_000
ROUNDS = 10


@pytest.fixture(scope='module')
def results(tmp_path_factory):
  root = tmp_path_factory.mktemp('quality')
  data = str(root / 'data')
  prepare.prepare(PrepareConfig(output=data, rows_per_scenario=ROWS_PER_SCENARIO, seed=0), log=lambda *_: None)
  out = {}
  for algorithm in ('pfmsmtrec', 'fedavg', 'local'):
    setup = training.RunSetup(TrainConfig(data=data, algorithm=algorithm, rounds=ROUNDS, output=str(root / algorithm),
                                          eval_every=ROUNDS, seed=0),
                              ModelConfig(), ClientConfig(), AggregationConfig())
    out[algorithm] = training.train_in_runtime(setup, log=lambda *_: None)['mean_auc']
  return out


@pytest.mark.slow
def test_pfmsmtrec_beats_local_and_fedavg(results):
  assert results['pfmsmtrec'] > results['fedavg'] + 0.005, results
  assert results['pfmsmtrec'] > results['local'] + 0.005, results
