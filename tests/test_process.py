"""The federated process: what its round can carry, the run directory, resume after a kill, AUC accuracy."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_federated as tff

from data_pipelines import prepare, spec as spec_lib
from data_pipelines.config import PrepareConfig
from federated import algorithms, client_work, process, runtime, training
from federated.config import ClientConfig
from pfmsmt_tf import config as model_config
from data_pipelines import metrics
from pfmsmt_tf import models, template
from tests import helpers

SMALL_MODEL = helpers.small_model_config()


@pytest.fixture(scope='module')
def data(tmp_path_factory):
  out = str(tmp_path_factory.mktemp('fed') / 'data')
  prepare.prepare(PrepareConfig(output=out, rows_per_scenario=600), log=lambda *_: None)
  return out


def _tensors(t):
  """All tensor types inside a TFF type."""
  if isinstance(t, tff.TensorType):
    return [t]
  if isinstance(t, tff.FederatedType):
    return _tensors(t.member)
  if isinstance(t, tff.StructType):
    return [x for _, m in tff.structure.iter_elements(t) for x in _tensors(m)]
  return []


def _flat(t, prefix=''):
  """(name, dtype, shape) of every tensor in a TFF type, names from struct fields or positions."""
  if isinstance(t, tff.TensorType):
    return [(prefix, 'str' if t.dtype == np.str_ else np.dtype(t.dtype).name, tuple(t.shape))]
  if isinstance(t, (tff.FederatedType, tff.SequenceType)):
    return _flat(t.member if isinstance(t, tff.FederatedType) else t.element, prefix)
  out = []
  for i, (name, member) in enumerate(tff.structure.iter_elements(t)):
    out += _flat(member, f'{prefix}/{name if name else i}'.lstrip('/'))
  return out


def _same(declared, actual):
  """The declared list equals the TFF types: same dtypes and shapes in order, same field names where TFF has them."""
  assert [(d, s) for _, d, s in declared] == [(d, s) for _, d, s in actual]
  for (name, _, _), (tff_name, _, _) in zip(declared, actual):
    leaf = tff_name.split('/')[-1]
    if not leaf.isdigit():
      assert name.split(' ')[0].endswith(leaf), (name, tff_name)


def _parameters(t) -> int:
  return sum(int(np.prod(x.shape)) for x in _tensors(t) if x.dtype == np.float32 and len(x.shape))


def _build(data, name):
  spec = spec_lib.load_spec(data)
  inputs = model_config.ModelInputs.from_dataset_spec(spec)
  model_fn = lambda: models.build_model(inputs, SMALL_MODEL)
  tmpl = algorithms.get(name).template_for(model_fn())
  if name == 'pfmsmtrec':
    fp = process.build_pfmsmtrec_process(model_fn, spec)
  else:
    fp = process.build_algorithm_process(name, model_fn, spec)
  assert fp.layout.assignments == template.assign(tmpl, model_fn())
  return fp, tmpl, model_fn()


def _check_signature(data, name):
  fp, tmpl, model = _build(data, name)
  part = template.Partition(template.assign(tmpl, model))
  counts = part.counts()
  k = len(spec_lib.load_spec(data).scenarios)
  n_global = counts.get('global', {}).get('parameters', 0)
  n_personal = sum(c['parameters'] for key, c in counts.items() if key.startswith('personalized'))
  n_local = counts.get('local', {}).get('parameters', 0)
  sig = fp.process.next.type_signature
  state_in, client_in = sig.parameter[0], sig.parameter[1]
  # Server state: the global values and each client's personalized values, nothing of the local part.
  assert state_in.placement is tff.SERVER
  assert _parameters(state_in.member['model']['global']) == n_global
  assert _parameters(state_in.member['model']['personalized']) == k * n_personal
  assert _parameters(state_in.member['aggregator']) == 0
  # What the orchestrator hands each client: file paths, its scenario index and a seed; no parameters.
  assert client_in.placement is tff.CLIENTS
  assert str(client_in.member) == '<data=str,state_in=str,state_out=str,key=int32,seed=int32>'
  # What the round returns: the server state, scalar train metrics and the aggregation telemetry, whose
  # values are per client ([K]) or per pair of clients ([K, K]): summaries, never parameters.
  assert sig.result[0] == state_in
  assert sig.result[1].placement is tff.SERVER
  assert _parameters(sig.result[1].member['train']) == _parameters(sig.result[1].member['rejected']) == 0
  assert all(all(d <= k for d in x.shape) for x in _tensors(sig.result[1].member['aggregation']))
  # What goes up from a client: global and personalized updates (its row of each group), counts, metrics.
  update = fp.client_update
  assert _parameters(update.type_signature.result['update']['global']) == n_global
  assert _parameters(update.type_signature.result['update']['personalized']) == k * n_personal
  # What goes down: the global values broadcast, and only the own row of each personalized group.
  evaluate_in = fp.evaluate.type_signature.parameter[1]
  assert str(evaluate_in.member) == '<data=str,state=str,key=int32,whole=bool,snapshot=str>'
  # Every value exchanged, one by one, is what the template declares (what `pfmsmt describe` lists).
  declared = fp.layout.exchanged(spec_lib.load_spec(data).task_names)
  _same(declared['up'], _flat(update.type_signature.result))
  _same(declared['down'], _flat(update.type_signature.parameter))
  sent = {a.index for a in fp.layout.assignments if a.role != template.LOCAL}
  assert sent == set(fp.layout.global_idx) | {i for g in fp.layout.group_idx.values() for i in g}
  for a in fp.layout.assignments:
    if a.role == template.LOCAL:
      assert a.index not in sent, a.path  # never in any value: local parameters, BatchNorm where local
  if name in ('pfmsmtrec', 'fedbn', 'local'):  # their templates keep BatchNorm home, statistics included
    assert all(a.role == template.LOCAL for a in fp.layout.assignments if a.batch_norm)
  strings = [n.split('/')[-1] for n, d, _ in _flat(update.type_signature.parameter) if d == 'str']
  assert strings == ['data', 'state_in', 'state_out']  # file paths only: rows never travel
  return n_global, n_personal, n_local


# fedbn's 11 s are in the slow suite: the fast suite ran 9 min 18 s of its 10 in CI; pfmsmtrec's template keeps
# BatchNorm home too, checked by the same _check_signature
@pytest.mark.parametrize('name', ['pfmsmtrec', 'local', 'ditto', pytest.param('fedbn', marks=pytest.mark.slow)])
def test_round_signature_keeps_local_parameters_home(data, name):
  n_global, n_personal, n_local = _check_signature(data, name)
  if name == 'pfmsmtrec':
    assert n_global and n_personal and n_local
  if name == 'local':
    assert n_global == n_personal == 0
  if name == 'fedbn':
    assert n_personal == 0 and n_local  # BatchNorm stays home


@pytest.mark.slow
@pytest.mark.parametrize('name', sorted(set(algorithms.federated_names()) - {'pfmsmtrec', 'local', 'ditto', 'fedbn'}))
def test_round_signature_for_every_other_algorithm(data, name):
  _check_signature(data, name)


_setup = helpers.small_setup


def test_run_directory_contract(trained_run):
  data, run, result = trained_run.data, trained_run.run, trained_run.metrics
  files = set(os.listdir(run))
  assert {'config.json', 'rounds.csv', 'metrics.json', 'tb', 'checkpoints', 'clients', 'aggregation.jsonl'} <= files
  cfg = json.load(open(os.path.join(run, 'config.json')))
  assert {'train', 'model', 'client', 'aggregation', 'versions', 'data_spec'} <= set(cfg)
  assert cfg['versions']['tensorflow_federated'] == tff.__version__
  rows = open(os.path.join(run, 'rounds.csv')).read().splitlines()
  assert len(rows) == 4 and 'loss_ctr' in rows[0] and 'valid_mean_auc' in rows[0] and 'seconds' in rows[0]
  on_disk = json.load(open(os.path.join(run, 'metrics.json')))
  assert on_disk == json.loads(json.dumps(result))
  assert set(on_disk['test']) == {'NL', 'ES', 'FR', 'US'}
  for scenario in on_disk['test'].values():
    for task in ('ctr', 'ctcvr'):
      assert set(scenario[task]) == {'auc', 'logloss', 'positives', 'examples'} and scenario[task]['examples'] == 160
  assert set(on_disk['oracle']) == {'NL', 'ES', 'FR', 'US'} and 0.5 < on_disk['oracle_mean_auc'] < 1
  assert abs(on_disk['mean_auc'] - np.mean([m[t]['auc'] for m in on_disk['test'].values() for t in m])) < 1e-9
  assert any(f.startswith('events') for f in os.listdir(os.path.join(run, 'tb')))
  # Each client's local parameters are in its own folder, and only there.
  assert sorted(os.listdir(os.path.join(run, 'clients'))) == ['ES', 'FR', 'NL', 'US']
  with pytest.raises(FileExistsError, match='--resume'):
    training.train_in_runtime(_setup(data, run), log=lambda *_: None)


def test_centralized_reference(data, tmp_path):
  result = training.train_in_runtime(_setup(data, str(tmp_path / 'c'), algorithm='centralized'), log=lambda *_: None)
  assert result['algorithm'] == 'centralized' and 0 < result['mean_auc'] < 1


def test_keras_auc_agrees_with_the_exact_auc():
  rng = np.random.default_rng(0)
  for rate in (0.3, 0.05, 0.01):
    logits = rng.normal(size=20_000) + np.log(rate / (1 - rate))
    p = 1 / (1 + np.exp(-logits))
    y = rng.random(20_000) < 1 / (1 + np.exp(-(logits + rng.normal(scale=1.0, size=20_000))))
    m = tf.keras.metrics.AUC(num_thresholds=client_work.AUC_THRESHOLDS)
    m.update_state(y.astype(np.float32), p.astype(np.float32))
    assert abs(float(m.result()) - metrics.exact_auc(y, p)) < 1e-3


@pytest.mark.slow  # 50 s; ditto's round signature is in the fast suite, task PCGrad's math in test_aggregators
def test_task_pcgrad_and_ditto_train(data, tmp_path):
  setup = _setup(data, str(tmp_path / 'p'), rounds=1)
  setup.client_cfg = ClientConfig(batch_size=128, task_pcgrad=True)
  result = training.train_in_runtime(setup, log=lambda *_: None)
  assert 0 < result['mean_auc'] < 1
  rows = open(tmp_path / 'p' / 'rounds.csv').read().splitlines()
  loss = float(rows[1].split(',')[1])
  assert np.isfinite(loss) and 0 < loss < 1
  result = training.train_in_runtime(_setup(data, str(tmp_path / 'd'), algorithm='ditto', rounds=1),
                                     log=lambda *_: None)
  assert 0 < result['mean_auc'] < 1
  # ditto keeps a whole personal model at home.
  assert os.path.getsize(tmp_path / 'd' / 'clients' / 'NL' / 'round_00001.state') > 1000


def test_a_run_repeats_exactly_on_the_same_workers(data, tmp_path):
  """A worker keeps each session, and a stateful random op's state in it, from one call to the next; the
  dropout masks come from the round's and the client's seed instead, so a second run on the same workers
  trains the same models as the first."""
  results = []
  with runtime.local_runtime():
    for name in ('first', 'second'):
      results.append(training.train(_setup(data, str(tmp_path / name), rounds=2), log=lambda *_: None))
  assert helpers.small_model_config().dropout > 0
  assert results[0]['test'] == results[1]['test']
