"""How a template lays a model's weights out for TFF: which go where, flattened how, with which types."""

from __future__ import annotations

import collections
import dataclasses
from typing import Callable, Dict, List

import numpy as np
import tensorflow as tf
import tensorflow_federated as tff

from federated import aggregators
from pfmsmt_tf import template as template_lib


@dataclasses.dataclass
class ModelLayout:
  """Built once in Python from a model instance; used inside every computation."""

  model_fn: Callable[[], tf.keras.Model]
  assignments: List[template_lib.Assignment]
  num_clients: int

  def __post_init__(self):
    part = template_lib.Partition(self.assignments)
    self.global_idx = part.indices(template_lib.GLOBAL)
    self.local_idx = part.indices(template_lib.LOCAL)
    self.groups = part.groups  # template group names, e.g. 'experts', 'tower/ctr'
    self.group_idx = {aggregators.group_key(g): part.indices(template_lib.PERSONALIZED, g) for g in self.groups}
    self.shapes = [a.shape for a in self.assignments]

  @classmethod
  def from_model_fn(cls, model_fn, template: template_lib.Template, num_clients: int) -> 'ModelLayout':
    return cls(model_fn, template_lib.assign(template, model_fn()), num_clients)

  def group_size(self, key: str) -> int:
    return int(sum(np.prod(self.shapes[i]) for i in self.group_idx[key]))

  # TFF types -------------------------------------------------------------------------------------------
  def global_type(self):
    return [tff.TensorType(np.float32, self.shapes[i]) for i in self.global_idx]

  def vector_type(self):
    """One client's personalized parameters: a flat vector per group."""
    return collections.OrderedDict((k, tff.TensorType(np.float32, [self.group_size(k)])) for k in self.group_idx)

  def matrix_type(self):
    """Every client's personalized parameters (or updates): [K, D] per group."""
    return collections.OrderedDict(
        (k, tff.TensorType(np.float32, [self.num_clients, self.group_size(k)])) for k in self.group_idx)

  # What crosses the network ---------------------------------------------------------------------------
  def exchanged(self, tasks) -> Dict[str, List[tuple]]:
    """(name, dtype, shape) of every value a client receives ('down') and sends ('up' from its training,
    'up_telemetry' from the round's screen) in a round, as the template declares it; tests/test_process.py
    checks it against the round's TFF types."""
    k = self.num_clients
    path = {a.index: a.path for a in self.assignments}
    down = [(f'global/{path[i]}', 'float32', tuple(self.shapes[i])) for i in self.global_idx]
    down += [(f'personalized/{key} (own row only)', 'float32', (self.group_size(key),)) for key in self.group_idx]
    down += [('inputs/data (file pattern of its own rows)', 'str', ()), ('inputs/state_in (its own file path)', 'str', ()),
             ('inputs/state_out (its own file path)', 'str', ()), ('inputs/key (scenario index)', 'int32', ()),
             ('inputs/seed', 'int32', ())]
    up = [(f'update/global/{path[i]}', 'float32', tuple(self.shapes[i])) for i in self.global_idx]
    up += [(f'update/personalized/{key} (own row; the other K-1 rows are zeros)', 'float32',
            (k, self.group_size(key))) for key in self.group_idx]
    up += [('update/counts (own example count at its index)', 'float32', (k,)), ('weight (example count)', 'float32', ())]
    up += [(f'metrics/loss_{t}', 'float32', ()) for t in tasks] + [('metrics/examples', 'float32', ())]
    # Computed from the update on the client by the round's screen, for the aggregation telemetry.
    telemetry = [('telemetry/global_update_norm (own norm at its index)', 'float32', (k,))]
    return {'down': down, 'up': up, 'up_telemetry': telemetry}

  # Flattening ------------------------------------------------------------------------------------------
  def flatten_group(self, key: str, values: List) -> tf.Tensor:
    parts = [tf.reshape(values[i], [-1]) for i in self.group_idx[key]]
    return tf.concat(parts, axis=0) if parts else tf.zeros([0])

  def unflatten_group(self, key: str, vector) -> Dict[int, tf.Tensor]:
    out, offset = {}, 0
    for i in self.group_idx[key]:
      n = int(np.prod(self.shapes[i]))
      out[i] = tf.reshape(vector[offset:offset + n], self.shapes[i])
      offset += n
    return out

  def initial_values(self) -> List[np.ndarray]:
    return self.model_fn().get_weights()
