"""The parameter template: which parameters of a scenario's model are global, personalized or local.

A template is an ordered list of rules; the first rule that matches a variable decides its role. A rule
matches by glob on the variable's path inside the model (`expert_scenario_0/dense_0/kernel`) or by the Keras
type of the layer that owns the variable (`BatchNormalization`: gamma, beta, moving mean and variance).
A variable no rule matches, or a rule that matches nothing, is an error that names it.

Roles (ALGORITHM.md): `local` never leaves the client; `global` is averaged over clients by example count;
`personalized` (with a group such as `experts` or `tower/<task>`) is aggregated per client from all clients'
updates of the group.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
from typing import Dict, List, Sequence, Tuple

import numpy as np
import tensorflow as tf

LOCAL, GLOBAL, PERSONALIZED = 'local', 'global', 'personalized'
ROLES = (LOCAL, GLOBAL, PERSONALIZED)
BATCH_NORM = 'BatchNormalization'
EXPERTS_GROUP = 'experts'
BYTES_PER_VALUE = 4  # float32


def tower_group(task: str) -> str:
  return f'tower/{task}'


@dataclasses.dataclass(frozen=True)
class Rule:
  role: str
  match: Tuple[str, ...] = ()  # globs on the model-relative variable path; any may match
  layer_type: str = ''  # or: variables owned by a layer of this Keras class name
  group: str = ''  # the personalized group

  def __post_init__(self):
    object.__setattr__(self, 'match', (self.match,) if isinstance(self.match, str) else tuple(self.match))
    if self.role not in ROLES:
      raise ValueError(f'rule role must be one of {ROLES}, got {self.role!r}')
    if bool(self.match) == bool(self.layer_type):
      raise ValueError(f'a rule needs exactly one of match or layer_type: {self}')
    if (self.role == PERSONALIZED) != bool(self.group):
      raise ValueError(f'personalized rules, and only they, name a group: {self}')

  def matches(self, path: str, owner_type: str) -> bool:
    if self.layer_type:
      return self.layer_type == owner_type
    return any(fnmatch.fnmatchcase(path, m) for m in self.match)

  def describe(self) -> str:
    what = f'layer type {self.layer_type}' if self.layer_type else ' | '.join(self.match)
    return f'{what} -> {self.role}' + (f'/{self.group}' if self.group else '')


@dataclasses.dataclass(frozen=True)
class Template:
  name: str
  rules: Tuple[Rule, ...]

  def to_json(self) -> dict:
    return {'name': self.name, 'rules': [
        {k: v for k, v in dataclasses.asdict(r).items() if v} for r in self.rules]}

  @classmethod
  def from_json(cls, d: dict) -> 'Template':
    try:
      return cls(d.get('name', 'custom'), tuple(Rule(**r) for r in d['rules']))
    except (KeyError, TypeError) as e:
      raise ValueError(f'a template is {{"name": ..., "rules": [{{"role", "match" | "layer_type", "group"}}]}}: {e}')


def load_template(path: str) -> Template:
  with open(path) as f:
    try:
      return Template.from_json(json.load(f))
    except ValueError as e:
      raise ValueError(f'template file {path}: {e}') from None


@dataclasses.dataclass(frozen=True)
class Assignment:
  """The role of one model variable."""

  index: int  # position in model.weights / get_weights()
  path: str
  role: str
  group: str
  shape: Tuple[int, ...]
  trainable: bool
  batch_norm: bool

  @property
  def size(self) -> int:
    return int(np.prod(self.shape)) if self.shape else 1

  @property
  def key(self) -> str:
    return self.role + (f'/{self.group}' if self.group else '')


def variable_paths(model: tf.keras.Model) -> Dict[int, Tuple[str, str]]:
  """id(variable) -> (path of layer names + variable name, Keras type of the layer that owns it directly).

  Paths come from the layer tree, not `variable.name`: functional models do not scope names by layer, and
  TFF may suffix the model's own name scope.
  """
  out: Dict[int, Tuple[str, str]] = {}

  def visit(layer, prefix):
    children = list(layer._flatten_layers(include_self=False, recursive=False))  # pylint: disable=protected-access
    inherited = {id(w) for c in children for w in c.weights}
    for w in layer.weights:
      if id(w) not in inherited:
        out.setdefault(id(w), (prefix + w.name.rsplit(':', 1)[0].rsplit('/', 1)[-1], type(layer).__name__))
    for c in children:
      visit(c, f'{prefix}{c.name}/')

  visit(model, '')
  return out


def assign(template: Template, model: tf.keras.Model) -> List[Assignment]:
  """Every variable of `model` with its role; raises on unmatched variables and unused rules."""
  if not model.weights:
    raise ValueError('the model has no variables yet: build it first (models.build_model)')
  paths = variable_paths(model)
  used = [False] * len(template.rules)
  out, unmatched = [], []
  trainable = {id(v) for v in model.trainable_weights}
  for i, v in enumerate(model.weights):
    path, owner = paths[id(v)]
    for r, rule in enumerate(template.rules):
      if rule.matches(path, owner):
        used[r] = True
        out.append(Assignment(i, path, rule.role, rule.group, tuple(v.shape), id(v) in trainable,
                              owner == BATCH_NORM))
        break
    else:
      unmatched.append(path)
  if unmatched:
    raise ValueError(f'template {template.name!r}: no rule matches variable(s) {unmatched}')
  unused = [rule.describe() for rule, u in zip(template.rules, used) if not u]
  if unused:
    raise ValueError(f'template {template.name!r}: rule(s) match no variable: {unused}')
  return out


class Partition:
  """Splits a model's weight list into {local, global, personalized: {group}} and merges it back exactly."""

  def __init__(self, assignments: Sequence[Assignment]):
    self.assignments = list(assignments)
    self.groups = sorted({a.group for a in self.assignments if a.role == PERSONALIZED})

  def indices(self, role: str, group: str = '') -> List[int]:
    return [a.index for a in self.assignments if a.role == role and a.group == group]

  def split(self, weights: Sequence) -> dict:
    if len(weights) != len(self.assignments):
      raise ValueError(f'expected {len(self.assignments)} weights, got {len(weights)}')
    return {
        LOCAL: [weights[i] for i in self.indices(LOCAL)],
        GLOBAL: [weights[i] for i in self.indices(GLOBAL)],
        PERSONALIZED: {g: [weights[i] for i in self.indices(PERSONALIZED, g)] for g in self.groups},
    }

  def merge(self, parts: dict) -> list:
    out = [None] * len(self.assignments)
    placed = [(LOCAL, '', parts[LOCAL]), (GLOBAL, '', parts[GLOBAL])]
    placed += [(PERSONALIZED, g, parts[PERSONALIZED][g]) for g in self.groups]
    for role, group, values in placed:
      idx = self.indices(role, group)
      if len(idx) != len(values):
        raise ValueError(f'{role}/{group}: expected {len(idx)} weights, got {len(values)}')
      for i, v in zip(idx, values):
        out[i] = v
    return out

  def counts(self) -> Dict[str, Dict[str, int]]:
    """Variables and parameters per role key (e.g. 'personalized/experts')."""
    out: Dict[str, Dict[str, int]] = {}
    for a in self.assignments:
      c = out.setdefault(a.key, {'variables': 0, 'parameters': 0})
      c['variables'] += 1
      c['parameters'] += a.size
    return dict(sorted(out.items()))

  def traffic_bytes(self, num_clients: int = 1) -> Dict[str, int]:
    """Bytes of parameter values per client per round. Down: the global values and the client's own
    personalized ones. Up: the global updates and, per personalized group, a [K, D] matrix in which the client
    filled its own row (one federated sum then gathers every client's update at the server)."""
    global_values = sum(a.size for a in self.assignments if a.role == GLOBAL)
    personalized = sum(a.size for a in self.assignments if a.role == PERSONALIZED)
    return {'up': (global_values + num_clients * personalized) * BYTES_PER_VALUE,
            'down': (global_values + personalized) * BYTES_PER_VALUE}


# ------------------------------------------------------------------------------------------------ rule helpers
# Each algorithm declares its own template from these (federated/algorithms/<name>.py).


def layer_globs(names: Sequence[str]) -> Tuple[str, ...]:
  """Globs that match every variable of the named layers."""
  return tuple(f'{n}/*' for n in names)


def batch_norm_rules(model) -> List[Rule]:
  """[BatchNormalization -> local] when the model has BatchNorm layers (FedBN), else none."""
  if any(isinstance(l, tf.keras.layers.BatchNormalization) for l in model.submodules):
    return [Rule(LOCAL, layer_type=BATCH_NORM)]
  return []


def all_rule(role: str) -> Rule:
  """Every (remaining) variable in one role."""
  return Rule(role, '*')


def describe(template: Template, model, num_clients: int = 1) -> str:
  """A table of parameters per role and group, and the bytes each client sends and receives per round among
  `num_clients` clients."""
  part = Partition(assign(template, model))
  counts = part.counts()
  total = sum(c['parameters'] for c in counts.values())
  lines = [f'template {template.name}: {len(template.rules)} rules', *[f'  {r.describe()}' for r in template.rules],
           '', f'{"role/group":<28} {"variables":>9} {"parameters":>11} {"share":>7}']
  for key, c in counts.items():
    lines.append(f'{key:<28} {c["variables"]:>9} {c["parameters"]:>11} {c["parameters"] / total:>7.1%}')
  lines.append(f'{"total":<28} {sum(c["variables"] for c in counts.values()):>9} {total:>11}')
  t = part.traffic_bytes(num_clients)
  bn = sorted({a.key for a in part.assignments if a.batch_norm})
  lines += ['', f'per client per round among {num_clients} clients: up {t["up"]:,} bytes of parameter updates (global, '
                f'and a [{num_clients}, D] matrix per personalized group holding its own row; plus example counts, '
                f'metrics and telemetry), down {t["down"]:,} bytes (global and own personalized values)',
            f'never leaves a client: {counts.get(LOCAL, {}).get("parameters", 0):,} local parameters'
            + (f'; BatchNorm variables are {", ".join(bn)}' if bn else '')]
  return '\n'.join(lines)
