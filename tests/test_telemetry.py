"""Aggregation telemetry out of the TFF round, and the wiring it lets us check end to end: each client gets
its own personalized row, each ablation's override reaches the built process, FedBN keeps statistics apart."""

import collections
import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_federated as tff

from federated import aggregators, algorithms, client_work, restore, runtime, telemetry, training
from federated.config import AggregationConfig
from tests import helpers

ABLATIONS = ('pfmsmtrec_no_personalization',)


@pytest.fixture(scope='module')
def runs(trained_run, finished_run, tmp_path_factory):
  """The shared 3-round pfmsmtrec run, and one round of two ablations from the same seed (identical starts)."""
  root = tmp_path_factory.mktemp('telemetry')
  out = {'pfmsmtrec': trained_run.run, 'finished': finished_run}
  for algorithm in ABLATIONS:
    out[algorithm] = str(root / algorithm)
    training.train_in_runtime(helpers.small_setup(trained_run.data, out[algorithm], algorithm=algorithm, rounds=1),
                              log=lambda *_: None)
  return out


def _records(path):
  return telemetry.read(os.path.join(path, 'aggregation.jsonl'))


def test_one_record_per_round_with_every_measurement(runs):
  records = _records(runs['pfmsmtrec'])
  assert [r['round'] for r in records] == [1, 2, 3]
  r = records[0]
  assert r['scenarios'] == ['NL', 'ES', 'FR', 'US'] and len(r['global_update_norm']) == 4
  assert all(n > 0 for n in r['global_update_norm'])
  assert set(r['groups']) == {'experts', 'tower__ctr', 'tower__ctcvr'}
  experts = r['groups']['experts']
  assert {'update_norm', 'cosine_before', 'cosine_after', 'attention', 'pcgrad_projections',
          'pcgrad_removed_norm'} <= set(experts)
  attention = np.asarray(experts['attention'])
  assert attention.shape == (4, 4) and np.allclose(attention.sum(axis=1), 1, atol=1e-5)
  assert np.allclose(np.diag(experts['cosine_before']), 1, atol=1e-5)
  assert 'pcgrad_projections' not in r['groups']['tower__ctr']  # towers: no conflict step by default
  # The attention weights are softmax(cos / tau) of the coordinated updates.
  cos = np.asarray(experts['cosine_after'])
  want = np.exp(cos / 0.5) / np.exp(cos / 0.5).sum(axis=1, keepdims=True)
  assert np.allclose(attention, want, atol=1e-4)


@pytest.mark.slow  # 15 s; the fast suite keeps its time budget
def test_ablation_overrides_reach_the_built_process(runs):
  full = _records(runs['pfmsmtrec'])[0]['groups']['experts']
  assert 'pcgrad_projections' in full
  # no_conflict: the process hands the aggregator `group_conflicts(groups, algorithm.aggregation(cfg))`.
  no_conflict = algorithms.get('pfmsmtrec_no_conflict').aggregation(AggregationConfig())
  assert aggregators.group_conflicts(['experts', 'tower/ctr'], no_conflict) == {'experts': 'none', 'tower__ctr': 'none'}
  # --conflict=cagrad: the factory the process builds (federated/process.py) measures CAGrad's weights instead.
  factory = aggregators.TemplateAggregationFactory({'experts': 'cagrad'}, AggregationConfig(conflict='cagrad'))
  value_type = tff.types.to_type(collections.OrderedDict([
      ('global', [tff.TensorType(np.float32, [2])]),
      ('personalized', collections.OrderedDict(experts=tff.TensorType(np.float32, [3, 2]))),
      ('counts', tff.TensorType(np.float32, [3]))]))
  measured = factory.create(value_type, tff.TensorType(np.float32)).next.type_signature.result.measurements.member
  assert 'cagrad_weights' in tff.structure.name_list(measured['personalized']['experts'])
  mean = np.asarray(_records(runs['pfmsmtrec_no_personalization'])[0]['groups']['experts']['attention'])
  assert np.allclose(mean, mean[0:1], atol=1e-7)  # every client receives the same mix
  assert not np.allclose(np.asarray(full['attention']), np.asarray(full['attention'])[0:1], atol=1e-3)
  with runtime.local_runtime():
    rows_mean = restore.FinishedRun(runs['pfmsmtrec_no_personalization']).state['model']['personalized']['experts']
  rows_att = runs['finished'].state['model']['personalized']['experts']
  assert np.allclose(rows_mean, rows_mean[0:1], atol=1e-6)  # identical starts + identical mix
  assert not np.allclose(rows_att, rows_att[0:1], atol=1e-6)


def test_each_client_receives_its_own_row_and_no_other(runs):
  run = runs['finished']
  with runtime.local_runtime():
    state = run.state
    layout = run.trainer.fp.layout
    marked = {k: np.stack([np.full(v.shape[1], 10.0 * (i + 1), np.float32) for i in range(v.shape[0])])
              for k, v in state['model']['personalized'].items()}
    state = {'model': {'global': state['model']['global'], 'personalized': marked}, 'aggregator': state['aggregator']}
    run.trainer.evaluate(state, 99, split='valid', snapshot=True)  # each client saves what it received
  try:
    for s in run.spec.scenarios:
      model = run.model_fn()
      client_work.load_state(tf.constant(run.run.snapshot(s.directory, 99)), list(model.weights))
      weights = model.weights
      for key in layout.group_idx:
        vector = layout.flatten_group(key, weights).numpy()
        assert np.all(vector == 10.0 * (s.index + 1)), (s.name, key)
  finally:  # the shared run stays as it was
    for s in run.spec.scenarios:
      os.remove(run.run.snapshot(s.directory, 99))


def test_fedbn_statistics_differ_between_clients(runs):
  run = runs['finished']
  layout = run.trainer.fp.layout
  local = [a for a in layout.assignments if a.index in layout.local_idx]
  means = [j for j, a in enumerate(local) if a.batch_norm and 'moving_mean' in a.path]
  assert means
  stats = {}
  for s in run.spec.scenarios:
    model = run.model_fn()
    variables = [model.weights[i] for i in layout.local_idx]
    client_work.load_state(tf.constant(run.run.client_state(s.directory, run.round)), variables)
    stats[s.name] = np.concatenate([variables[j].numpy().ravel() for j in means])
  assert not np.allclose(stats['NL'], stats['US'])
  assert not np.allclose(stats['NL'], 0)  # trained, not the initial zeros


def test_summary_and_plots(runs, tmp_path):
  records = _records(runs['pfmsmtrec'])
  text = telemetry.summary(records)
  assert 'group experts' in text and 'pcgrad projections' in text and 'weight on self' in text
  assert 'peer contrast' in text
  paths = telemetry.plot(records, str(tmp_path))
  assert sorted(os.path.basename(p) for p in paths) == ['attention_experts.png', 'attention_tower__ctcvr.png',
                                                        'attention_tower__ctr.png', 'conflicts.png']
  assert all(os.path.getsize(p) > 1000 for p in paths)
  scalars = telemetry.scalars(records[0])
  assert 'aggregation/experts/pcgrad_projections' in scalars
  assert 0 <= scalars['aggregation/experts/attention_peer_contrast'] < float('inf')


def test_peer_contrast_tells_a_mix_that_ignores_similarity_from_one_that_follows_it():
  # Cosines all 0 under softmax(cos / tau): self e^(1/tau) / (e^(1/tau) + K - 1), every peer alike.
  flat = np.full((4, 4), 0.1) + np.eye(4) * 0.6
  assert telemetry.peer_contrast(flat) == 0.0
  # Row 0 gives 0.3 and 0.1 and 0.1 to its peers: (0.3 - 0.1) / (0.5 / 3) = 1.2; the other rows are flat.
  clustered = flat.copy()
  clustered[0] = [0.5, 0.3, 0.1, 0.1]
  assert telemetry.peer_contrast(clustered) == pytest.approx(1.2 / 4)
  assert np.isnan(telemetry.peer_contrast(np.eye(2)))  # one peer: nothing to tell apart
  assert telemetry.peer_contrast(np.eye(3)) == 0.0  # local training: no weight on any peer
