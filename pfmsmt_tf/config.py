"""Typed model configuration. `ModelInputs` comes from the data; `ModelConfig` is the architecture."""

from __future__ import annotations

import dataclasses
from typing import Optional, Tuple

from data_pipelines.flagconfig import field as _field

BACKBONES = ('mmoe', 'shared_bottom', 'single_task')


@dataclasses.dataclass(frozen=True)
class ModelInputs:
  """What the model needs to know about the data (derived from the prepared data's spec.json)."""

  categorical_names: Tuple[str, ...]
  categorical_dims: Tuple[int, ...]  # embedding rows per feature (vocabulary + OOV bucket, or hash bins)
  num_numerical: int
  tasks: Tuple[str, ...]

  def __post_init__(self):
    object.__setattr__(self, 'categorical_names', tuple(self.categorical_names))
    object.__setattr__(self, 'categorical_dims', tuple(int(d) for d in self.categorical_dims))
    object.__setattr__(self, 'tasks', tuple(self.tasks))
    if len(self.categorical_names) != len(self.categorical_dims):
      raise ValueError('categorical_names and categorical_dims differ in length')
    if not self.tasks:
      raise ValueError('a model needs at least one task')
    if len(set(self.tasks)) != len(self.tasks):
      raise ValueError(f'task names must be distinct: {self.tasks}')
    if any(d < 1 for d in self.categorical_dims):
      raise ValueError(f'categorical dims must be positive: {self.categorical_dims}')
    if not self.categorical_dims and not self.num_numerical:
      raise ValueError('a model needs at least one feature')

  @classmethod
  def from_dataset_spec(cls, spec) -> 'ModelInputs':
    return cls(tuple(f.name for f in spec.categorical), tuple(f.input_dim for f in spec.categorical),
               len(spec.numerical), tuple(spec.task_names))


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Defaults are sized for a 2-core machine; `paper_config()` gives the public AliExpress MMoE sizes."""

  backbone: str = _field('mmoe', 'mmoe, shared_bottom (one bottom shared by the towers) or single_task.',
                         enum=BACKBONES)
  embedding_dim: int = _field(8, 'Embedding size per categorical feature and of the numerical projection.')
  expert_units: Tuple[int, ...] = _field((64, 32), 'Hidden units of each expert (or bottom) MLP.')
  num_global_experts: int = _field(2, 'Experts shared by all scenarios (global).')
  num_scenario_experts: int = _field(2, 'Scenario experts (personalized aggregation).')
  num_task_experts: int = _field(1, 'Experts of each task (local).')
  tower_units: Tuple[int, ...] = _field((32,), 'Hidden units of each task tower.')
  dropout: float = _field(0.1, 'Dropout after each expert and tower block.')
  batch_norm: bool = _field(True, 'BatchNorm in each expert block.')
  esmm: bool = _field(False, 'ESMM chaining: the last task is p(first task) * p(last | first), e.g. CTCVR = CTR * CVR.')
  seed: Optional[int] = _field(None, 'Seed of the weight initializers (None: random).')

  def __post_init__(self):
    object.__setattr__(self, 'expert_units', tuple(int(u) for u in self.expert_units))
    object.__setattr__(self, 'tower_units', tuple(int(u) for u in self.tower_units))
    if self.backbone not in BACKBONES:
      raise ValueError(f'backbone must be one of {BACKBONES}, got {self.backbone!r}')
    if min(self.num_global_experts, self.num_scenario_experts, self.num_task_experts) < 0:
      raise ValueError('expert counts must be >= 0')
    if self.backbone == 'mmoe' and self.num_global_experts + self.num_scenario_experts + self.num_task_experts == 0:
      raise ValueError('an MMoE needs at least one expert')
    if not self.expert_units:
      raise ValueError('expert_units must name at least one layer')
    if not 0 <= self.dropout < 1:
      raise ValueError(f'dropout must be in [0, 1), got {self.dropout}')


def paper_config(**overrides) -> ModelConfig:
  """The public AliExpress MMoE baseline: embedding 128, 8 experts of (512, 256), towers (128, 64), dropout 0.2."""
  base = dict(embedding_dim=128, expert_units=(512, 256), num_global_experts=0, num_scenario_experts=8,
              num_task_experts=0, tower_units=(128, 64), dropout=0.2)
  base.update(overrides)
  return ModelConfig(**base)
