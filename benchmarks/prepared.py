"""What the benchmarks read of a prepared folder without loading TensorFlow: rows per split."""

from __future__ import annotations

import json
import os

SUMMARY_FILE = 'summary.json'  # data_pipelines.spec.SUMMARY_FILE, read here without importing TensorFlow


def split_rows(data: str, split: str = 'train') -> int:
  """Rows kept in `split` over every scenario, from the folder's summary.json."""
  with open(os.path.join(data, SUMMARY_FILE)) as f:
    return sum(p['rows_kept'] for p in json.load(f)['partitions'][split].values())
