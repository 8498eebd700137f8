"""The variant `pfmsmtrec_smoothed_attention`: attention weights from each client's coordinated updates averaged
over rounds, applied to this round's updates; checked against the rule written out over three rounds, against
the specification's attention in round 1 and with no memory, and as pfmsmtrec in everything else."""

import collections
import dataclasses

import numpy as np
import tensorflow as tf
import tensorflow_federated as tff

from federated import aggregators as agg
from federated import algorithms, personalization, runtime
from federated.config import AggregationConfig

CFG = AggregationConfig(personalization='attention_smoothed', conflict='none', tau=0.5, similarity_momentum=0.9)


def _attention_by_hand(vectors, tau):
  unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
  logits = unit @ unit.T / tau
  e = np.exp(logits - logits.max(axis=1, keepdims=True))
  return e / e.sum(axis=1, keepdims=True)


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


def _run(cfg, rounds, k=3, d=4):
  """(updates, results, attention) of `rounds` rounds of the group's aggregator in TFF."""
  value_type = tff.types.to_type(collections.OrderedDict([
      ('global', []), ('personalized', collections.OrderedDict(experts=tff.TensorType(np.float32, [k, d]))),
      ('counts', tff.TensorType(np.float32, [k]))]))
  process = agg.TemplateAggregationFactory({'experts': 'none'}, cfg).create(value_type, tff.TensorType(np.float32))
  rng = np.random.default_rng(0)
  out = []
  with runtime.local_runtime():
    state = process.initialize()
    for _ in range(rounds):
      updates = rng.normal(size=(k, d)).astype(np.float32)
      step = process.next(state, _values(updates), [1.0] * k)
      state = step.state
      out.append((updates, step.result['personalized']['experts'],
                  step.measurements['personalized']['experts']['attention']))
  return out


class SmoothedAttentionTest(tf.test.TestCase):

  def test_the_variant_is_pfmsmtrec_with_the_smoothed_rule(self):
    self.assertEqual(personalization.kind('attention_smoothed'), personalization.SMOOTHED)
    self.assertEqual(personalization.kind('attention'), personalization.STATELESS)
    alg, base = algorithms.get('pfmsmtrec_smoothed_attention'), algorithms.get('pfmsmtrec')
    self.assertEqual((alg.personalization, alg.tower_personalization, alg.family),
                     ('attention_smoothed', 'attention_smoothed', 'variant'))
    self.assertEqual((alg.template, alg.loss_terms, alg.conflict), (base.template, base.loss_terms, base.conflict))
    with self.assertRaisesRegex(ValueError, 'similarity_momentum'):
      AggregationConfig(similarity_momentum=1.0)

  def test_three_rounds_in_tff_equal_the_rule_written_out(self):
    smoothed = 0.0
    for r, (updates, result, attention) in enumerate(_run(CFG, 3)):
      smoothed = CFG.similarity_momentum * smoothed + (1 - CFG.similarity_momentum) * updates
      a = _attention_by_hand(smoothed, CFG.tau)
      self.assertAllClose(attention, a, atol=1e-5)
      self.assertAllClose(result, a @ updates, atol=1e-5)
      if r == 0:  # the average is then a multiple of the update: the specification's attention
        self.assertAllClose(a, _attention_by_hand(updates, CFG.tau), atol=1e-5)
      else:  # later the earlier rounds weigh in
        self.assertGreater(np.abs(a - _attention_by_hand(updates, CFG.tau)).max(), 1e-3)

  def test_without_memory_it_is_the_specifications_attention(self):
    cfg = dataclasses.replace(CFG, similarity_momentum=0.0)
    for updates, result, attention in _run(cfg, 2):
      self.assertAllClose(attention, _attention_by_hand(updates, cfg.tau), atol=1e-5)
      self.assertAllClose(result, _attention_by_hand(updates, cfg.tau) @ updates, atol=1e-5)


if __name__ == '__main__':
  tf.test.main()
