"""The parameter template: one role per variable in every algorithm's template, BatchNorm by type, exact split/merge."""

import json

import numpy as np
import pytest
import tensorflow as tf

from federated import algorithms
from pfmsmt_tf import config as config_lib
from pfmsmt_tf import models
from pfmsmt_tf import template as T

INPUTS = config_lib.ModelInputs(('a', 'b'), (5, 7), 3, ('ctr', 'ctcvr'))
CONFIGS = {
    'default': config_lib.ModelConfig(seed=0),
    'plain_mmoe': config_lib.ModelConfig(num_global_experts=0, num_task_experts=0, num_scenario_experts=3),
    'no_bn': config_lib.ModelConfig(batch_norm=False),
    'shared_bottom': config_lib.ModelConfig(backbone='shared_bottom'),
    'single_task': config_lib.ModelConfig(backbone='single_task'),
}


def _model(name='default', inputs=INPUTS):
  return models.build_model(inputs, CONFIGS[name])


def _preset(algorithm, model, shared_inputs=True):
  """The template each algorithm module declares (federated/algorithms/<name>.py)."""
  return algorithms.get(algorithm).template_for(model, shared_inputs)


def _roles(template, model):
  return {a.path: a.key for a in T.assign(template, model)}


@pytest.mark.parametrize('config', sorted(CONFIGS))
@pytest.mark.parametrize('algorithm', algorithms.names())
def test_every_variable_gets_exactly_one_role(algorithm, config):
  model = _model(config)
  assignments = T.assign(_preset(algorithm, model), model)
  assert [a.index for a in assignments] == list(range(len(model.weights)))
  assert all(a.role in T.ROLES for a in assignments)


def test_pfmsmtrec_roles():
  model = _model()
  roles = _roles(_preset('pfmsmtrec', model), model)
  assert roles['input/embedding_0/embeddings'] == 'global'
  assert roles['input/numerical_projection/kernel'] == 'global'
  assert roles['expert_global_1/dense_0/kernel'] == 'global'
  assert roles['expert_scenario_0/dense_1/bias'] == 'personalized/experts'
  assert roles['expert_task_1_0/dense_0/kernel'] == 'local'
  assert roles['gate_0/dense/kernel'] == 'local'
  assert roles['tower_0/logit/kernel'] == 'personalized/tower/ctr'
  assert roles['tower_1/mlp/dense_0/bias'] == 'personalized/tower/ctcvr'
  for suffix in ('gamma', 'beta', 'moving_mean', 'moving_variance'):
    assert roles[f'expert_scenario_0/batch_norm_0/{suffix}'] == 'local'  # FedBN
    assert roles[f'expert_global_0/batch_norm_1/{suffix}'] == 'local'
  local_inputs = _roles(_preset('pfmsmtrec', model, shared_inputs=False), model)
  assert local_inputs['input/embedding_1/embeddings'] == 'local'


def test_ablation_and_baseline_roles():
  model = _model()
  no_bn = _roles(_preset('pfmsmtrec_no_fedbn', model), model)
  assert no_bn['expert_scenario_0/batch_norm_0/moving_mean'] == 'personalized/experts'
  assert no_bn['expert_global_0/batch_norm_0/gamma'] == 'global'
  assert no_bn['expert_task_0_0/batch_norm_0/beta'] == 'local'
  assert _roles(_preset('pfmsmtrec_no_tower_agg', model), model)['tower_0/logit/kernel'] == 'local'
  for same in ('pfmsmtrec_no_conflict', 'pfmsmtrec_no_personalization', 'pfmsmtrec_no_reg'):
    assert _preset(same, model).rules == _preset('pfmsmtrec', model).rules
  assert set(_roles(_preset('local', model), model).values()) == {'local'}
  assert set(_roles(_preset('fedavg', model), model).values()) == {'global'}
  fedbn = _roles(_preset('fedbn', model), model)
  assert fedbn['expert_global_0/batch_norm_0/moving_variance'] == 'local' and fedbn['tower_0/logit/bias'] == 'global'
  fedper = _roles(_preset('fedper', model), model)
  assert fedper['tower_1/logit/kernel'] == 'local' and fedper['gate_1/dense/bias'] == 'local'
  assert fedper['expert_scenario_0/batch_norm_0/gamma'] == 'global'


class _Nested(tf.keras.layers.Layer):
  """A BatchNorm two levels down, under a name that says nothing about it."""

  def __init__(self, **kw):
    super().__init__(**kw)
    self.inner = tf.keras.Sequential([tf.keras.layers.Dense(3, name='d'),
                                      tf.keras.layers.BatchNormalization(name='plain_name')], name='inner')

  def call(self, x, training=None):
    return self.inner(x, training=training)


def test_batch_norm_is_found_by_type_in_nested_layers():
  inp = tf.keras.Input((4,))
  model = tf.keras.Model(inp, _Nested(name='block')(inp), name='m')
  roles = _roles(T.Template('t', (T.Rule('local', layer_type='BatchNormalization'), T.Rule('global', '*'))), model)
  assert {p for p, r in roles.items() if r == 'local'} == {
      'block/inner/plain_name/gamma', 'block/inner/plain_name/beta',
      'block/inner/plain_name/moving_mean', 'block/inner/plain_name/moving_variance'}
  assert roles['block/inner/d/kernel'] == 'global'


def test_errors_name_the_variable_or_rule():
  model = _model()
  with pytest.raises(ValueError, match=r"no rule matches variable\(s\) \[.*'tower_1/logit/bias'"):
    T.assign(T.Template('partial', (T.Rule('global', ('input/*', 'expert*', 'gate*', 'tower_0/*')),
                                    T.Rule('local', 'tower_1/mlp/*'), T.Rule('local', 'tower_1/logit/kernel'))), model)
  with pytest.raises(ValueError, match=r"match no variable: \['nothing/\* -> local'\]"):
    T.assign(T.Template('extra', (T.Rule('global', '*'), T.Rule('local', 'nothing/*'))), model)
  with pytest.raises(ValueError, match='name a group'):
    T.Rule('personalized', '*')
  with pytest.raises(ValueError, match='unknown algorithm'):
    _preset('fedsgd', model)


@pytest.mark.parametrize('algorithm', ['pfmsmtrec', 'pfmsmtrec_no_fedbn', 'fedper', 'local'])
def test_split_then_merge_is_the_identity(algorithm):
  model = _model()
  part = T.Partition(T.assign(_preset(algorithm, model), model))
  weights = model.get_weights()
  parts = part.split(weights)
  merged = part.merge(parts)
  assert len(merged) == len(weights)
  for a, b in zip(weights, merged):
    assert a is b
  n = len(parts['local']) + len(parts['global']) + sum(len(v) for v in parts['personalized'].values())
  assert n == len(weights)
  # Changing one part changes exactly those variables after a merge.
  if parts['personalized']:
    parts['personalized']['experts'] = [w + 1 for w in parts['personalized']['experts']]
    model.set_weights(part.merge(parts))
    changed = [i for i, (a, b) in enumerate(zip(weights, model.get_weights())) if not np.array_equal(a, b)]
    assert changed == part.indices('personalized', 'experts')


def test_custom_template_from_json(tmp_path):
  model = _model()
  path = tmp_path / 't.json'
  path.write_text(json.dumps({'name': 'mine', 'rules': [
      {'role': 'local', 'layer_type': 'BatchNormalization'},
      {'role': 'personalized', 'match': ['tower_*/*'], 'group': 'towers'},
      {'role': 'global', 'match': '*'}]}))
  template = T.load_template(str(path))
  assert T.Template.from_json(template.to_json()) == template
  assert _roles(template, model)['tower_1/logit/bias'] == 'personalized/towers'
  path.write_text(json.dumps({'rules': [{'role': 'global'}]}))
  with pytest.raises(ValueError, match=r't.json: .*exactly one of match or layer_type'):
    T.load_template(str(path))


def test_describe_counts_and_traffic():
  model = _model()
  text = T.describe(_preset('pfmsmtrec', model), model, num_clients=3)
  part = T.Partition(T.assign(_preset('pfmsmtrec', model), model))
  counts = part.counts()
  assert sum(c['parameters'] for c in counts.values()) == model.count_params()
  global_values = counts['global']['parameters']
  personal = sum(c['parameters'] for k, c in counts.items() if k.startswith('personalized'))
  assert personal > 0
  # Up: each personalized group travels as a [K, D] matrix holding the client's own row.
  assert part.traffic_bytes(3) == {'up': 4 * (global_values + 3 * personal), 'down': 4 * (global_values + personal)}
  assert 'personalized/experts' in text and f'up {4 * (global_values + 3 * personal):,} bytes' in text
  assert T.Partition(T.assign(_preset('local', model), model)).traffic_bytes() == {'up': 0, 'down': 0}
