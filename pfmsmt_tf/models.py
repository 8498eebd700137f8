"""The template-structured multi-task model of one scenario (ALGORITHM.md, "Model on each client").

Layer names are the contract with the parameter template: `input/embedding_<i>`,
`input/numerical_projection`, `expert_global_<i>`, `expert_scenario_<i>`, `expert_task_<t>_<i>`,
`gate_<t>`, `tower_<t>` (and `shared_bottom`, `bottom_<t>` for the comparison backbones), where `<t>` is the
task's position. `layer_groups()` lists them by kind so templates never guess.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List

import tensorflow as tf

from pfmsmt_tf import layers
from pfmsmt_tf.config import ModelInputs, ModelConfig


@tf.keras.utils.register_keras_serializable(package=layers.PACKAGE)
class MultiScenarioModel(tf.keras.Model):
  """Returns {task: probability [B]} from {'categorical': int64 [B, C], 'numerical': float32 [B, N]}."""

  def __init__(self, model_inputs: ModelInputs, config: ModelConfig = ModelConfig(), **kwargs):
    kwargs.setdefault('name', 'pfmsmt_model')
    super().__init__(**kwargs)
    if config.esmm and len(model_inputs.tasks) < 2:
      raise ValueError('esmm chaining needs at least two tasks (e.g. ctr, ctcvr)')
    self.model_inputs, self.config = model_inputs, config
    c, seed = config, config.seed
    tasks = model_inputs.tasks
    self.features = layers.FeatureInput(model_inputs.categorical_names, model_inputs.categorical_dims,
                                        model_inputs.num_numerical, c.embedding_dim, seed, name='input')

    def mlp(name, offset):
      return layers.MLP(c.expert_units, c.dropout, c.batch_norm, None if seed is None else seed + offset, name=name)

    self.global_experts: List[layers.MLP] = []
    self.scenario_experts: List[layers.MLP] = []
    self.task_experts: List[List[layers.MLP]] = [[] for _ in tasks]
    self.gates: List[layers.Gate] = []
    if c.backbone == 'mmoe':
      self.global_experts = [mlp(f'expert_global_{i}', 1000 + i) for i in range(c.num_global_experts)]
      self.scenario_experts = [mlp(f'expert_scenario_{i}', 2000 + i) for i in range(c.num_scenario_experts)]
      self.task_experts = [[mlp(f'expert_task_{t}_{i}', 3000 + 100 * t + i) for i in range(c.num_task_experts)]
                           for t in range(len(tasks))]
      visible = c.num_global_experts + c.num_scenario_experts + c.num_task_experts
      self.gates = [layers.Gate(visible, None if seed is None else seed + 4000 + t, name=f'gate_{t}')
                    for t in range(len(tasks))]
    elif c.backbone == 'shared_bottom':
      self.global_experts = [mlp('shared_bottom', 1000)]
    else:  # single_task: every task its own bottom, nothing shared between tasks
      self.task_experts = [[mlp(f'bottom_{t}', 3000 + 100 * t)] for t in range(len(tasks))]
    self.towers = [layers.Tower(c.tower_units, c.dropout, None if seed is None else seed + 5000 + t, name=f'tower_{t}')
                   for t in range(len(tasks))]

  def call(self, inputs, training=None):
    x = self.features(inputs)
    shared = [e(x, training=training) for e in self.global_experts + self.scenario_experts]
    probs = {}
    for t, task in enumerate(self.model_inputs.tasks):
      own = [e(x, training=training) for e in self.task_experts[t]]
      if self.gates:
        h = self.gates[t](x, shared + own)
      else:
        h = (shared + own)[0]
      probs[task] = tf.sigmoid(self.towers[t](h, training=training))
    if self.config.esmm:
      first, last = self.model_inputs.tasks[0], self.model_inputs.tasks[-1]
      probs[last] = probs[first] * probs[last]  # p(CTCVR) = p(CTR) * p(CVR | click)
    return probs

  def layer_groups(self) -> Dict[str, object]:
    """Layer names by kind; the algorithms' templates (federated/algorithms/) are built from this."""
    tasks = self.model_inputs.tasks
    return {
        'input': self.features.name,
        'global_experts': [e.name for e in self.global_experts],
        'scenario_experts': [e.name for e in self.scenario_experts],
        'task_experts': {task: [e.name for e in self.task_experts[t]] for t, task in enumerate(tasks)},
        'gates': {task: self.gates[t].name for t, task in enumerate(tasks)} if self.gates else {},
        'towers': {task: self.towers[t].name for t, task in enumerate(tasks)},
    }

  def dummy_inputs(self, batch_size: int = 2) -> Dict[str, tf.Tensor]:
    return {'categorical': tf.zeros([batch_size, len(self.model_inputs.categorical_dims)], tf.int64),
            'numerical': tf.zeros([batch_size, self.model_inputs.num_numerical], tf.float32)}

  def build_weights(self) -> 'MultiScenarioModel':
    """Creates every variable (Keras creates them lazily on the first call)."""
    self(self.dummy_inputs(), training=False)
    return self

  def get_config(self):
    return {'name': self.name, 'model_inputs': dataclasses.asdict(self.model_inputs),
            'config': dataclasses.asdict(self.config)}

  @classmethod
  def from_config(cls, config, custom_objects=None):
    del custom_objects
    return cls(ModelInputs(**config['model_inputs']), ModelConfig(**config['config']), name=config.get('name'))


def build_model(model_inputs: ModelInputs, config: ModelConfig = ModelConfig()) -> MultiScenarioModel:
  """A model with all its variables created."""
  return MultiScenarioModel(model_inputs, config).build_weights()
