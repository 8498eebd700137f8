"""The algorithm registry: one module per algorithm, found by name; the CLI's choices and the docs read it."""

import sys

import numpy as np
import pytest
from absl import flags

from data_pipelines import flagconfig
from federated import algorithms, conflicts, personalization
from federated.algorithm import FAMILIES, Algorithm, uniform_template
from federated.algorithms import pfmsmtrec
from federated.cli import algorithms as algorithms_cli
from federated.config import AggregationConfig, TrainConfig
from federated.registry import ModuleRegistry
from pfmsmt_tf import config as config_lib
from pfmsmt_tf import models
from pfmsmt_tf import template as T

PAPER = {'pfmsmtrec', 'pfmsmtrec_no_fedbn', 'pfmsmtrec_no_conflict', 'pfmsmtrec_no_personalization',
         'pfmsmtrec_no_tower_agg', 'pfmsmtrec_no_reg', 'local', 'fedavg', 'fedprox', 'fedbn', 'fedper', 'ditto',
         'centralized'}


def test_every_module_is_an_algorithm_of_its_own_name():
  assert PAPER <= set(algorithms.names())
  for name in algorithms.names():
    a = algorithms.get(name)
    assert isinstance(a, Algorithm) and a.name == name and a.family in FAMILIES
    assert a.description and '\n' not in a.description
  assert set(algorithms.paper_algorithms()) == PAPER
  assert [a.family for a in algorithms.all_algorithms()] == sorted(
      (a.family for a in algorithms.all_algorithms()), key=FAMILIES.index)
  assert 'centralized' not in algorithms.federated_names()
  with pytest.raises(ValueError, match="unknown algorithm 'fedsgd'; choose one of .*pfmsmtrec"):
    algorithms.get('fedsgd')


def test_declarations_of_the_paper_algorithms():
  pf = algorithms.get('pfmsmtrec')
  assert [t.__name__ for t in pf.loss_terms] == ['personalization_regularizer']
  assert algorithms.get('pfmsmtrec_no_reg').loss_terms == ()
  assert [t.__name__ for t in algorithms.get('fedprox').loss_terms] == ['proximal']
  assert algorithms.get('ditto').personal_model and not pf.personal_model
  assert not algorithms.get('centralized').federated
  cfg = AggregationConfig(conflict='cagrad', personalization='attention')
  assert pf.aggregation(cfg) == cfg
  assert algorithms.get('pfmsmtrec_no_conflict').aggregation(cfg).conflict == 'none'
  assert algorithms.get('pfmsmtrec_no_personalization').aggregation(cfg).personalization == 'mean'
  assert pf.to_json()['loss_terms'] == ['personalization_regularizer']


def test_the_cli_choices_come_from_the_registries():
  values = flags.FlagValues()
  flagconfig.define_flags(TrainConfig, 'test', flag_values=values)
  flagconfig.define_flags(AggregationConfig, 'test', flag_values=values)
  assert values['algorithm'].parser.enum_values == list(algorithms.names())
  assert values['conflict'].parser.enum_values == list(conflicts.names()) == ['cagrad', 'none', 'pcgrad']
  assert values['personalization'].parser.enum_values == list(personalization.names()) == [
      'attention', 'attention_counts', 'fedamp', 'hyper_ca', 'hyper_cross', 'mean']
  assert values['tower_personalization'].parser.enum_values == [''] + list(personalization.names())
  with pytest.raises(ValueError, match='conflict methods must be among'):
    AggregationConfig(conflict='mgda')


def test_a_new_module_is_found_without_editing_anything(tmp_path, monkeypatch):
  """What adding an algorithm (or a conflict method) is: one module in the package."""
  package = tmp_path / 'extra_parts'
  package.mkdir()
  (package / '__init__.py').write_text('')
  (package / '_helper.py').write_text('X = 1\n')
  (package / 'newalg.py').write_text(
      'from federated.algorithm import Algorithm, uniform_template\nfrom pfmsmt_tf import template as T\n'
      "ALGORITHM = Algorithm(name='newalg', family='baseline', description='d', template=uniform_template(T.GLOBAL))\n")
  (package / 'broken.py').write_text('NOTHING = 1\n')
  monkeypatch.syspath_prepend(str(tmp_path))
  registry = ModuleRegistry('extra_parts', [str(package)], 'algorithm', 'ALGORITHM')
  assert registry.names() == ('broken', 'newalg')  # helpers (leading _) are not parts
  assert registry.get('newalg').name == 'newalg'
  with pytest.raises(TypeError, match='defines no ALGORITHM'):
    registry.get('broken')
  sys.modules.pop('extra_parts', None)


def test_algorithm_validation_and_uniform_templates():
  with pytest.raises(ValueError, match='family must be one of'):
    Algorithm('x', 'novel', 'd', uniform_template(T.GLOBAL))
  model = models.build_model(config_lib.ModelInputs(('a',), (5,), 2, ('ctr', 'ctcvr')), config_lib.ModelConfig(seed=0))
  tmpl = algorithms.get('local').template_for(model)
  assert tmpl.name == 'local' and {a.role for a in T.assign(tmpl, model)} == {T.LOCAL}


def test_pfmsmt_algorithms_lists_every_algorithm_with_its_roles():
  model = models.build_model(config_lib.ModelInputs(('a',), (5,), 2, ('ctr', 'ctcvr')), config_lib.ModelConfig(seed=0))
  text = algorithms_cli.table(model, shared_inputs=True)
  for a in algorithms.all_algorithms():
    assert f'{a.name} ' in text and a.description in text
  assert 'personalized/experts' in text and 'local 100%' in text and 'global 100%' in text


def test_the_logistic_reference_is_a_linear_model_per_scenario():
  from pfmsmt_tf import linear  # pylint: disable=g-import-not-at-top
  logistic = algorithms.get('logistic')
  assert logistic.family == 'reference' and logistic.federated and logistic.model is linear.build_logistic
  inputs = config_lib.ModelInputs(('a', 'b'), (5, 7), 0, ('ctr', 'ctcvr'))  # no numerical feature
  model = logistic.model(inputs, config_lib.ModelConfig())
  assert model.count_params() == (5 + 7) * 2 + 2  # one weight per category value and task, and a bias per task
  assert {a.role for a in T.assign(logistic.template_for(model), model)} == {T.LOCAL}
  out = model({'categorical': np.array([[1, 2]]), 'numerical': np.zeros((1, 0), np.float32)})
  assert np.allclose(out['ctr'], 0.5)  # zero weights: every probability 1/2 before training


def test_the_sized_variant_personalizes_every_task_part_with_its_tower_and_mixes_by_size():
  sized, inputs = algorithms.get('pfmsmtrec_sized'), algorithms.get('pfmsmtrec_personal_inputs')
  assert sized.family == 'variant' and not sized.paper and sized.loss_terms == inputs.loss_terms
  agg = sized.aggregation(AggregationConfig())
  assert agg.personalization == agg.tower_personalization == 'attention_counts'
  model = models.build_model(config_lib.ModelInputs(('a',), (5,), 2, ('ctr', 'ctcvr')), config_lib.ModelConfig(seed=0))
  g = model.layer_groups()
  roles = {a.path: (a.role, a.group) for a in T.assign(sized.template_for(model, True), model)}
  base = {a.path: (a.role, a.group) for a in T.assign(inputs.template_for(model, True), model)}
  local = {p for p, (role, _) in roles.items() if role == T.LOCAL}
  assert local and all('batch_norm' in p for p in local)  # federated BN; no weight learns from one scenario alone
  for task in ('ctr', 'ctcvr'):
    layers = list(g['task_experts'].get(task, ())) + [g['gates'][task], g['towers'][task]]
    paths = [p for p in roles if p.split('/')[0] in layers and p not in local]
    assert paths and {roles[p] for p in paths} == {(T.PERSONALIZED, T.tower_group(task))}
  assert {p: r for p, r in roles.items() if base[p][0] != T.LOCAL} == {
      p: r for p, r in base.items() if r[0] != T.LOCAL}  # the rest as in pfmsmtrec_personal_inputs
  with pytest.raises(ValueError, match='needs tower_aggregation'):
    pfmsmtrec.template_rules(model, True, tower_aggregation=False, personal_tasks=True)


def test_the_personal_inputs_variant_personalizes_the_embeddings_only_under_one_encoding():
  variant, pf = algorithms.get('pfmsmtrec_personal_inputs'), algorithms.get('pfmsmtrec')
  assert variant.family == 'variant' and not variant.paper and variant.loss_terms == pf.loss_terms
  model = models.build_model(config_lib.ModelInputs(('a',), (5,), 2, ('ctr', 'ctcvr')), config_lib.ModelConfig(seed=0))

  def roles(alg, shared):
    return {a.path: (a.role, a.group) for a in T.assign(alg.template_for(model, shared), model)}

  shared, base = roles(variant, True), roles(pf, True)
  inputs = {p for p in shared if p.startswith('input/')}
  assert inputs and {shared[p] for p in inputs} == {(T.PERSONALIZED, 'inputs')}
  assert {base[p] for p in inputs} == {(T.GLOBAL, '')}
  assert {p: r for p, r in shared.items() if p not in inputs} == {p: r for p, r in base.items() if p not in inputs}
  assert roles(variant, False) == roles(pf, False)  # per-scenario encodings: the embeddings stay local

