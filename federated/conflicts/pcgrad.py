"""PCGrad (Yu et al., 2020): each row loses its component along every other row it conflicts with."""

from __future__ import annotations

import collections

import tensorflow as tf

DESCRIPTION = 'each update loses its component along every update it conflicts with (negative inner product)'
_EPS = 1e-12


def project(updates: tf.Tensor, seed: tf.Tensor):
  """The projected rows, the number of projections and the norm each row lost.

  For each k and each j != k in a pseudo-random order fixed by `seed`: if <u_k, u_j> < 0 then
  u_k <- u_k - <u_k, u_j> / ||u_j||^2 u_j, against the original u_j.
  """
  k_static = updates.shape[0]
  order = tf.random.experimental.stateless_shuffle(tf.range(k_static), seed=tf.stack([seed, 17]))
  sq_norms = tf.reduce_sum(updates * updates, axis=1)
  rows = []
  projections = tf.constant(0, tf.int32)
  for k in range(k_static):
    u = updates[k]
    for p in range(k_static):
      j = order[p]
      other = tf.gather(updates, j)
      dot = tf.reduce_sum(u * other)
      project_now = tf.logical_and(tf.logical_and(tf.not_equal(j, k), dot < 0), tf.gather(sq_norms, j) > _EPS)
      u = tf.where(project_now, u - dot / tf.maximum(tf.gather(sq_norms, j), _EPS) * other, u)
      projections += tf.cast(project_now, tf.int32)
    rows.append(u)
  out = tf.stack(rows)
  return out, collections.OrderedDict(pcgrad_projections=projections,
                                      pcgrad_removed_norm=tf.norm(updates - out, axis=1))


def coordinate(updates: tf.Tensor, seed: tf.Tensor, cfg=None):
  del cfg  # PCGrad has no setting
  return project(updates, seed)
