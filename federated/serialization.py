"""Values sent to TFF's executors, serialized with one copy of each tensor instead of one per nesting level.

Every round the server state crosses from Python to the C++ executor (`RemoteExecutor.create_value`). TFF
0.87's serializer builds each nested struct or federated value as its own `executor_pb2.Value` and then
copies it into its parent, so a tensor at depth d is copied d times: the paper-size model's [4, 9.7M]
personalized matrix sits about six levels down, and profiling a round (py-spy) put 73% of the coordinator
process's busy time there, about 5 s of each 28 s round. `serialize_value` here fills one message from the
top down and leaves everything else (tensors, sequences, computations, and every check) to TFF's own code;
the messages are byte for byte those TFF builds (tests/test_serialization.py). `install()` puts it in
place of TFF's for the executors; it is a no-op on another TFF version, whose serializer may differ.
"""

from __future__ import annotations

import contextlib

import tensorflow_federated as tff
from tensorflow_federated.proto.v0 import executor_pb2
from tensorflow_federated.python.common_libs import structure
from tensorflow_federated.python.core.impl.executors import value_serialization
from tensorflow_federated.python.core.impl.types import computation_types
from tensorflow_federated.python.core.impl.types import type_serialization

TFF_VERSION = '0.87.0'  # the release whose `_serialize_struct_type` and `_serialize_federated_value` this mirrors
_TFF_SERIALIZE = value_serialization.serialize_value


def _fill(proto: executor_pb2.Value, value, type_spec) -> None:
  """Writes `value` (of `type_spec`) into `proto` in place; what TFF's serializer would return, less copies."""
  if isinstance(type_spec, computation_types.StructType):
    value = structure.from_container(value)
    if len(value) != len(type_spec):
      raise TypeError(f'Cannot serialize a struct value of {len(value)} elements to a struct type requiring '
                      f'{len(type_spec)} elements: {type_spec}.')
    elements = proto.struct.element
    proto.struct.SetInParent()  # an empty struct is still a struct
    for (name, e_type), (_, e_value) in zip(structure.iter_elements(type_spec), structure.iter_elements(value)):
      element = elements.add()
      if name:
        element.name = name
      _fill(element.value, e_value, e_type)
  elif isinstance(type_spec, computation_types.FederatedType):
    members = [value] if type_spec.all_equal else value
    if not isinstance(members, list):
      raise TypeError(f'A federated value of type {type_spec} must be a list, not {type(members)}.')
    federated = proto.federated
    for member in members:
      _fill(federated.value.add(), member, type_spec.member)
    federated.type.CopyFrom(type_serialization.serialize_type(type_spec).federated)
  else:
    leaf, _ = _TFF_SERIALIZE(value, type_spec)
    proto.CopyFrom(leaf)


def serialize_value(value, type_spec=None):
  """TFF's `serialize_value` signature: (the message, its type)."""
  if isinstance(type_spec, (computation_types.StructType, computation_types.FederatedType)):
    proto = executor_pb2.Value()
    _fill(proto, value, type_spec)
    return proto, type_spec
  return _TFF_SERIALIZE(value, type_spec)


def install() -> bool:
  """Makes the executors serialize through `serialize_value`; False (nothing changed) on another TFF."""
  if tff.__version__ != TFF_VERSION:
    return False
  value_serialization.serialize_value = serialize_value
  return True


@contextlib.contextmanager
def tff_serializer():
  """TFF's own serializer in place for the block (benchmarks and tests compare with it): it recurses through
  the module's `serialize_value`, so nothing of ours runs inside it."""
  installed = value_serialization.serialize_value
  value_serialization.serialize_value = _TFF_SERIALIZE
  try:
    yield _TFF_SERIALIZE
  finally:
    value_serialization.serialize_value = installed
