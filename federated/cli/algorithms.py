"""pfmsmt algorithms: every algorithm of the registry (federated/algorithms/), one line each, with its family
and its parameters' roles on a model (the default model on the embedded synthetic data unless --data)."""

from __future__ import annotations

import sys
import tempfile

from absl import flags

from data_pipelines import flagconfig
from federated.cli import common
from pfmsmt_tf import config as config_lib

flags.DEFINE_string('data', 'synthetic', 'A prepared data folder whose model the roles are counted on.')
flagconfig.define_flags(config_lib.ModelConfig, __name__)
FLAGS = flags.FLAGS


def roles_line(algorithm, model, shared_inputs: bool) -> str:
  """'global 62%, personalized/experts 20%, ...': the share of the model's parameters in each role."""
  from pfmsmt_tf import template  # pylint: disable=g-import-not-at-top
  counts = template.Partition(template.assign(algorithm.template_for(model, shared_inputs), model)).counts()
  total = sum(c['parameters'] for c in counts.values())
  return ', '.join(f'{key} {c["parameters"] / total:.0%}' for key, c in counts.items())


def table(model, shared_inputs: bool) -> str:
  from federated import algorithms  # pylint: disable=g-import-not-at-top
  lines = [f'{"algorithm":<30} {"family":<10} description', f'{"":<30} {"":<10} parameter roles']
  for a in algorithms.all_algorithms():
    lines.append(f'{a.name:<30} {a.family:<10} {a.description}')
    lines.append(f'{"":<30} {"":<10} {roles_line(a, model, shared_inputs)}')
  return '\n'.join(lines)


def main() -> None:
  from data_pipelines import prepare  # pylint: disable=g-import-not-at-top
  from data_pipelines import spec as spec_lib  # pylint: disable=g-import-not-at-top
  from pfmsmt_tf import models  # pylint: disable=g-import-not-at-top
  with tempfile.TemporaryDirectory() as work:
    spec = spec_lib.load_spec(prepare.resolve_data(FLAGS.data, work, log=lambda *_: None))
  model = models.build_model(config_lib.ModelInputs.from_dataset_spec(spec),
                             flagconfig.from_flags(config_lib.ModelConfig, FLAGS))
  print(f'roles on the {model.config.backbone} model of {FLAGS.data} ({model.count_params():,} parameters); '
        '`pfmsmt describe --algorithm=NAME` shows one in full')
  print(table(model, spec.statistics_scope == 'shared'))


def run(argv) -> None:
  common.run_app(main, argv, sys.modules[__name__])
