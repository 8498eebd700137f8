"""The algorithm registry: every module of this package is one algorithm, found by its name.

A module `<name>.py` defines `ALGORITHM = federated.algorithm.Algorithm(name='<name>', ...)`. Adding an
algorithm is adding its module (and its test); the CLI's choices, `pfmsmt algorithms`, `describe`,
`compare`, the experiment scripts and the benchmarks read the registry.
"""

from __future__ import annotations

from typing import List

from federated.registry import ModuleRegistry

_REGISTRY = ModuleRegistry(__name__, __path__, 'algorithm', 'ALGORITHM')
names = _REGISTRY.names


def get(name: str):
  """The `federated.algorithm.Algorithm` named `name`."""
  algorithm = _REGISTRY.get(name)
  if algorithm.name != name:
    raise ValueError(f'federated/algorithms/{name}.py declares an algorithm named {algorithm.name!r}')
  return algorithm


def all_algorithms() -> List:
  """Every algorithm, by family (pfmsmtrec, ablation, baseline, reference), then name."""
  from federated.algorithm import FAMILIES  # pylint: disable=g-import-not-at-top
  return sorted((get(n) for n in names()), key=lambda a: (FAMILIES.index(a.family), a.name))


def paper_algorithms() -> List[str]:
  """ALGORITHM.md's comparison: the method, its ablations, the federated baselines and the pooled reference."""
  return [a.name for a in all_algorithms() if a.paper]


def federated_names() -> List[str]:
  return [a.name for a in all_algorithms() if a.federated]
