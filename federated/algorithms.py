"""Every algorithm of ALGORITHM.md as a template plus client loss terms plus aggregation settings."""

from __future__ import annotations

import dataclasses

from federated.config import AggregationConfig
from pfmsmt_tf import template as template_lib

FEDERATED = tuple(a for a in template_lib.ALGORITHMS if a != 'centralized')


@dataclasses.dataclass(frozen=True)
class Algorithm:
  name: str
  template: str  # the template preset
  personalization_reg: bool = False  # (lambda/2)||theta_P - theta_P received||^2 on personalized groups
  proximal: bool = False  # fedprox: (mu/2)||w - w received||^2 on global parameters
  personal_model: bool = False  # ditto: a local personal model pulled to the global one, which is evaluated
  conflict: str | None = None  # override of AggregationConfig.conflict
  personalization: str | None = None  # override of AggregationConfig.personalization

  def aggregation(self, cfg: AggregationConfig) -> AggregationConfig:
    changes = {}
    if self.conflict is not None:
      changes['conflict'] = self.conflict
    if self.personalization is not None:
      changes['personalization'] = self.personalization
    return dataclasses.replace(cfg, **changes)


_TABLE = {
    'pfmsmtrec': Algorithm('pfmsmtrec', 'pfmsmtrec', personalization_reg=True),
    'pfmsmtrec_no_fedbn': Algorithm('pfmsmtrec_no_fedbn', 'pfmsmtrec_no_fedbn', personalization_reg=True),
    'pfmsmtrec_no_conflict': Algorithm('pfmsmtrec_no_conflict', 'pfmsmtrec', personalization_reg=True,
                                       conflict='none'),
    'pfmsmtrec_no_personalization': Algorithm('pfmsmtrec_no_personalization', 'pfmsmtrec',
                                              personalization_reg=True, personalization='mean'),
    'pfmsmtrec_no_tower_agg': Algorithm('pfmsmtrec_no_tower_agg', 'pfmsmtrec_no_tower_agg',
                                        personalization_reg=True),
    'pfmsmtrec_no_reg': Algorithm('pfmsmtrec_no_reg', 'pfmsmtrec'),
    'local': Algorithm('local', 'local'),
    'fedavg': Algorithm('fedavg', 'fedavg'),
    'fedprox': Algorithm('fedprox', 'fedprox', proximal=True),
    'fedbn': Algorithm('fedbn', 'fedbn'),
    'fedper': Algorithm('fedper', 'fedper'),
    'ditto': Algorithm('ditto', 'ditto', personal_model=True),
}


def get(name: str) -> Algorithm:
  if name not in _TABLE:
    raise ValueError(f'unknown federated algorithm {name!r}; choose one of {sorted(_TABLE)} (or centralized)')
  return _TABLE[name]
