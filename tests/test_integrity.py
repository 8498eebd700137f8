"""Prepared data proves its integrity: shard sizes, rows and checksums recorded, checked before a run."""

import json
import os
import shutil

import pytest

from data_pipelines import integrity, prepare
from data_pipelines.config import PrepareConfig
from data_pipelines.errors import InputError
from federated import training
from tests import helpers


@pytest.fixture(scope='module')
def prepared(tmp_path_factory):
  out = str(tmp_path_factory.mktemp('integrity') / 'data')
  summary = prepare.prepare(PrepareConfig(output=out, rows_per_scenario=200), log=lambda *_: None)
  return out, summary


def _copy(prepared, tmp_path):
  data = str(tmp_path / 'data')
  shutil.copytree(prepared[0], data)
  with open(os.path.join(data, 'summary.json')) as f:
    shards = json.load(f)['shards']
  return data, os.path.join(data, sorted(shards)[0])


def test_prepare_records_every_shard(prepared):
  data, summary = prepared
  shards = summary['shards']
  listed = [p for parts in summary['partitions'].values() for part in parts.values() for p in part['shards']]
  assert sorted(listed) == sorted(shards)
  for split, parts in summary['partitions'].items():
    for scenario, part in parts.items():
      assert sum(shards[p]['rows'] for p in part['shards']) == part['rows_kept'], (split, scenario)
  for rel, record in shards.items():
    assert os.path.getsize(os.path.join(data, rel)) == record['bytes'] and len(record['sha256']) == 64
  assert integrity.verify(data) == len(shards)


def test_a_short_shard_is_named_even_without_checksums(prepared, tmp_path):
  data, shard = _copy(prepared, tmp_path)
  with open(shard, 'r+b') as f:
    f.truncate(os.path.getsize(shard) - 7)
  for checksums in (True, False):
    with pytest.raises(InputError, match=rf'shard {shard} has [\d,]+ bytes, [\d,]+ were written.*pfmsmt prepare '
                       r'--dataset=synthetic --output=.* --overwrite'):
      integrity.verify(data, checksums=checksums)


def _flip_a_byte(shard: str) -> None:
  """One byte inverted in place: the size stays, the checksum does not."""
  with open(shard, 'r+b') as f:
    f.seek(20)
    byte = f.read(1)
    f.seek(20)
    f.write(bytes([byte[0] ^ 0xFF]))


def test_a_changed_shard_fails_its_checksum(prepared, tmp_path):
  data, shard = _copy(prepared, tmp_path)
  _flip_a_byte(shard)
  with pytest.raises(InputError, match='has changed since it was written.*--verify_data=false skips'):
    integrity.verify(data)
  assert integrity.verify(data, checksums=False) > 0  # the size is right


def test_a_shard_changed_after_a_check_is_hashed_again(prepared, tmp_path):
  """Checks reuse a shard's hash while its size and modification time stay (a comparison's runs read the same
  data); a later change is still seen."""
  data, shard = _copy(prepared, tmp_path)
  assert integrity.verify(data) > 0
  _flip_a_byte(shard)
  with pytest.raises(InputError, match='has changed since it was written'):
    integrity.verify(data)


def test_missing_shards_and_old_folders(prepared, tmp_path):
  data, shard = _copy(prepared, tmp_path)
  os.remove(shard)
  with pytest.raises(InputError, match='is missing'):
    integrity.verify(data)
  assert integrity.verify(data, present_only=True) == len(prepared[1]['shards']) - 1  # a worker's partial copy
  summary_path = os.path.join(data, 'summary.json')
  summary = json.load(open(summary_path))
  del summary['shards']
  json.dump(summary, open(summary_path, 'w'))
  notes = []
  assert integrity.verify(data, log=notes.append) == 0 and 'records no shard checksums' in notes[0]


def test_train_stops_before_the_first_round(prepared, tmp_path):
  data, shard = _copy(prepared, tmp_path)
  with open(shard, 'r+b') as f:
    f.truncate(10)
  with pytest.raises(InputError, match=f'shard {shard} has 10 bytes'):
    training.train(helpers.small_setup(data, str(tmp_path / 'run')), log=lambda *_: None)
  assert not os.path.exists(tmp_path / 'run' / 'rounds.csv')


@pytest.mark.slow
def test_unverified_damage_stops_the_round_with_its_cause_in_one_line(prepared, tmp_path):
  from federated import runtime  # pylint: disable=g-import-not-at-top
  data, _ = _copy(prepared, tmp_path)
  shard = os.path.join(data, sorted(p for p in prepared[1]['shards'] if p.startswith('train/'))[0])
  with open(shard, 'r+b') as f:  # same size, changed bytes: only the checksum, skipped here, would see it
    f.seek(os.path.getsize(shard) // 2)
    f.write(b'\xff' * 64)
  setup = helpers.small_setup(data, str(tmp_path / 'run'), algorithm='fedavg', rounds=1, verify_data=False)
  with pytest.raises(runtime.ComputationError, match=r'^round 1: a client computation failed: .*record'):
    training.train_in_runtime(setup, log=lambda *_: None)
