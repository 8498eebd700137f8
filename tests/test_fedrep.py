"""FedRep: the local heads trained first with the body fixed, then the body with the heads fixed."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_federated as tff

from federated import algorithms, client_work
from federated.layout import ModelLayout
from pfmsmt_tf import config as config_lib
from pfmsmt_tf import models
from tests import helpers

INPUTS = config_lib.ModelInputs(('a', 'b'), (5, 7), 3, ('ctr', 'ctcvr'))


def _layout():
  model_fn = lambda: models.build_model(INPUTS, config_lib.ModelConfig(seed=0))
  return ModelLayout.from_model_fn(model_fn, algorithms.get('fedrep').template_for(model_fn()), 2)


def test_declaration_and_phase_split():
  fedrep = algorithms.get('fedrep')
  assert fedrep.client_phases == ('local', 'shared') and fedrep.family == 'baseline'
  layout = _layout()
  model = layout.model_fn()
  head = client_work.phase_variables(layout, model.weights, 'local')
  body = client_work.phase_variables(layout, model.weights, 'shared')
  paths = {id(w): a.path for w, a in zip(model.weights, layout.assignments)}
  assert head and body and not {id(v) for v in head} & {id(v) for v in body}
  assert {id(v) for v in head} | {id(v) for v in body} == {id(v) for v in model.trainable_weights}
  assert all(paths[id(v)].startswith(('tower_', 'gate_')) for v in head)
  assert not any(paths[id(v)].startswith(('tower_', 'gate_')) for v in body)


def test_a_phase_updates_only_its_own_variables():
  layout = _layout()
  model = layout.model_fn()
  rng = np.random.default_rng(0)
  features = {'categorical': rng.integers(0, 5, size=(64, 2)), 'numerical': rng.normal(size=(64, 3)).astype('f4')}
  labels = {t: (rng.random(64) < 0.3).astype('f4') for t in INPUTS.tasks}
  data = tf.data.Dataset.from_tensor_slices((features, labels)).batch(16)
  for phase in ('local', 'shared'):
    before = [w.numpy().copy() for w in model.weights]
    chosen = {id(v) for v in client_work.phase_variables(layout, model.weights, phase)}
    client_work._train(model, data, list(INPUTS.tasks), tff.learning.optimizers.build_adam(1e-2),  # pylint: disable=protected-access
                       lambda: tf.constant(0.0), tf.constant([0, 0], tf.int64),
                       variables=[v for v in model.weights if id(v) in chosen])
    for w, b in zip(model.weights, before):
      moved = not np.array_equal(w.numpy(), b)
      if id(w) in chosen:
        assert moved, w.name
      elif w.trainable:
        assert not moved, w.name


@pytest.mark.slow
def test_a_fedrep_round_trains_and_keeps_heads_home(tmp_path):
  from data_pipelines import prepare  # pylint: disable=g-import-not-at-top
  from data_pipelines.config import PrepareConfig  # pylint: disable=g-import-not-at-top
  from federated import training  # pylint: disable=g-import-not-at-top
  data = str(tmp_path / 'data')
  prepare.prepare(PrepareConfig(output=data, rows_per_scenario=400), log=lambda *_: None)
  result = training.train_in_runtime(helpers.small_setup(data, str(tmp_path / 'run'), 'fedrep'), log=lambda *_: None)
  assert np.isfinite(result['mean_auc'])
  assert (tmp_path / 'run' / 'clients' / 'NL').is_dir() and list((tmp_path / 'run' / 'clients' / 'NL').glob('round_*'))
