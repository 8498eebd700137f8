"""The adaptive variant's rule: attention with a learned strength per client, on known updates; at strength 1
it is PF-MSMTrec's attention, at 0 local training, and the strength follows the next round's update."""

import numpy as np
import tensorflow as tf

from federated import aggregators as agg
from federated import algorithms
from federated.config import AggregationConfig
from federated.personalization import attention, hyper_attention

U = np.array([[1.0, 0.0, 0.5], [-1.0, 1.0, 0.0], [0.2, -0.3, 1.0]], np.float32)


def _cfg(**kw):
  return AggregationConfig(conflict='none', personalization='hyper_attention', tau=0.5, hyper_lr=0.1, **kw)


class HyperAttentionTest(tf.test.TestCase):

  def test_strength_one_is_attention_and_zero_is_local(self):
    a = attention.attention_weights(tf.constant(U), 0.5).numpy()
    self.assertAllClose(hyper_attention.base(tf.constant(U), None, _cfg()), a - np.eye(3), atol=1e-6)
    for init, want in ((1.0, a @ U), (0.0, U)):
      result, _, _ = agg.aggregate_group_with_stats(tf.constant(U), tf.ones(3), 'none', tf.constant(0),
                                                    _cfg(hyper_init=init))
      self.assertAllClose(result, want, atol=1e-5)

  def test_strength_grows_where_the_next_update_follows_the_mix_and_shrinks_where_it_turns_back(self):
    cfg = _cfg(hyper_init=0.5)
    _, _, state = agg.aggregate_group_with_stats(tf.constant(U), tf.ones(3), 'none', tf.constant(0), cfg)
    added = state['added'].numpy()  # what the mix added to each client: half its mix less its update
    self.assertAllClose(added, (attention.attention_weights(tf.constant(U), 0.5).numpy() - np.eye(3)) @ U, atol=1e-5)
    follows = np.stack([added[0], -added[1], U[2]]).astype(np.float32)  # client 1 turns back, 2 is neither
    _, _, state = agg.aggregate_group_with_stats(tf.constant(follows), tf.ones(3), 'none', tf.constant(1), cfg, None,
                                                 state)
    want = np.clip(0.5 + 0.1 * np.sum(added * follows, axis=1), 0, 1)
    self.assertAllClose(state['hyper'], want, atol=1e-5)
    self.assertGreater(want[0], 0.5)
    self.assertLess(want[1], 0.5)

  def test_the_variant_personalizes_experts_and_towers_with_it(self):
    variant = algorithms.get('pfmsmtrec_adaptive')
    cfg = variant.aggregation(AggregationConfig())
    assert variant.family == 'variant' and cfg.personalization == 'hyper_attention'
    assert cfg.tower_personalization in ('', 'hyper_attention')
    assert variant.template is algorithms.get('pfmsmtrec').template


if __name__ == '__main__':
  tf.test.main()
