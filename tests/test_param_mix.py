"""The variant `pfmsmtrec_param_mix`: the specification's attention weights (from the coordinated updates)
applied to the clients' parameters, checked against the mix written out on absolute parameters over two
rounds, and against the specification's update mix, which it must differ from once the clients differ."""

import collections

import numpy as np
import tensorflow as tf
import tensorflow_federated as tff

from federated import aggregators as agg
from federated import algorithms, personalization, runtime
from federated.config import AggregationConfig

CFG = AggregationConfig(personalization='attention_on_parameters', conflict='none', tau=0.5)


def _softmax_rows(x):
  e = np.exp(x - x.max(axis=1, keepdims=True))
  return e / e.sum(axis=1, keepdims=True)


def _attention_by_hand(updates, tau):
  unit = updates / np.linalg.norm(updates, axis=1, keepdims=True)
  return _softmax_rows(unit @ unit.T / tau)


def _values(updates):
  k, d = updates.shape
  values = []
  for i in range(k):
    scattered = np.zeros((k, d), np.float32)
    scattered[i] = updates[i]
    counts = np.zeros(k, np.float32)
    counts[i] = 1.0
    values.append(collections.OrderedDict([('global', []), ('personalized', collections.OrderedDict(
        experts=scattered)), ('counts', counts)]))
  return values


class ParamMixTest(tf.test.TestCase):

  def test_the_variant_uses_the_rule_on_parameters_with_pfmsmtrecs_template(self):
    self.assertEqual(personalization.kind('attention_on_parameters'), personalization.ON_PARAMETERS)
    self.assertTrue(personalization.weights_from_updates('attention_on_parameters'))
    self.assertFalse(personalization.weights_from_updates('fedamp'))
    alg, base = algorithms.get('pfmsmtrec_param_mix'), algorithms.get('pfmsmtrec')
    self.assertEqual((alg.personalization, alg.tower_personalization, alg.family),
                     ('attention_on_parameters', 'attention_on_parameters', 'variant'))
    self.assertEqual((alg.template, alg.loss_terms, alg.conflict), (base.template, base.loss_terms, base.conflict))

  def test_two_rounds_in_tff_equal_the_attention_mix_of_absolute_parameters(self):
    k, d = 3, 4
    value_type = tff.types.to_type(collections.OrderedDict([
        ('global', []), ('personalized', collections.OrderedDict(experts=tff.TensorType(np.float32, [k, d]))),
        ('counts', tff.TensorType(np.float32, [k]))]))
    process = agg.TemplateAggregationFactory({'experts': 'none'}, CFG).create(value_type, tff.TensorType(np.float32))
    rows = np.tile(np.array([2.0, -1.0, 0.5, 3.0]), (k, 1))  # the common start
    spec_rows = rows.copy()  # the specification's update mix, from the same start and updates
    rng = np.random.default_rng(0)
    with runtime.local_runtime():
      state = process.initialize()
      for _ in range(2):
        updates = rng.normal(size=(k, d)).astype(np.float32)
        a = _attention_by_hand(updates, CFG.tau)
        out = process.next(state, _values(updates), [1.0] * k)
        state = out.state
        want = a @ (rows + updates)
        self.assertAllClose(rows + out.result['personalized']['experts'], want, atol=1e-5)
        self.assertAllClose(out.measurements['personalized']['experts']['attention'], a, atol=1e-5)
        rows, spec_rows = want, spec_rows + a @ updates
    # Round 1 starts from equal rows, so both mixes agree there; by round 2 the rows differ and the
    # parameter mix has pulled them closer together than the update mix.
    spread = lambda r: np.linalg.norm(r - r.mean(axis=0))
    self.assertLess(spread(rows), spread(spec_rows))


if __name__ == '__main__':
  tf.test.main()
