"""Faults: a client update with NaN or Inf, a kill between or during rounds, a disk that cannot hold the run."""

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from data_pipelines import integrity, prepare, records
from data_pipelines import spec as spec_lib
from data_pipelines.config import PrepareConfig
from federated import run_directory, trainers, training
from federated.config import AggregationConfig
from tests import helpers
from tests.conftest import REPO


@pytest.fixture(scope='module')
def data(tmp_path_factory):
  out = str(tmp_path_factory.mktemp('faults') / 'data')
  prepare.prepare(PrepareConfig(output=out, rows_per_scenario=600), log=lambda *_: None)
  return out


@pytest.fixture(scope='module')
def corrupted(data, tmp_path_factory):
  """The same data, except that NL's train rows hold NaN numericals (as a corrupted partition would)."""
  out = str(tmp_path_factory.mktemp('corrupted') / 'data')
  shutil.copytree(data, out)
  spec = spec_lib.load_spec(out)
  folder = os.path.join(out, 'train', spec.scenario('NL').directory)
  for f in glob.glob(os.path.join(folder, records.SHARD_GLOB)):
    os.remove(f)
  n = 100
  rows = records.pack(records.spec_record_dtype(spec), np.ones((n, len(spec.categorical)), np.int32),
                      np.full((n, len(spec.numerical)), np.nan, np.float32),
                      np.zeros((n, len(spec.tasks)), np.float32), np.zeros((n, len(spec.tasks)), np.float32))
  writer = records.ShardWriter(folder, 1000)
  writer.write(rows)
  writer.close()
  # Rows that are valid records holding NaN: the shards are recorded as written (their integrity is not the point).
  summary_path = os.path.join(out, spec_lib.SUMMARY_FILE)
  summary = json.load(open(summary_path))
  summary[integrity.SHARDS] = {rel: v for rel, v in summary[integrity.SHARDS].items()
                               if not rel.startswith(os.path.relpath(folder, out))}
  summary[integrity.SHARDS].update(integrity.describe_shards(
      out, {os.path.relpath(p, out): n for p, n in zip(writer.shards, writer.rows)}))
  json.dump(summary, open(summary_path, 'w'))
  return out


def test_a_nan_update_is_rejected_and_the_others_aggregated(corrupted, tmp_path):
  lines = []
  result = training.train_in_runtime(helpers.small_setup(corrupted, str(tmp_path / 'run'), rounds=2), log=lines.append)
  warnings = [l for l in lines if l.startswith('warning:')]
  assert len(warnings) == 2 and 'round 1: rejected the update of scenario(s) NL (NaN or Inf)' in warnings[0]
  assert 'aggregated the other 3' in warnings[0] and 'round 2:' in warnings[1]
  # The shared model stayed finite: the other scenarios evaluate to finite, sensible AUCs.
  for s in ('ES', 'FR', 'US'):
    for t in ('ctr', 'ctcvr'):
      assert 0 < result['test'][s][t]['auc'] < 1 and np.isfinite(result['test'][s][t]['logloss'])
  rows = open(tmp_path / 'run' / 'rounds.csv').read().splitlines()
  header = rows[0].split(',')
  assert all(r.split(',')[header.index('rejected')] == 'NL' for r in rows[1:])
  assert all(np.isfinite(float(r.split(',')[header.index('loss_ctr')])) for r in rows[1:])


def test_strict_stops_before_saving_the_round(corrupted, tmp_path):
  setup = helpers.small_setup(corrupted, str(tmp_path / 'run'), rounds=2)
  setup.aggregation_cfg = AggregationConfig(strict=True)
  with pytest.raises(training.NonFiniteUpdateError, match=r'round 1: the update of scenario\(s\) NL holds NaN or '
                     r'Inf; stopped \(--strict\).*last checkpoint is round 0'):
    training.train_in_runtime(setup, log=lambda *_: None)
  assert not glob.glob(str(tmp_path / 'run' / 'checkpoints' / '*'))


def test_not_enough_disk_space_fails_before_training(data, tmp_path):
  model_fn = trainers.make_model_fn(helpers.small_setup(data, str(tmp_path)), spec_lib.load_spec(data))
  with pytest.raises(OSError, match=r'not enough free disk space for the run directory .*MiB needed, 1 MiB free'):
    run_directory.check_disk_space(str(tmp_path), model_fn, 4, free_bytes=lambda _: 2**20)
  run_directory.check_disk_space(str(tmp_path), model_fn, 4)  # this machine has room


def _train(*args):
  env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL='3')
  return subprocess.Popen([sys.executable, '-m', 'federated.cli', 'train', *args], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, env=env, cwd=REPO, text=True)


@pytest.mark.slow
def test_killed_between_and_during_rounds_resumes_to_the_same_metrics(data, tmp_path):
  common = [f'--data={data}', '--rounds=3', '--eval_every=3', '--embedding_dim=4', '--expert_units=8',
            '--tower_units=4', '--batch_size=128']
  straight = _train(*common, f'--output={tmp_path / "straight"}')
  out, _ = straight.communicate(timeout=600)
  assert straight.returncode == 0, out
  run = tmp_path / 'killed'
  # 1. Between rounds: right after round 1 is reported (and checkpointed).
  killed = _train(*common, f'--output={run}')
  for line in killed.stdout:
    if line.startswith('round 1/3'):
      killed.send_signal(signal.SIGKILL)
      break
  killed.communicate(timeout=60)
  assert killed.returncode == -signal.SIGKILL and not os.path.exists(run / 'metrics.json')
  # 2. During a round: once a client has written its round-2 state, before the server saves round 2.
  started = time.time()
  resumed = _train(*common, f'--output={run}', '--resume')
  deadline = started + 300

  def written_by_the_resumed_run():  # the killed run may have written some round-2 states already
    return [f for f in glob.glob(str(run / 'clients' / '*' / 'round_00002.state')) if os.path.getmtime(f) > started]

  while not written_by_the_resumed_run():
    assert time.time() < deadline and resumed.poll() is None
    time.sleep(0.02)
  resumed.send_signal(signal.SIGKILL)
  out, _ = resumed.communicate(timeout=60)
  assert resumed.returncode == -signal.SIGKILL and 'resuming' in out and 'round 2/3' not in out
  assert not os.path.exists(run / 'metrics.json')
  # 3. Resume to the end: no completed round lost or repeated, and the same metrics as the straight run.
  final = _train(*common, f'--output={run}', '--resume')
  out, _ = final.communicate(timeout=600)
  assert final.returncode == 0, out
  assert 'round 1/3' not in out and 'round 2/3' in out
  a = json.load(open(tmp_path / 'straight' / 'metrics.json'))
  b = json.load(open(run / 'metrics.json'))
  for s in a['test']:
    for t in ('ctr', 'ctcvr'):
      assert abs(a['test'][s][t]['auc'] - b['test'][s][t]['auc']) < 1e-5
      assert abs(a['test'][s][t]['logloss'] - b['test'][s][t]['logloss']) < 1e-5
  rows = open(run / 'rounds.csv').read().splitlines()
  assert [r.split(',')[0] for r in rows[1:]] == ['1', '2', '3']
