"""Scenarios on separate workers, on loopback: `pfmsmt worker` x 2 and `train --workers` (federated/coordinator.py, federated/worker.py)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import portpicker
import pytest

from federated import coordinator, run_directory, runtime, telemetry, tls, training, worker
from federated.config import TrainConfig
from tests import helpers
from tests.conftest import REPO


@pytest.fixture(scope='module')
def certs(tmp_path_factory):
  folder = str(tmp_path_factory.mktemp('certs'))
  tls.init(folder, ['coordinator', 'silo'])
  return folder


def _worker(port, data_root, state_root, certs):
  env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL='3')
  proc = runtime.BoundPopen([sys.executable, '-m', 'federated.cli', 'worker', f'--port={port}',
                             f'--data_root={data_root}', f'--state_root={state_root}',
                             f'--tls_cert={certs}/silo.pem', f'--tls_key={certs}/silo.key',
                             f'--tls_client_ca={certs}/ca.pem'], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            bound=True)  # gone with this test process, whatever ends it
  for line in proc.stdout:
    if line.startswith('worker: serving'):
      return proc
  raise AssertionError(f'worker on port {port} did not start: {proc.wait()}')


def _stop(proc):
  if proc.poll() is None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@pytest.fixture(scope='module')
def silos(tmp_path_factory, trained_run, certs):
  """Two silos on loopback: silo 0 holds every partition, silo 1 too (placement decides who serves what). The
  data is the shared trained run's, so that run is the local run a remote one is compared with."""
  root = tmp_path_factory.mktemp('remote')
  data = trained_run.data
  ports = [portpicker.pick_unused_port() for _ in range(2)]
  procs = [_worker(p, data, str(root / f'silo{i}'), certs) for i, p in enumerate(ports)]
  yield root, data, ports, procs
  for p in procs:
    _stop(p)


def _setup(data, output, ports, certs, **kw):
  setup = helpers.small_setup(data, output, rounds=3, **kw)  # trained_run's settings, on workers
  setup.cfg = TrainConfig(**{**setup.cfg.__dict__, 'workers': tuple(f'localhost:{p}' for p in ports),
                             'placement': ('NL:1', 'ES:0', 'FR:0', 'US:1'), 'tls_ca': f'{certs}/ca.pem',
                             'tls_cert': f'{certs}/coordinator.pem', 'tls_key': f'{certs}/coordinator.key'})
  return setup


def _record_what_workers_receive(monkeypatch):
  """Every argument the coordinator sends to a worker, with the rows (scenario indices) the worker serves."""
  sent = []
  original = coordinator._Routed._in_thread  # pylint: disable=protected-access

  def recording(self, comp, arg):
    sent.append((self._rows, arg))  # pylint: disable=protected-access
    return original(self, comp, arg)

  monkeypatch.setattr(coordinator._Routed, '_in_thread', recording)  # pylint: disable=protected-access
  return sent


def _personalized_rows(arg):
  """Each personalized group's [K, D] rows in a sent argument (none when it carries no server state)."""
  from tensorflow_federated.python.common_libs import structure  # pylint: disable=g-import-not-at-top
  try:
    groups = structure.to_elements(structure.from_container(arg, recursive=True))[0][1].model.personalized
  except (AttributeError, TypeError, ValueError, IndexError):
    return {}
  return {name: np.asarray(rows) for name, rows in structure.iter_elements(groups)}


def _close_cells(a, b, scenarios):
  for s in scenarios:
    for t in a[s]:
      assert abs(a[s][t]['auc'] - b[s][t]['auc']) < 1e-2, (s, t)
      assert abs(a[s][t]['logloss'] - b[s][t]['logloss']) < 2e-3, (s, t)


def _same_metrics(a, b):
  """Equal up to float summation order: workers' partial sums are merged in the order they finish, so
  the global update differs in the last bits, which rounds of Adam amplify a little; on 120 test rows
  with few positives one swapped pair moves an AUC by ~0.002. The last round's models are compared on
  every cell. Where two rounds tie on valid up to that noise, the two runs may select different rounds:
  the selections' valid scores must then tie too, and the test cells of the scenarios selected at the same
  round are compared."""
  _close_cells(a['last'], b['last'], a['last'])
  assert abs(a['last_mean_auc'] - b['last_mean_auc']) < 3e-3
  same = [s for s in a['test'] if a['selected_round'][s] == b['selected_round'][s]]
  for s in set(a['test']) - set(same):
    score = lambda m: np.nanmean([m['valid'][s][t]['auc'] for t in m['valid'][s]])  # as selection: defined cells
    assert abs(score(a) - score(b)) < 1e-2, (s, 'selected at different rounds without a tie on valid')
  assert len(same) >= len(a['test']) - 1
  _close_cells(a['test'], b['test'], same)


def test_two_workers_over_tls_give_the_local_metrics_and_keep_states_and_rows_home(silos, trained_run, certs,
                                                                                    monkeypatch, capfd):
  root, data, ports, _ = silos
  lines = []
  local = trained_run.metrics
  sent = _record_what_workers_receive(monkeypatch)
  capfd.readouterr()
  remote_result = training.train_in_runtime(_setup(data, str(root / 'remote'), ports, certs), log=lines.append)
  # gRPC logs a corrupted TLS record on file descriptor 2 (and reconnects): a worker forked from this process
  # mid-run caused it (runtime.BoundPopen).
  assert 'BAD_RECORD_MAC' not in capfd.readouterr().err
  _same_metrics(local, remote_result)
  # Each worker received the personalized rows of its own scenarios only (spec order NL, ES, FR, US; worker 0
  # serves ES and FR, worker 1 NL and US): every other row arrived as zeros.
  carried = [(served, _personalized_rows(arg)) for served, arg in sent]
  carried = [(served, groups) for served, groups in carried if groups]
  assert {served for served, _ in carried} == {frozenset({1, 2}), frozenset({0, 3})}
  assert len(carried) >= 2 * 3  # every round's training (and evaluation) call to each worker
  for served, groups in carried:
    assert {'experts', 'tower__ctr', 'tower__ctcvr'} <= set(groups)  # groups keyed as in the state
    for name, rows in groups.items():
      others = [k for k in range(rows.shape[0]) if k not in served]
      assert not rows[others].any(), (name, served)
      assert all(rows[k].any() for k in served), (name, served)
  assert lines[0] == f'placement:\n  worker 0 localhost:{ports[0]}: ES, FR\n  worker 1 localhost:{ports[1]}: NL, US'
  # Each silo holds the local states of its own scenarios only; the coordinator holds none.
  run = worker.run_namespace(str(root / 'remote'))
  assert sorted(os.listdir(root / 'silo0' / 'clients' / run)) == ['ES', 'FR']
  assert sorted(os.listdir(root / 'silo1' / 'clients' / run)) == ['NL', 'US']
  assert not os.path.exists(root / 'remote' / 'clients')
  assert json.load(open(root / 'remote' / 'metrics.json')) == json.loads(json.dumps(remote_result))
  # The models selected on valid were saved, and tested, where each scenario lives.
  for silo, scenario in (('silo0', 'ES'), ('silo1', 'US')):
    kept = [f for f in os.listdir(root / silo / 'clients' / run / scenario) if f.startswith('valid_')]
    assert run_directory.snapshot_name(remote_result['selected_round'][scenario]) in kept
  # The aggregation telemetry comes out of the round on workers too, as in the local runtime.
  here, there = (telemetry.read(os.path.join(r, 'aggregation.jsonl')) for r in (trained_run.run, root / 'remote'))
  assert [r['round'] for r in there] == [1, 2, 3]
  assert np.allclose(here[0]['groups']['experts']['cosine_before'], there[0]['groups']['experts']['cosine_before'],
                     atol=1e-3)


@pytest.mark.slow
def test_killed_worker_is_named_and_resume_finishes(silos, certs):
  root, data, ports, procs = silos
  straight = json.load(open(root / 'remote' / 'metrics.json')) if (root / 'remote').exists() else None
  setup = _setup(data, str(root / 'killed'), ports, certs)
  lines = []

  def log(line):
    lines.append(line)
    if line.startswith('round 1/3'):
      _stop(procs[1])  # worker 1 dies between round 1 and round 2

  with pytest.raises(coordinator.WorkerError, match=rf'round 2: worker 1 \(localhost:{ports[1]}\) failed.*--resume'):
    training.train_in_runtime(setup, log=log)
  procs[1] = _worker(ports[1], data, str(root / 'silo1'), certs)
  setup = _setup(data, str(root / 'killed'), ports, certs, resume=True)
  result = training.train_in_runtime(setup, log=lines.append)
  assert any(l.startswith('resuming') for l in lines)
  if straight:
    _same_metrics(straight, result)
  assert np.isfinite(result['mean_auc'])


@pytest.mark.slow  # 17 s; the TLS run above covers the path, this its errors
def test_wrong_address_and_missing_data_fail_fast(silos, certs, tmp_path):
  root, data, ports, _ = silos
  free = portpicker.pick_unused_port()
  start = time.time()
  with pytest.raises(coordinator.WorkerError, match=rf'worker 1 \(localhost:{free}\) is not reachable'):
    training.train_in_runtime(_setup(data, str(tmp_path / 'a'), [ports[0], free], certs), log=lambda *_: None)
  assert time.time() - start < 30
  partial = str(tmp_path / 'partial')  # a silo that holds only NL's and ES's partitions
  shutil.copytree(data, partial, ignore=shutil.ignore_patterns('FR', 'US'))
  port = portpicker.pick_unused_port()
  proc = _worker(port, partial, str(tmp_path / 'silo'), certs)
  try:
    with pytest.raises(coordinator.WorkerError, match=rf"worker 0 \(localhost:{port}\) has no train partition of "
                       r"scenario 'FR'"):
      training.train_in_runtime(_setup(data, str(tmp_path / 'b'), [port, ports[1]], certs), log=lambda *_: None)
  finally:
    _stop(proc)
  assert not os.path.exists(tmp_path / 'b' / 'checkpoints')


def test_placement_parsing():
  p = coordinator.Placement.parse(['a:1', 'b:2'], [], ['NL', 'ES', 'FR'])
  assert p.scenario_worker == {'NL': 0, 'ES': 0, 'FR': 1}
  with pytest.raises(ValueError, match='not host:port'):
    coordinator.Placement.parse(['a'], [], ['NL'])
  with pytest.raises(ValueError, match='no worker for'):
    coordinator.Placement.parse(['a:1'], ['NL:0'], ['NL', 'ES'])
  with pytest.raises(ValueError, match='worker index in 0..0'):
    coordinator.Placement.parse(['a:1'], ['NL:3'], ['NL'])


def test_own_rows_zeroes_the_other_scenarios_rows_wherever_the_state_sits():
  import collections  # pylint: disable=g-import-not-at-top
  from tensorflow_federated.python.common_libs import structure  # pylint: disable=g-import-not-at-top
  state = collections.OrderedDict(
      model=collections.OrderedDict([('global', [np.ones(3)]),
                                     ('personalized', collections.OrderedDict(experts=np.ones((4, 2))))]),
      aggregator=collections.OrderedDict())
  for arg in ([state, ['NL', 'ES']], structure.Struct.unnamed([state, ['NL', 'ES']], 'merged')):
    out = coordinator._own_rows(arg, frozenset({1, 2}))  # pylint: disable=protected-access
    inner = out if isinstance(arg, list) else out[0]
    assert isinstance(inner, list) and inner[1] == ['NL', 'ES']  # containers kept: TFF wants clients' lists
    assert inner[0]['model']['personalized']['experts'].tolist() == [[0, 0], [1, 1], [1, 1], [0, 0]]
    assert inner[0]['model']['global'][0].tolist() == [1, 1, 1]
  assert state['model']['personalized']['experts'].all()  # the coordinator's own state is untouched
  plain = ['data/train/NL/*.rows']
  assert coordinator._own_rows(plain, frozenset({0})) is plain  # pylint: disable=protected-access
