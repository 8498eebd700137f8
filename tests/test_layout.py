"""ModelLayout: where each weight goes under a template, flattened and restored exactly, with its TFF types."""

import numpy as np
import tensorflow as tf

from federated import algorithms
from federated.layout import ModelLayout
from pfmsmt_tf import config as config_lib
from pfmsmt_tf import models

INPUTS = config_lib.ModelInputs(('a', 'b'), (5, 7), 3, ('ctr', 'ctcvr'))


def _layout(algorithm='pfmsmtrec', clients=3):
  model_fn = lambda: models.build_model(INPUTS, config_lib.ModelConfig(seed=0))
  return ModelLayout.from_model_fn(model_fn, algorithms.get(algorithm).template_for(model_fn()), clients)


class LayoutTest(tf.test.TestCase):

  def test_every_weight_has_one_place(self):
    layout = _layout()
    placed = layout.global_idx + layout.local_idx + [i for idx in layout.group_idx.values() for i in idx]
    self.assertCountEqual(placed, range(len(layout.shapes)))
    self.assertEqual(set(layout.group_idx), {'experts', 'tower__ctr', 'tower__ctcvr'})

  def test_flatten_then_unflatten_is_the_identity(self):
    layout = _layout()
    weights = [tf.constant(w) for w in layout.initial_values()]
    for key in layout.group_idx:
      flat = layout.flatten_group(key, weights)
      self.assertEqual(flat.shape, (layout.group_size(key),))
      for i, value in layout.unflatten_group(key, flat).items():
        self.assertAllEqual(value, weights[i])

  def test_types_and_exchanged_values_follow_the_template(self):
    layout = _layout(clients=4)
    self.assertEqual([tuple(t.shape) for t in layout.global_type()], [layout.shapes[i] for i in layout.global_idx])
    for key, t in layout.matrix_type().items():
      self.assertEqual(tuple(t.shape), (4, layout.group_size(key)))
    exchanged = layout.exchanged(['ctr', 'ctcvr'])
    up_floats = sum(int(np.prod(s)) for _, d, s in exchanged['up'] if d == 'float32')
    personal = sum(layout.group_size(k) for k in layout.group_idx)
    global_values = sum(int(np.prod(layout.shapes[i])) for i in layout.global_idx)
    self.assertEqual(up_floats, global_values + 4 * personal + 4 + 1 + 3)  # counts [K], weight, 2 losses + examples

  def test_local_training_exchanges_no_parameter(self):
    layout = _layout('local')
    self.assertEqual((layout.global_idx, layout.group_idx), ([], {}))
    self.assertEqual(len(layout.local_idx), len(layout.shapes))
