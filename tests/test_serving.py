"""SavedModel export: raw columns in, the in-process model's probabilities out; saved_model_cli works on it."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from data_pipelines import prepare, records, sources
from data_pipelines import spec as spec_lib
from data_pipelines.config import PrepareConfig
from pfmsmt_tf import config as model_config
from pfmsmt_tf import models, serving
from tests import helpers

SMALL_MODEL = helpers.small_model_config()


def _prepared(tmp_path_factory, **kw):
  cfg = PrepareConfig(output=str(tmp_path_factory.mktemp('serving') / 'data'), rows_per_scenario=300, **kw)
  prepare.prepare(cfg, log=lambda *_: None)
  return cfg


def _raw_rows(cfg, scenario):
  rows, _ = helpers.read_all(prepare.make_source(cfg), 'test')
  return rows[rows[sources.SCENARIO] == scenario].reset_index(drop=True)


def _trained_like_model(spec):
  """A model whose weights are not the initial ones, so that every weight matters to the outputs."""
  model = models.build_model(model_config.ModelInputs.from_dataset_spec(spec), SMALL_MODEL)
  rng = np.random.default_rng(1)
  model.set_weights([w + rng.normal(scale=0.1, size=w.shape).astype(w.dtype) for w in model.get_weights()])
  return model


@pytest.mark.parametrize('kw', [{}, {'hash_bins': 50}, {'statistics_scope': 'scenario'}],
                         ids=['vocabulary', 'hashed', 'per_scenario_statistics'])
def test_exported_model_matches_the_in_process_model(tmp_path_factory, kw):
  cfg = _prepared(tmp_path_factory, **kw)
  spec = spec_lib.load_spec(cfg.output)
  model = _trained_like_model(spec)
  path = str(tmp_path_factory.mktemp('export') / 'ES' / '1')
  serving.export_saved_model(model, spec, cfg.output, 'ES', path, provenance={'round': 3})
  rows = _raw_rows(cfg, 'ES')
  rows.loc[0, spec.categorical[0].name] = 'never-seen-in-train'  # the OOV bucket, as prepare maps it
  cat, num, _, _, _ = records.Encoder(spec, cfg.output).encode(rows, 'ES')
  expected = model({'categorical': tf.constant(cat), 'numerical': tf.constant(num)}, training=False)

  loaded = tf.saved_model.load(path)
  info = json.load(open(os.path.join(path, serving.EXPORT_INFO)))
  assert info['scenario'] == 'ES' and info['tasks'] == ['ctr', 'ctcvr'] and info['round'] == 3
  inputs = {}
  for f in spec.categorical:
    inputs[info['inputs'][f.name]['name']] = tf.constant(rows[f.name].astype(str).to_numpy())
  for f in spec.numerical:
    inputs[info['inputs'][f.name]['name']] = tf.constant(rows[f.name].to_numpy(np.float32))
  served = loaded.signatures['serving_default'](**inputs)
  for t in spec.task_names:
    np.testing.assert_allclose(served[t].numpy(), expected[t].numpy(), rtol=1e-4, atol=1e-6)
    assert served[t].shape == (len(rows),)


def test_saved_model_cli_show_and_run(tmp_path_factory):
  cfg = _prepared(tmp_path_factory)
  spec = spec_lib.load_spec(cfg.output)
  path = str(tmp_path_factory.mktemp('cli') / 'NL' / '1')
  serving.export_saved_model(_trained_like_model(spec), spec, cfg.output, 'NL', path)
  cli = os.path.join(os.path.dirname(sys.executable), 'saved_model_cli')
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='3')
  shown = subprocess.run([cli, 'show', '--dir', path, '--tag_set', 'serve', '--signature_def', 'serving_default'],
                         capture_output=True, text=True, env=env, timeout=120)
  assert shown.returncode == 0, shown.stderr
  assert "outputs['ctr']" in shown.stdout and "inputs['" + spec.categorical[0].name + "']" in shown.stdout
  exprs = ';'.join([f'{f.name}=["a", "b"]' for f in spec.categorical] +
                   [f'{f.name}=[0.5, -1.0]' for f in spec.numerical])
  ran = subprocess.run([cli, 'run', '--dir', path, '--tag_set', 'serve', '--signature_def', 'serving_default',
                        '--input_exprs', exprs], capture_output=True, text=True, env=env, timeout=120)
  assert ran.returncode == 0, ran.stderr
  for t in spec.task_names:
    values = re.search(rf'output key {t}:\n\[([^\]]*)\]', ran.stdout).group(1).split()
    assert len(values) == 2 and all(0 < float(v) < 1 for v in values)


def test_signature_names_are_valid_and_distinct():
  names = serving.signature_names(['class of worker', 'class_of_worker', '301', 'a-b', ''])
  assert names == {'class of worker': 'class_of_worker', 'class_of_worker': 'class_of_worker_2', '301': 'f_301',
                   'a-b': 'a_b', '': 'feature'}
