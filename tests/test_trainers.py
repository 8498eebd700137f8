"""Trainers' own parts: the centralized reference's pooled rows."""

import numpy as np
import tensorflow as tf

from federated import trainers


def _datasets(numerical_width):
  out = []
  for k in range(3):
    n = 10 + k
    features = {'categorical': np.arange(n * 2, dtype=np.int64).reshape(n, 2) + 100 * k,
                'numerical': np.ones((n, numerical_width), np.float32)}
    out.append(tf.data.Dataset.from_tensor_slices((features, {'ctr': np.full(n, k, np.float32)})).batch(4))
  return out


def test_pooled_rows_without_numerical_features_do_not_crash():
  """TF 2.14's unbatch of a [B, 0] tensor kills the process (seen with `--algorithm=centralized` on a CSV
  without numerical columns); the pooled rows keep the empty feature's shape."""
  batches = list(trainers.pooled_rows(_datasets(0), batch_size=8, seed=1))
  assert sum(int(l['ctr'].shape[0]) for _, l in batches) == 10 + 11 + 12
  assert all(f['numerical'].shape == (f['categorical'].shape[0], 0) for f, _ in batches)
  rows = np.concatenate([f['categorical'].numpy() for f, _ in batches])
  assert sorted(rows[:, 0] // 100) == [0] * 10 + [1] * 11 + [2] * 12  # every row once, drawn at random


def test_pooled_rows_with_numerical_features_are_the_plain_random_draw():
  parts = _datasets(3)
  want = tf.data.Dataset.sample_from_datasets([d.unbatch() for d in parts], seed=1,
                                              stop_on_empty_dataset=False).batch(8)
  for (f, l), (g, m) in zip(trainers.pooled_rows(parts, batch_size=8, seed=1), want):
    np.testing.assert_array_equal(f['categorical'], g['categorical'])
    np.testing.assert_array_equal(l['ctr'], m['ctr'])
