"""The dataset's feature spec: described once, saved as JSON beside the prepared data, read by the model.

Categorical ids in the records are already encoded: 0 is the out-of-vocabulary bucket and i >= 1 is
`vocabulary[i - 1]`, or, for hashed features, `farmhash64(value) % hash_bins`. Numerical values are already
normalized with the stored statistics. Serving replays both from this spec.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from typing import Dict, List, Optional, Sequence

SPEC_FILE = 'spec.json'
SUMMARY_FILE = 'summary.json'
SPEC_VERSION = 2  # 2: shards of fixed-width rows (records.record_dtype); 1: TFRecord shards of tf.train.Example
READABLE_VERSIONS = (1, 2)  # a version 1 folder still gives its encoding (--encoding_from), not its rows
SHARED_SCOPE = '*'  # statistics key when one vocabulary/normalization is shared by all scenarios
# Fewer train rows than this per embedding row in use and a feature's ids are sparse: prepare says so, and
# client training steps its table `ClientConfig.sparse_embedding_lr_scale` times the learning rate.
SPARSE_ROWS_PER_VALUE = 20

NORMALIZATIONS = ('none', 'standard', 'log_standard')


@dataclasses.dataclass
class CategoricalFeature:
  name: str
  # Per scope ('*' or a scenario name): vocabulary file relative to the data dir, most frequent first.
  vocabulary_files: Dict[str, str] = dataclasses.field(default_factory=dict)
  hash_bins: Optional[int] = None  # set instead of vocabularies for hashed features
  vocabulary_size: int = 0  # embedding rows: max over scopes of len(vocabulary) + 1 OOV bucket, or hash_bins
  train_rows_per_value: float = 0.0  # train rows per kept value (or hash bin); 0: not recorded (older data)

  @property
  def input_dim(self) -> int:
    return self.hash_bins if self.hash_bins else self.vocabulary_size

  @property
  def sparse(self) -> bool:
    return 0 < self.train_rows_per_value < SPARSE_ROWS_PER_VALUE


@dataclasses.dataclass
class NumericalFeature:
  name: str
  normalization: str = 'standard'
  # Per scope: (mean, std) of the transformed value on the train split.
  statistics: Dict[str, List[float]] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Task:
  name: str
  label: str  # how the binary label is derived from the source, in words (e.g. "click == 1 and conversion == 1")


@dataclasses.dataclass
class Scenario:
  name: str
  index: int  # stable position; the key of `tff.federated_select`
  directory: str  # file-system-safe name of the partition folders


@dataclasses.dataclass
class DatasetSpec:
  dataset: str
  categorical: List[CategoricalFeature]
  numerical: List[NumericalFeature]
  tasks: List[Task]
  scenario_column: str
  scenarios: List[Scenario]
  splits: List[str]
  statistics_scope: str = 'shared'  # 'shared' or 'scenario'
  has_true_probabilities: bool = False  # synthetic data records each row's true probability per task
  version: int = SPEC_VERSION

  @property
  def task_names(self) -> List[str]:
    return [t.name for t in self.tasks]

  @property
  def scenario_names(self) -> List[str]:
    return [s.name for s in self.scenarios]

  def scenario(self, name: str) -> Scenario:
    for s in self.scenarios:
      if s.name == name:
        return s
    raise KeyError(f'unknown scenario {name!r}; the spec has {self.scenario_names}')

  def scope(self, scenario: str) -> str:
    return SHARED_SCOPE if self.statistics_scope == 'shared' else scenario

  def to_json(self) -> dict:
    return dataclasses.asdict(self)

  @classmethod
  def from_json(cls, d: dict) -> 'DatasetSpec':
    if d.get('version') not in READABLE_VERSIONS:
      raise ValueError(f'spec version {d.get("version")!r} is not supported (expected one of {READABLE_VERSIONS})')
    return cls(
        dataset=d['dataset'],
        categorical=[CategoricalFeature(**c) for c in d['categorical']],
        numerical=[NumericalFeature(**n) for n in d['numerical']],
        tasks=[Task(**t) for t in d['tasks']],
        scenario_column=d['scenario_column'],
        scenarios=[Scenario(**s) for s in d['scenarios']],
        splits=list(d['splits']),
        statistics_scope=d['statistics_scope'],
        has_true_probabilities=d['has_true_probabilities'],
        version=d['version'],
    )

  def save(self, data_dir: str) -> str:
    path = os.path.join(data_dir, SPEC_FILE)
    with open(path, 'w') as f:
      json.dump(self.to_json(), f, indent=1)
    return path


def load_spec(data_dir: str) -> DatasetSpec:
  path = os.path.join(data_dir, SPEC_FILE)
  if not os.path.exists(path):
    raise FileNotFoundError(f'{path} not found: {data_dir} is not a prepared data directory (run `pfmsmt prepare`)')
  with open(path) as f:
    return DatasetSpec.from_json(json.load(f))


def load_vocabulary(data_dir: str, relative_path: str) -> List[str]:
  """Vocabulary files hold one JSON string per line, so any value (newlines included) round-trips. They are read
  as one JSON array: a `json.loads` per line took 0.36 s for 100,000 values, one call 0.04 s."""
  with open(os.path.join(data_dir, relative_path), encoding='utf-8') as f:
    lines = f.read().split('\n')  # json.dumps escapes every line break inside a value
  return json.loads('[' + ','.join(line for line in lines if line) + ']')


def safe_directory_name(name: str, taken: Sequence[str] = ()) -> str:
  """A folder name for a scenario value; distinct values never share a folder."""
  base = re.sub(r'[^A-Za-z0-9._-]+', '_', str(name)).strip('_.') or 'scenario'
  candidate, i = base, 1
  while candidate in taken:
    i += 1
    candidate = f'{base}_{i}'
  return candidate


def encoding_differences(spec: DatasetSpec, data_dir: str, other: DatasetSpec, other_dir: str) -> List[str]:
  """Why rows of `other` would not mean to a model what rows of `spec` meant (empty: the same encoding).

  A model trained on one prepared folder can read another only when categorical ids, normalization and tasks
  agree; `pfmsmt prepare --encoding_from=DIR` prepares new rows with an existing folder's encoding.
  """
  out = []
  if [t.name for t in spec.tasks] != [t.name for t in other.tasks]:
    out.append(f'tasks {other.task_names} != {spec.task_names}')
  if [f.name for f in spec.categorical] != [f.name for f in other.categorical]:
    out.append('categorical features differ')
  if [(f.name, f.normalization, f.statistics) for f in spec.numerical] != \
      [(f.name, f.normalization, f.statistics) for f in other.numerical]:
    out.append('numerical features or their normalization statistics differ')
  if spec.statistics_scope != other.statistics_scope:
    out.append(f'statistics scope {other.statistics_scope} != {spec.statistics_scope}')
  for a, b in zip(spec.categorical, other.categorical):
    if a.hash_bins != b.hash_bins or set(a.vocabulary_files) != set(b.vocabulary_files):
      out.append(f'categorical feature {a.name!r} is encoded differently')
      continue
    for scope, rel in a.vocabulary_files.items():
      if load_vocabulary(data_dir, rel) != load_vocabulary(other_dir, b.vocabulary_files[scope]):
        out.append(f'vocabulary of {a.name!r} (scope {scope!r}) differs')
  unknown = [s for s in other.scenario_names if s not in spec.scenario_names]
  if unknown:
    out.append(f'scenarios {unknown} are not among {spec.scenario_names}')
  return out
