"""A comparison's finished results, kept apart from its run directories.

A comparison's output folder holds prepared data, checkpoints and Optuna's SQLite study: gigabytes, on the
machine that ran them. What a report needs of a finished run is two small files, and of a search one: a
ledger keeps those (`RESULTS`, relative to the output folder) in a folder that can be committed, so that a
clean checkout on another machine restores them and trains only what is missing. The data is prepared
again from the same configuration (preparation is deterministic), so a restored run pairs with new ones.
"""

from __future__ import annotations

import filecmp
import fnmatch
import glob
import os
import shutil
from typing import List

# A result's key file (its presence says the result is finished) -> the files that go with it.
RESULTS = {'runs/*/seed_*/metrics.json': ('metrics.json', 'rounds.csv'), 'tune/*/tuning.json': ('tuning.json',)}


def _results(root: str) -> List[str]:
  """The finished results under `root`: their folders, relative to it."""
  return sorted(os.path.relpath(os.path.dirname(p), root) for key in RESULTS
                for p in glob.glob(os.path.join(root, key)))


def _members(root: str, folder: str) -> List[str]:
  key = next(k for k in RESULTS if fnmatch.fnmatch(os.path.join(folder, os.path.basename(k)), k))
  return [os.path.join(folder, name) for name in RESULTS[key]]


def _copy(src_root: str, dst_root: str, files: List[str]) -> List[str]:
  for f in files:
    dst = os.path.join(dst_root, f)
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    tmp = f'{dst}.{os.getpid()}.tmp'  # two processes sharing a comparison (--train_seeds) may copy at once
    shutil.copyfile(os.path.join(src_root, f), tmp)
    os.replace(tmp, dst)
  return files


def save(output: str, ledger: str) -> List[str]:
  """Copies the finished results of OUTPUT into LEDGER (new or changed files only); returns what it copied."""
  files = [f for folder in _results(output) for f in _members(output, folder)]
  return _copy(output, ledger, [f for f in files if not os.path.exists(os.path.join(ledger, f))
                                or not filecmp.cmp(os.path.join(output, f), os.path.join(ledger, f), shallow=False)])


def restore(ledger: str, output: str) -> List[str]:
  """Copies into OUTPUT every result of the ledger that OUTPUT has not finished (a killed run's files there
  are replaced as a whole; a finished result there is never touched); returns what it copied."""
  if not os.path.isdir(ledger):
    return []
  missing = [folder for folder in _results(ledger) if not os.path.exists(os.path.join(output, _members(
      ledger, folder)[0]))]
  return _copy(ledger, output, [f for folder in missing for f in _members(ledger, folder)])
