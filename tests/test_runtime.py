"""TFF workers never outlive the command that started them."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import tensorflow as tf
import tensorflow_federated as tff

from federated import runtime
from tests.conftest import REPO


@tff.tensorflow.computation(tf.int32)
def _plus_one(x):
  return x + 1


def test_workers_stopped_after_the_block_and_on_error():
  with runtime.local_runtime():
    assert _plus_one(1) == 2
    assert len(runtime.worker_processes()) == 1
  assert runtime.worker_processes() == []
  with pytest.raises(RuntimeError, match='boom'):
    with runtime.local_runtime():
      _plus_one(2)
      raise RuntimeError('boom')
  assert runtime.worker_processes() == []


@pytest.fixture
def executor_env_kept():
  """Restores runtime.EXECUTOR_ENV, which `use_model_size` (and so every `train`) changes."""
  saved = dict(runtime.EXECUTOR_ENV)
  yield
  runtime.EXECUTOR_ENV.clear()
  runtime.EXECUTOR_ENV.update(saved)


def test_small_models_get_malloc_and_large_ones_bfc(executor_env_kept):
  del executor_env_kept
  assert runtime.use_model_size(80_000) == 'small'
  env = runtime.executor_env({})
  assert env['TF_CPU_ALLOCATOR_USE_BFC'] == 'false' and env['MALLOC_MMAP_MAX_'] == '0'
  assert 'MALLOC_ARENA_MAX' not in env and 'GLIBC_TUNABLES' not in env
  assert runtime.use_model_size(runtime.LARGE_MODEL_PARAMS) == 'large'
  assert runtime.LARGE_MODEL_ENV.items() <= runtime.executor_env({}).items()


def test_executors_get_more_inter_op_threads_than_the_calls_they_run_at_once():
  per_call = runtime.INTEROP_PER_CALL
  assert runtime.executor_env({})['TF_NUM_INTEROP_THREADS'] == str(per_call * runtime.MAX_CONCURRENT_CALLS)
  args = ['worker_binary', '--port=1', '--max_concurrent_computation_calls=5']
  assert runtime.executor_env({}, args)['TF_NUM_INTEROP_THREADS'] == str(per_call * 5)
  unbounded = ['worker_binary', '--max_concurrent_computation_calls=-1']
  assert runtime.executor_env({}, unbounded)['TF_NUM_INTEROP_THREADS'] == str(per_call * runtime.MAX_CONCURRENT_CALLS)
  assert runtime.executor_env({'TF_NUM_INTEROP_THREADS': '3'}, args)['TF_NUM_INTEROP_THREADS'] == '3'


def test_executors_get_the_runtime_environment_unless_it_is_set(executor_env_kept):
  del executor_env_kept
  runtime.use_model_size(runtime.LARGE_MODEL_PARAMS)
  assert runtime.executor_env({})['TF_CPU_ALLOCATOR_USE_BFC'] == 'true'
  assert runtime.executor_env({'TF_CPU_ALLOCATOR_USE_BFC': 'false'})['TF_CPU_ALLOCATOR_USE_BFC'] == 'false'
  with runtime.local_runtime():
    assert _plus_one(3) == 4
    (pid,) = runtime.worker_processes()
    with open(f'/proc/{pid}/environ', 'rb') as f:
      env = dict(e.split(b'=', 1) for e in f.read().split(b'\0') if b'=' in e)
  assert env[b'TF_CPU_ALLOCATOR_USE_BFC'] == os.environ['TF_CPU_ALLOCATOR_USE_BFC'].encode()
  for key in ('MALLOC_ARENA_MAX', 'MALLOC_MMAP_MAX_', 'MALLOC_TRIM_THRESHOLD_', 'GLIBC_TUNABLES'):
    assert env[key.encode()] == os.environ.get(key, runtime.EXECUTOR_ENV[key]).encode(), key


_CHILD = textwrap.dedent('''
    import sys, time
    import tensorflow as tf, tensorflow_federated as tff
    from federated import runtime
    comp = tff.tensorflow.computation(lambda x: x + 1, tf.int32)
    with runtime.local_runtime():
      print('result', comp(1), flush=True)
      if sys.argv[1] == 'error':
        raise SystemExit('failing on purpose')
      print('waiting', flush=True)
      time.sleep(600)
''')


def _run_child(mode: str):
  env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL='3')
  return subprocess.Popen([sys.executable, '-c', _CHILD, mode], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          env=env, cwd=REPO)


@pytest.mark.parametrize('mode', ['error', pytest.param('sigterm', marks=pytest.mark.slow), 'sigkill'])  # sigterm: 12 s
def test_stdout_pipe_closes_when_the_parent_ends(mode):
  """An orphaned worker would keep the pipe open and `communicate` would time out."""
  child = _run_child(mode)
  if mode in ('sigterm', 'sigkill'):
    lines = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
      line = child.stdout.readline().decode()
      lines.append(line)
      if 'waiting' in line or not line:
        break
    assert any('waiting' in l for l in lines), lines
    child.send_signal(signal.SIGTERM if mode == 'sigterm' else signal.SIGKILL)
  out, _ = child.communicate(timeout=60)
  assert child.returncode != 0
  assert b'failing on purpose' in out or mode != 'error'
  assert b'Exception ignored' not in out  # TFF's service manager let go before the interpreter's teardown


def test_a_failed_computation_is_reduced_to_its_cause():
  dump = ('<_InactiveRpcError of RPC that terminated with:\n\tstatus = StatusCode.INTERNAL\n\tdetails = "Failed to run '
          "computation: truncated record at 2986' failed with Read less bytes than requested\n\t [[{{function_node "
          '__inference_run_6755}}{{node ReduceDataset}}]] while evaluating local [_ezg66] in block locals [_ezg1]"\n>')
  assert runtime.computation_cause(RuntimeError(dump)) == (
      "truncated record at 2986' failed with Read less bytes than requested")
  assert runtime.computation_cause(ValueError('something else')) is None
  assert issubclass(runtime.ComputationError, RuntimeError)


def test_workers_are_started_without_forking_this_process(monkeypatch):
  """A preexec_fn makes Python fork() the whole process (gRPC threads, open TLS channels); started that way
  mid-run, a worker corrupted the coordinator's TLS streams, and a worker's gate aborted in gRPC's fork handler
  (ev_epoll1_linux: next_worker->state == KICKED). setpriv sets the death signal instead, for any bound child."""
  seen = {}
  monkeypatch.setattr(subprocess.Popen, '__init__', lambda self, args, **kw: seen.update(args=args, kw=kw))
  runtime.BoundPopen(['taskset', '-c', '0', '/x/worker_binary', '--port=1'])
  setpriv = runtime._SETPRIV  # pylint: disable=protected-access
  if setpriv:
    assert seen['args'] == [setpriv, '--pdeathsig', 'TERM', '--', 'taskset', '-c', '0', '/x/worker_binary', '--port=1']
    assert 'preexec_fn' not in seen['kw']
  else:
    assert seen['kw']['preexec_fn'] is runtime.die_with_parent
  runtime.BoundPopen(['ls'])
  assert seen['args'] == ['ls'] and 'preexec_fn' not in seen['kw']
  runtime.BoundPopen(['python3', '-m', 'federated.gate'], bound=True)
  if setpriv:
    assert seen['args'] == [setpriv, '--pdeathsig', 'TERM', '--', 'python3', '-m', 'federated.gate']
    assert 'preexec_fn' not in seen['kw']
  else:
    assert seen['kw']['preexec_fn'] is runtime.die_with_parent


class _Stop(Exception):
  pass


def test_train_gives_its_executors_the_settings_for_its_model_size(tmp_path, monkeypatch, executor_env_kept):
  del executor_env_kept
  from data_pipelines import prepare  # pylint: disable=g-import-not-at-top
  from data_pipelines.config import PrepareConfig  # pylint: disable=g-import-not-at-top
  from federated import training  # pylint: disable=g-import-not-at-top
  from tests import helpers  # pylint: disable=g-import-not-at-top
  data = str(tmp_path / 'data')
  prepare.prepare(PrepareConfig(output=data, rows_per_scenario=300), log=lambda *_: None)
  runtime.use_model_size(runtime.LARGE_MODEL_PARAMS)

  def no_training(*args, **kwargs):
    raise _Stop  # the settings are chosen before the trainer is built, which is enough to check

  monkeypatch.setattr(training.trainers_lib, 'build_trainer', no_training)
  with pytest.raises(_Stop):
    training.train(helpers.small_setup(data, str(tmp_path / 'run')), log=lambda *_: None)
  assert runtime.EXECUTOR_ENV == runtime.SMALL_MODEL_ENV
