"""Prepared data that proves its integrity: each shard's size, row count and SHA-256, checked before use.

`prepare` records them in summary.json (`shards`: relative path -> {bytes, rows, sha256}). `verify` compares
the files with the record before a run touches them: sizes always (a stat per file), checksums unless
`checksums=False` (one read of the data). A shard cut short (a full disk, an interrupted copy) or changed
stops the command with one line naming the file and how to rebuild it, instead of failing mid-round inside
TensorFlow's reader.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Dict, Iterable, List, Optional, Tuple

from data_pipelines import spec as spec_lib
from data_pipelines.errors import InputError

SHARDS = 'shards'
_CHUNK = 1 << 20
# Hashes computed in this process, by absolute path: (size, modification time in ns, SHA-256). The runs of a
# comparison read the same shards, so each is hashed once, again only when its size or time changes.
_HASHED: Dict[str, Tuple[int, int, str]] = {}


def sha256(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, 'rb') as f:
    for block in iter(lambda: f.read(_CHUNK), b''):
      digest.update(block)
  return digest.hexdigest()


def _sha256_once(path: str) -> str:
  stat = os.stat(path)
  key = os.path.abspath(path)
  known = _HASHED.get(key)
  if known is None or known[:2] != (stat.st_size, stat.st_mtime_ns):
    known = (stat.st_size, stat.st_mtime_ns, sha256(path))
    _HASHED[key] = known
  return known[2]


def describe_shards(root: str, rows: Dict[str, int], digests: Optional[Dict[str, str]] = None) -> Dict[str, dict]:
  """{relative path: {bytes, rows, sha256}} of the shards written under `root` (`rows` by relative path);
  `digests` gives the SHA-256 of those whose writer hashed them (records.ShardWriter), the rest are read."""
  digests = digests or {}
  return {rel: {'bytes': os.path.getsize(os.path.join(root, rel)), 'rows': n,
                'sha256': digests.get(rel) or sha256(os.path.join(root, rel))} for rel, n in sorted(rows.items())}


def rebuild_command(data_dir: str, summary: dict) -> str:
  cfg = summary.get('config', {})
  parts = ['pfmsmt prepare', f'--dataset={cfg.get("dataset", "?")}']
  if cfg.get('input'):
    parts.append(f'--input={cfg["input"]}')
  parts += [f'--output={data_dir}', '--overwrite']
  return ' '.join(parts) + ' (with the other settings recorded in its summary.json "config")'


def verify(data_dir: str, checksums: bool = True, splits: Optional[Iterable[str]] = None,
           present_only: bool = False, log=print) -> int:
  """Checks the recorded shards of `data_dir` (of `splits`, default all); returns how many were checked.

  `present_only`: check only the shards that are there (a worker holds its own scenarios' partitions).
  Raises InputError naming the first missing, short or changed shard.
  """
  path = os.path.join(data_dir, spec_lib.SUMMARY_FILE)
  if not os.path.exists(path):
    raise InputError(f'{data_dir} has no {spec_lib.SUMMARY_FILE}: it is not a prepared data folder')
  with open(path) as f:
    summary = json.load(f)
  recorded = summary.get(SHARDS)
  if recorded is None:
    log(f'note: {data_dir} records no shard checksums (prepared before they existed); not verified')
    return 0
  wanted = set(splits) if splits is not None else None
  checked: List[str] = []
  for rel, expected in recorded.items():
    if wanted is not None and rel.split('/')[0] not in wanted:
      continue
    full = os.path.join(data_dir, rel)
    problem, skippable = None, False
    if not os.path.exists(full):
      if present_only:
        continue
      problem = 'is missing'
    elif os.path.getsize(full) != expected['bytes']:
      problem = f'has {os.path.getsize(full):,} bytes, {expected["bytes"]:,} were written'
    elif checksums and _sha256_once(full) != expected['sha256']:
      problem, skippable = 'has changed since it was written (its SHA-256 differs)', True
    if problem:
      raise InputError(f'shard {full} {problem}: the prepared data is damaged; rebuild it with '
                       f'`{rebuild_command(data_dir, summary)}`'
                       + ('; --verify_data=false skips the checksums' if skippable else ''))
    checked.append(rel)
  return len(checked)
