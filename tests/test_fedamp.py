"""FedAMP: similarity weights on parameters with known answers, and the aggregator that keeps each client's
parameters (as offsets from the common start) so that the weights see parameters, not updates."""

import collections
import math

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_federated as tff

from federated import aggregators as agg
from federated import algorithms, personalization, runtime
from federated.config import AggregationConfig
from federated.personalization import fedamp

CFG = AggregationConfig(personalization='fedamp', conflict='none', fedamp_alpha=0.5, fedamp_sigma=2.0)


def _fedamp_by_hand(params, alpha, sigma):
  """FedAMP's server step on absolute parameters, written out: u_k = sum_j xi_kj w_j."""
  k = len(params)
  xi = np.zeros((k, k))
  for i in range(k):
    for j in range(k):
      if i != j:
        xi[i, j] = alpha * math.exp(-np.sum((params[i] - params[j]) ** 2) / sigma) / sigma
    xi[i] /= max(xi[i].sum(), 1.0)
    xi[i, i] = 1.0 - xi[i].sum()
  return xi @ params


class FedAmpTest(tf.test.TestCase):

  def test_weights_by_hand(self):
    params = tf.constant([[0.0, 0.0], [1.0, 0.0], [10.0, 0.0]])
    w = fedamp.mixing_weights(params, None, CFG).numpy()
    near = 0.5 * math.exp(-1 / 2.0) / 2.0
    self.assertAllClose(w[0], [1 - near, near, 0.0], atol=1e-7)
    self.assertAllClose(w.sum(axis=1), np.ones(3))
    self.assertAllClose(w, w.T)  # equal distances both ways, and the same alpha for every client
    crowded = fedamp.mixing_weights(tf.zeros([4, 3]), None, AggregationConfig(fedamp_alpha=10.0, fedamp_sigma=1.0))
    self.assertAllClose(crowded.numpy(), np.full((4, 4), 1 / 3) * (1 - np.eye(4)))  # scaled to sum to 1

  def test_the_rule_is_on_parameters_and_the_others_on_updates(self):
    self.assertEqual(personalization.kind('fedamp'), personalization.ON_PARAMETERS)
    self.assertEqual(personalization.kind('attention'), personalization.STATELESS)
    alg = algorithms.get('fedamp')
    self.assertEqual((alg.personalization, alg.conflict, alg.family), ('fedamp', 'none', 'baseline'))

  def test_two_rounds_in_tff_equal_fedamp_on_absolute_parameters(self):
    k, d = 3, 2
    value_type = tff.types.to_type(collections.OrderedDict([
        ('global', []), ('personalized', collections.OrderedDict(model=tff.TensorType(np.float32, [k, d]))),
        ('counts', tff.TensorType(np.float32, [k]))]))
    process = agg.TemplateAggregationFactory({'model': 'none'}, CFG).create(value_type, tff.TensorType(np.float32))
    start = np.array([5.0, -3.0])  # the common start: the weights must not depend on it
    rows = np.tile(start, (k, 1))
    rng = np.random.default_rng(0)
    with runtime.local_runtime():
      state = process.initialize()
      for _ in range(2):
        updates = rng.normal(scale=0.8, size=(k, d)).astype(np.float32)
        values = []
        for i in range(k):
          scattered = np.zeros((k, d), np.float32)
          scattered[i] = updates[i]
          counts = np.zeros(k, np.float32)
          counts[i] = 1.0
          values.append(collections.OrderedDict([('global', []), ('personalized', collections.OrderedDict(
              model=scattered)), ('counts', counts)]))
        out = process.next(state, values, [1.0] * k)
        state = out.state
        want = _fedamp_by_hand(rows + updates, CFG.fedamp_alpha, CFG.fedamp_sigma)
        self.assertAllClose(rows + out.result['personalized']['model'], want, atol=1e-5)
        rows = want
    self.assertAllClose(state['rules']['model']['offsets'], rows - start, atol=1e-5)


@pytest.mark.slow
def test_a_fedamp_run_trains_resumes_and_exports(tmp_path):
  from data_pipelines import prepare  # pylint: disable=g-import-not-at-top
  from data_pipelines.config import PrepareConfig  # pylint: disable=g-import-not-at-top
  from federated import api  # pylint: disable=g-import-not-at-top
  data = str(tmp_path / 'data')
  prepare.prepare(PrepareConfig(output=data, rows_per_scenario=400), log=lambda *_: None)
  small = dict(embedding_dim=4, expert_units=(8,), tower_units=(4,), batch_size=128)
  run = api.train(log=lambda *_: None, data=data, algorithm='fedamp', rounds=2, output=str(tmp_path / 'run'), **small)
  assert np.isfinite(run.mean_auc)
  again = api.train(log=lambda *_: None, data=data, algorithm='fedamp', rounds=3, output=str(tmp_path / 'run'),
                    resume=True, **small)  # the aggregator's offsets come back from the checkpoint
  assert np.isfinite(again.mean_auc) and again.metrics['rounds'] == 3
  assert api.export(run.run_dir, str(tmp_path / 'export'), scenarios=['NL'])


if __name__ == '__main__':
  tf.test.main()
