"""pfmsmt describe: the parameter template of an algorithm on a model, as a table of roles and traffic."""

from __future__ import annotations

import sys
import tempfile

from absl import flags

from pfmsmt_tf import config as config_lib
from data_pipelines import flagconfig
from federated.cli import common

flags.DEFINE_string('data', 'synthetic', 'A prepared data folder, or "synthetic" for the embedded default.')
flags.DEFINE_string('algorithm', 'pfmsmtrec', 'Algorithm whose template is described (`pfmsmt algorithms`).')
flags.DEFINE_string('template', '', 'A custom template JSON file (overrides the algorithm\'s own).')
flagconfig.define_flags(config_lib.ModelConfig, __name__)
FLAGS = flags.FLAGS


def main() -> None:
  from data_pipelines import prepare  # pylint: disable=g-import-not-at-top
  from data_pipelines import spec as spec_lib  # pylint: disable=g-import-not-at-top
  from federated import algorithms  # pylint: disable=g-import-not-at-top
  from pfmsmt_tf import models, template  # pylint: disable=g-import-not-at-top
  with tempfile.TemporaryDirectory() as work:
    data = prepare.resolve_data(FLAGS.data, work, log=lambda *_: None)
    spec = spec_lib.load_spec(data)
  model = models.build_model(config_lib.ModelInputs.from_dataset_spec(spec),
                             flagconfig.from_flags(config_lib.ModelConfig, FLAGS))
  shared = spec.statistics_scope == 'shared'
  algorithm = algorithms.get(FLAGS.algorithm)
  tmpl = template.load_template(FLAGS.template) if FLAGS.template else algorithm.template_for(model, shared)
  print(f'data: {FLAGS.data} ({spec.dataset}: {len(spec.scenarios)} scenarios {spec.scenario_names}, tasks '
        f'{spec.task_names}, statistics {spec.statistics_scope})')
  print(f'model: {model.config.backbone}, {model.count_params():,} parameters')
  print(template.describe(tmpl, model, len(spec.scenarios)))
  if algorithm.federated:
    print()
    print(format_exchanged(tmpl, model, spec))


def format_exchanged(tmpl, model, spec) -> str:
  """Every value a client receives and sends in one round of the TFF process, from the template."""
  import numpy as np  # pylint: disable=g-import-not-at-top
  from federated.layout import ModelLayout  # pylint: disable=g-import-not-at-top
  from pfmsmt_tf import template  # pylint: disable=g-import-not-at-top
  layout = ModelLayout(lambda: model, template.assign(tmpl, model), len(spec.scenarios))
  lines = []
  for direction, title in (('down', 'server -> client'), ('up', 'client -> server')):
    exchanged = layout.exchanged(spec.task_names)
    items = exchanged[direction] + (exchanged['up_telemetry'] if direction == 'up' else [])
    wire = sum(template.BYTES_PER_VALUE * int(np.prod(shape)) for _, dtype, shape in items if dtype != 'str')
    lines.append(f'{title}, each round ({len(items)} values, {wire:,} bytes of numbers on the wire):')
    lines += [f'  {name:<72} {dtype:<8} {list(shape)}' for name, dtype, shape in items]
  lines.append('nothing else: no local parameter, no raw row (rows are read where they lie, from the file pattern)')
  return '\n'.join(lines)


def run(argv) -> None:
  common.run_app(main, argv, sys.modules[__name__])
