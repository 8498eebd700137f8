"""What an algorithm is: everything that makes it differ from the others, declared in one place.

Each algorithm is one module of federated/algorithms/ that defines `ALGORITHM = Algorithm(...)`; the registry
(federated/algorithms/__init__.py) finds it by its module's name. The round process, client work, trainers,
CLI, `describe`, `compare`, benchmarks and docs read only these fields:

  template         which parameters are global, personalized (per group) or local (pfmsmt_tf/template.py)
  loss_terms       what the client adds to the mean task loss (federated/loss_terms.py)
  personal_model   the client's training behaviour and what it evaluates: False, the one model built from
                   the received parameters and its local ones; True (Ditto), a second, personal model kept
                   in the client's storage, trained after the shared one and pulled towards the received
                   global values by --reg_lambda, which is the model the client evaluates and deploys
  personal_mixing  with personal_model (APFL): the client deploys alpha v + (1 - alpha) w of its personal
                   model v and the received global model w, alpha its own and learned (--apfl_alpha its start);
                   v is trained through the mix
  client_phases    the client's training in phases, each --local_epochs over its rows updating only `local`
                   (the template's local parameters) or only `shared` (global and personalized) ones, e.g.
                   FedRep's ('local', 'shared'); empty: every trainable parameter at once
  conflict, personalization, tower_personalization   the server aggregation of the personalized groups
                   (overrides of --conflict, --personalization and --tower_personalization: the parts of
                   federated/conflicts/ and federated/personalization/)
  server_optimizer how the server applies the mean global update (None: adds it, as FedAvg does)
  model            the scenario model when it is not the MMoE of pfmsmt_tf/models.py (the logistic reference)
  federated        False for the pooled-rows reference, trained by one Keras model (not a federated method)
  tuned            the settings of its own that `pfmsmt tune` searches besides the common ones (their ranges
                   are in federated/tuning.py)
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional, Tuple

from federated.config import AggregationConfig
from pfmsmt_tf import template as template_lib

FAMILIES = ('pfmsmtrec', 'variant', 'ablation', 'baseline', 'reference')  # variant: beyond ALGORITHM.md
PHASES = ('local', 'shared')  # client training phases: which parameters a phase updates
# model, shared_inputs -> the template. `shared_inputs`: the scenarios share one vocabulary and normalization
# (--statistics_scope=shared), so the input layer may be global.
TemplateFn = Callable[[object, bool], template_lib.Template]


@dataclasses.dataclass(frozen=True)
class Algorithm:
  name: str
  family: str
  description: str  # one line, for `pfmsmt algorithms` and the docs
  template: TemplateFn
  loss_terms: Tuple[Callable, ...] = ()
  personal_model: bool = False
  personal_mixing: bool = False
  client_phases: Tuple[str, ...] = ()
  conflict: Optional[str] = None
  personalization: Optional[str] = None
  tower_personalization: Optional[str] = None
  server_optimizer: Optional[Callable[[AggregationConfig], object]] = None  # -> tff.learning.optimizers.Optimizer
  model: Optional[Callable] = None  # (ModelInputs, ModelConfig) -> Keras model; None: models.build_model
  federated: bool = True
  paper: bool = True  # in ALGORITHM.md's comparison (experiment scripts, the quality benchmark)
  tuned: Tuple[str, ...] = ()

  def __post_init__(self):
    if self.family not in FAMILIES:
      raise ValueError(f'algorithm {self.name}: family must be one of {FAMILIES}, got {self.family!r}')
    if self.personal_mixing and not self.personal_model:
      raise ValueError(f'algorithm {self.name}: personal_mixing needs personal_model')
    if any(p not in PHASES for p in self.client_phases):
      raise ValueError(f'algorithm {self.name}: client_phases are among {PHASES}, got {self.client_phases}')

  def aggregation(self, cfg: AggregationConfig) -> AggregationConfig:
    """The aggregation settings this algorithm runs with: its overrides applied to `cfg`."""
    changes = {}
    if self.conflict is not None:
      changes['conflict'] = self.conflict
    if self.personalization is not None:
      changes['personalization'] = self.personalization
    if self.tower_personalization is not None:
      changes['tower_personalization'] = self.tower_personalization
    return dataclasses.replace(cfg, **changes)

  def template_for(self, model, shared_inputs: bool = True) -> template_lib.Template:
    """The algorithm's template for this model's structure, named after the algorithm."""
    return dataclasses.replace(self.template(model, shared_inputs), name=self.name)

  def to_json(self) -> dict:
    """What config.json records of the algorithm."""
    return {'name': self.name, 'family': self.family, 'description': self.description,
            'loss_terms': [t.__name__ for t in self.loss_terms], 'personal_model': self.personal_model,
            'personal_mixing': self.personal_mixing,
            'client_phases': list(self.client_phases),
            'conflict': self.conflict, 'personalization': self.personalization,
            'tower_personalization': self.tower_personalization,
            'server_optimizer': self.server_optimizer is not None, 'federated': self.federated,
            'tuned': list(self.tuned)}


def uniform_template(role: str) -> TemplateFn:
  """Every parameter in one role (local training, FedAvg and its kin, the pooled reference)."""
  return lambda model, shared_inputs: template_lib.Template('', (template_lib.all_rule(role),))
