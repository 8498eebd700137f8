"""Shared fixtures: real-data location, one small finished run, and TFF workers reaped after the session."""

import os
import types

import pytest

from federated import runtime

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The tests' models are small, and TensorFlow's BFC allocator (runtime.EXECUTOR_ENV) costs small models time
# (README, "Training"); the executors' environment is tested with whatever value this leaves.
os.environ.setdefault('TF_CPU_ALLOCATOR_USE_BFC', 'false')
SHARED_DATA = os.path.normpath(os.path.join(REPO, '..', 'shared', 'data'))


def shared_data(*parts: str) -> str:
  """Path under ../shared/data; the calling test is skipped when it is absent."""
  path = os.path.join(SHARED_DATA, *parts)
  if not os.path.exists(path):
    pytest.skip(f'real data not available at {path}')
  return path


@pytest.fixture(scope='session', autouse=True)
def _reap_tff_workers():
  runtime.install_shutdown_hooks()
  yield
  runtime.shutdown_workers()


@pytest.fixture(scope='session')
def trained_run(tmp_path_factory):
  """One small PF-MSMTrec run (synthetic data of 800 rows per scenario, 3 rounds, valid evaluated every round),
  shared read-only by the tests of what a finished run holds; a test that writes into it works on a copy."""
  from data_pipelines import prepare  # pylint: disable=g-import-not-at-top
  from data_pipelines.config import PrepareConfig  # pylint: disable=g-import-not-at-top
  from federated import training  # pylint: disable=g-import-not-at-top
  from tests import helpers  # pylint: disable=g-import-not-at-top
  root = tmp_path_factory.mktemp('trained')
  data, run = str(root / 'data'), str(root / 'run')
  prepare.prepare(PrepareConfig(output=data, rows_per_scenario=800), log=lambda *_: None)
  metrics = training.train_in_runtime(helpers.small_setup(data, run, rounds=3), log=lambda *_: None)
  return types.SimpleNamespace(root=root, data=data, run=run, metrics=metrics)


@pytest.fixture(scope='session')
def finished_run(trained_run):
  """`trained_run` read back (restore.FinishedRun: its process built once); evaluate it inside
  `runtime.local_runtime()`."""
  from federated import restore  # pylint: disable=g-import-not-at-top
  with runtime.local_runtime():
    return restore.FinishedRun(trained_run.run)
