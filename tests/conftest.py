"""Shared fixtures: real-data location, and TFF workers reaped after every test session."""

import os

import pytest

from federated import runtime

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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
