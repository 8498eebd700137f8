"""federated/serialization.py: the same messages as TFF's serializer, for every kind of nesting a state has."""

import collections

import numpy as np
import tensorflow as tf
import tensorflow_federated as tff
from tensorflow_federated.python.core.impl.executors import value_serialization

from federated import serialization

_TFF = serialization._TFF_SERIALIZE  # pylint: disable=protected-access


def _bytes(serialize, value, type_spec):
  with serialization.tff_serializer():  # whatever an earlier test's runtime installed
    proto, returned_type = serialize(value, type_spec)
  return proto.SerializeToString(deterministic=True), returned_type


class SerializationTest(tf.test.TestCase):

  def assert_same(self, value, type_spec):
    ours, ours_type = _bytes(serialization.serialize_value, value, type_spec)
    theirs, theirs_type = _bytes(_TFF, value, type_spec)
    self.assertEqual(ours, theirs)
    self.assertEqual(ours_type, theirs_type)

  def test_a_server_state_as_tff_serializes_it(self):
    rng = np.random.default_rng(0)
    state = collections.OrderedDict(
        model=collections.OrderedDict(
            global_=[rng.normal(size=(3, 2)).astype(np.float32), np.float32(1.5)],
            personalized=collections.OrderedDict(experts=rng.normal(size=(4, 5)).astype(np.float32),
                                                 tower__ctr=rng.normal(size=(4, 2)).astype(np.float32))),
        aggregator=collections.OrderedDict(round=np.int32(3), rules=collections.OrderedDict()),
        empty=())
    member = tff.types.to_type(collections.OrderedDict(
        model=collections.OrderedDict(
            global_=[tff.TensorType(np.float32, (3, 2)), tff.TensorType(np.float32)],
            personalized=collections.OrderedDict(experts=tff.TensorType(np.float32, (4, 5)),
                                                 tower__ctr=tff.TensorType(np.float32, (4, 2)))),
        aggregator=collections.OrderedDict(round=tff.TensorType(np.int32),
                                           rules=tff.StructType([])),
        empty=tff.StructType([])))
    self.assert_same(state, tff.FederatedType(member, tff.SERVER))
    self.assert_same(state, member)

  def test_client_values_unnamed_structs_and_an_empty_list(self):
    clients = tff.FederatedType(tff.StructType([np.int32, tff.TensorType(np.float32, (2,))]), tff.CLIENTS,
                                all_equal=False)
    self.assert_same([(np.int32(i), np.arange(2, dtype=np.float32) + i) for i in range(3)], clients)
    self.assert_same([], clients)
    self.assert_same('a path', tff.TensorType(np.str_))

  def test_a_value_that_does_not_fit_its_type_is_refused_as_tff_refuses_it(self):
    two = tff.StructType([np.int32, np.int32])
    with self.assertRaisesRegex(TypeError, 'struct value of 1 elements'):
      serialization.serialize_value((np.int32(1),), two)
    with self.assertRaises(TypeError):
      serialization.serialize_value((np.int32(1), np.float32(2.5)), two)

  def test_install_replaces_the_executors_serializer_on_its_tff_only(self):
    original = value_serialization.serialize_value
    try:
      self.assertEqual(serialization.install(), tff.__version__ == serialization.TFF_VERSION)
      if tff.__version__ == serialization.TFF_VERSION:
        self.assertIs(value_serialization.serialize_value, serialization.serialize_value)
    finally:
      value_serialization.serialize_value = original


if __name__ == '__main__':
  tf.test.main()
