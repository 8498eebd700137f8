"""A finished run read back: re-evaluation, other data with the same encoding, and each scenario's model."""

import numpy as np
import pytest

from data_pipelines import pipeline, prepare
from data_pipelines import spec as spec_lib
from data_pipelines.config import PipelineConfig, PrepareConfig
from federated import restore, runtime
from data_pipelines import metrics


@pytest.fixture(scope='module')
def finished(trained_run, finished_run, tmp_path_factory):
  with runtime.local_runtime():
    yield finished_run, trained_run.metrics, tmp_path_factory.mktemp('restore')


def test_reevaluation_equals_the_run_metrics(finished):
  run, result, _ = finished
  assert run.round == 3 and run.algorithm == 'pfmsmtrec'
  again = run.evaluate()
  for s, tasks in result['test'].items():
    for t, m in tasks.items():
      assert again[s][t]['auc'] == pytest.approx(m['auc'], abs=1e-6)
      assert again[s][t]['logloss'] == pytest.approx(m['logloss'], abs=1e-6)


def test_scenario_model_is_the_model_its_client_evaluated(finished):
  run, result, _ = finished
  for scenario in ('NL', 'US'):
    model = run.scenario_model(scenario)
    labels, probs = [], []
    for f, l in pipeline.make_dataset(run.data, run.spec, 'test', scenario, PipelineConfig(shuffle_buffer=0)):
      labels.append(l['ctr'].numpy())
      probs.append(model(f, training=False)['ctr'].numpy())
    auc = metrics.exact_auc(np.concatenate(labels), np.concatenate(probs))
    assert auc == pytest.approx(result['test'][scenario]['ctr']['auc'], abs=2e-3)
  # Scenarios differ in their personalized and local parameters.
  nl, us = run.scenario_model('NL').get_weights(), run.scenario_model('US').get_weights()
  assert sum(not np.array_equal(a, b) for a, b in zip(nl, us)) > 0


def test_other_data_needs_the_same_encoding(finished):
  run, _, root = finished
  other = str(root / 'other')
  prepare.prepare(PrepareConfig(output=other, rows_per_scenario=400, seed=5, encoding_from=run.data,
                                scenarios=('ES', 'FR')), log=lambda *_: None)
  spec = spec_lib.load_spec(other)
  assert spec.scenario_names == ['ES', 'FR'] and [s.index for s in spec.scenarios] == [1, 2]
  out = run.evaluate(other)
  assert set(out) == {'ES', 'FR'} and all(0 < m[t]['auc'] < 1 for m in out.values() for t in m)
  assert out['ES']['ctr']['examples'] == 80
  fresh = str(root / 'fresh')
  prepare.prepare(PrepareConfig(output=fresh, rows_per_scenario=400, seed=5), log=lambda *_: None)
  with pytest.raises(ValueError, match=r'vocabulary of .* differs.*--encoding_from='):
    run.evaluate(fresh)


def test_missing_run_or_checkpoint_is_a_clear_error(tmp_path):
  with pytest.raises(FileNotFoundError, match='not a run directory'):
    restore.load_setup(str(tmp_path))


def test_resume_with_other_settings_names_each_difference(trained_run, tmp_path):
  import dataclasses  # pylint: disable=g-import-not-at-top
  import json  # pylint: disable=g-import-not-at-top
  import shutil  # pylint: disable=g-import-not-at-top
  from federated import training  # pylint: disable=g-import-not-at-top
  from tests import helpers  # pylint: disable=g-import-not-at-top
  run = str(tmp_path / 'run')
  shutil.copytree(trained_run.run, run)
  config = json.load(open(f'{run}/config.json'))
  del config['client']['embedding_lr_scale']  # as a run of a version before that setting wrote it
  json.dump(config, open(f'{run}/config.json', 'w'))
  setup = helpers.small_setup(trained_run.data, run, rounds=4, resume=True)
  setup = dataclasses.replace(setup, client_cfg=dataclasses.replace(setup.client_cfg, learning_rate=0.01))
  with pytest.raises(ValueError, match=r'client settings .*embedding_lr_scale was \(not recorded\), now 1\.0, '
                                       r'learning_rate was 0\.001, now 0\.01$'):
    training.train(setup, log=lambda *_: None)
