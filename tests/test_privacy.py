"""Differential privacy of the global updates: clipping and noise in the aggregator, epsilon by dp-accounting."""

import collections
import json

import numpy as np
import pytest
import tensorflow_federated as tff

from data_pipelines import prepare
from data_pipelines.config import PrepareConfig
from federated import aggregators, privacy, runtime, telemetry, training
from federated.config import AggregationConfig
from tests import helpers


def _classic_bound(z: float, rounds: int, delta: float) -> float:
  """Gaussian RDP eps(alpha) = T alpha / (2 z^2), converted with eps = rdp + log(1/delta) / (alpha - 1)."""
  alphas = np.linspace(1.01, 400, 200_000)
  return float(np.min(rounds * alphas / (2 * z * z) + np.log(1 / delta) / (alphas - 1)))


def test_epsilon_grows_with_rounds_and_shrinks_with_noise():
  cfg = AggregationConfig(dp_noise_multiplier=1.0, dp_delta=1e-5)
  eps = [privacy.epsilon(cfg, t) for t in (1, 10, 100)]
  assert eps[0] < eps[1] < eps[2]
  assert privacy.epsilon(AggregationConfig(dp_noise_multiplier=4.0), 10) < eps[1]
  for z, t in ((1.0, 10), (2.0, 50), (0.8, 3)):
    bound = _classic_bound(z, t, 1e-5)
    got = privacy.epsilon(AggregationConfig(dp_noise_multiplier=z), t)
    assert 0.7 * bound < got <= bound * 1.001, (z, t, got, bound)


def _aggregate(cfg, updates):
  k, d = len(updates), updates[0].size
  value_type = tff.types.to_type(collections.OrderedDict(
      [('global', [tff.TensorType(np.float32, (d,))]), ('personalized', collections.OrderedDict()),
       ('counts', tff.TensorType(np.float32, (k,)))]))
  factory = aggregators.TemplateAggregationFactory({}, cfg, privacy.global_factory(cfg, k))
  process = factory.create(value_type, tff.TensorType(np.float32))
  values = [collections.OrderedDict([('global', [u]), ('personalized', collections.OrderedDict()),
                                     ('counts', np.zeros(k, np.float32))]) for u in updates]
  out = process.next(process.initialize(), values, [np.float32(100.0)] * k)
  return np.asarray(out.result['global'][0])


def test_global_updates_are_clipped_and_noised():
  updates = [np.full(50, 10.0, np.float32), np.full(50, -3.0, np.float32), np.zeros(50, np.float32)]
  with runtime.local_runtime():
    # Noise multiplier ~0: only the clipping, then the unweighted mean over the K clients.
    clipped = _aggregate(AggregationConfig(dp_noise_multiplier=1e-9, dp_clip=1.0), updates)
    expected = (updates[0] / np.linalg.norm(updates[0]) + updates[1] / np.linalg.norm(updates[1])) / 3
    np.testing.assert_allclose(clipped, expected, atol=1e-4)
    noisy = [_aggregate(AggregationConfig(dp_noise_multiplier=2.0, dp_clip=1.0), updates) for _ in range(2)]
  assert not np.allclose(noisy[0], noisy[1])
  # Noise of std z * clip on the sum, divided by K: about 2 / 3 per coordinate.
  assert 0.4 < np.std(noisy[0] - expected) < 1.0


@pytest.mark.slow  # 23 s; the noise and accounting units stay fast
def test_dp_run_reports_epsilon(tmp_path):
  data = str(tmp_path / 'data')
  prepare.prepare(PrepareConfig(output=data, rows_per_scenario=300), log=lambda *_: None)
  setup = helpers.small_setup(data, str(tmp_path / 'run'), algorithm='fedavg', rounds=2)
  setup.aggregation_cfg = AggregationConfig(dp_noise_multiplier=1.1, dp_clip=0.5, dp_delta=1e-6)
  lines = []
  result = training.train_in_runtime(setup, log=lines.append)
  assert result['dp']['epsilon'] == pytest.approx(privacy.epsilon(setup.aggregation_cfg, 2))
  assert result['dp']['noise_multiplier'] == 1.1 and result['dp']['delta'] == 1e-6
  assert json.load(open(tmp_path / 'run' / 'metrics.json'))['dp'] == result['dp']
  rows = open(tmp_path / 'run' / 'rounds.csv').read().splitlines()
  column = rows[0].split(',').index('dp_epsilon')
  assert float(rows[1].split(',')[column]) == pytest.approx(privacy.epsilon(setup.aggregation_cfg, 1))
  assert any('dp_epsilon=' in l for l in lines)
  assert 0 < result['mean_auc'] < 1
  # DP's own measurements reach the aggregation telemetry (they were discarded before); TFF's Gaussian
  # fixed-noise query reports empty structures under these names.
  records = telemetry.read(str(tmp_path / 'run' / 'aggregation.jsonl'))
  assert len(records) == 2 and set(records[0]['global']) == {'dp_query_metrics', 'dp'} and records[0]['groups'] == {}
