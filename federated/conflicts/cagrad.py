"""CAGrad (Liu et al., 2021): every row moves towards the conflict-averse direction around the mean update."""

from __future__ import annotations

import collections

import tensorflow as tf

DESCRIPTION = 'every update moves towards the conflict-averse direction (--cagrad_c, --cagrad_alpha)'


def project_to_simplex(v: tf.Tensor) -> tf.Tensor:
  """Euclidean projection onto {w >= 0, sum w = 1} (sort-based, exact)."""
  k = v.shape[0]
  u = tf.sort(v, direction='DESCENDING')
  css = tf.cumsum(u)
  positions = tf.range(1, k + 1, dtype=v.dtype)
  support = u - (css - 1.0) / positions > 0
  rho = tf.reduce_max(tf.where(support, tf.range(k), -1))
  theta = (tf.gather(css, rho) - 1.0) / tf.cast(rho + 1, v.dtype)
  return tf.maximum(v - theta, 0.0)


def simplex_weights(gram: tf.Tensor, c: float, max_iterations: int, tolerance: float = 1e-12) -> tf.Tensor:
  """The simplex weights w minimising F(w) = w.G m + c sqrt(m.G m) sqrt(w.G w) (m the uniform weights).

  F is convex; projected gradient descent with a backtracking step size, in float64, run until the iterate
  moves less than `tolerance` (or `max_iterations`). K is the number of clients, so each step is tiny.
  """
  g = tf.cast(gram, tf.float64)
  k = g.shape[0]
  g = g / tf.maximum(tf.reduce_max(tf.abs(g)), 1e-30)
  mean_w = tf.fill([k], tf.constant(1.0 / k, tf.float64))
  b = tf.linalg.matvec(g, mean_w)
  beta = c * tf.sqrt(tf.maximum(tf.tensordot(mean_w, b, 1), 0.0))

  def value(w):
    return tf.tensordot(w, b, 1) + beta * tf.sqrt(tf.maximum(tf.tensordot(w, tf.linalg.matvec(g, w), 1), 1e-30))

  def gradient(w):
    gw = tf.linalg.matvec(g, w)
    return b + beta * gw / tf.sqrt(tf.maximum(tf.tensordot(w, gw, 1), 1e-30))

  def step(i, w, lipschitz, moved):
    del moved
    grad, f_w = gradient(w), value(w)

    def too_long(lip, candidate):
      bound = f_w + tf.tensordot(grad, candidate - w, 1) + 0.5 * lip * tf.reduce_sum(tf.square(candidate - w))
      return tf.logical_and(value(candidate) > bound + 1e-15, lip < 1e12)

    lip = lipschitz * 0.5
    candidate = project_to_simplex(w - grad / lip)
    lip, candidate = tf.while_loop(
        too_long, lambda lip, _: (lip * 2.0, project_to_simplex(w - grad / (lip * 2.0))), (lip, candidate))
    return i + 1, candidate, lip, tf.norm(candidate - w)

  _, w, _, _ = tf.while_loop(
      lambda i, w, lip, moved: tf.logical_and(i < max_iterations, moved > tolerance), step,
      (tf.constant(0), mean_w, tf.constant(1.0, tf.float64), tf.constant(1.0, tf.float64)))
  return tf.cast(w, gram.dtype)


def shift(updates: tf.Tensor, c: float, alpha: float, max_iterations: int):
  """Every row moved by alpha (d - g0), with the simplex weights w and |d - g0|.

  g0 is the mean row; w minimises g_w . g0 + c ||g0|| ||g_w|| (g_w = sum_k w_k u_k) over the simplex
  (`simplex_weights`); d = g0 + c ||g0|| / ||g_w|| g_w.
  """
  gram = tf.matmul(updates, updates, transpose_b=True)
  w = simplex_weights(gram, c, max_iterations)
  g0 = tf.reduce_mean(updates, axis=0)
  gw = tf.linalg.matvec(updates, w, transpose_a=True)
  moved = tf.math.divide_no_nan(c * tf.norm(g0), tf.norm(gw)) * gw
  return updates + alpha * moved[tf.newaxis, :], collections.OrderedDict(cagrad_weights=w,
                                                                         cagrad_shift_norm=tf.norm(moved))


def coordinate(updates: tf.Tensor, seed: tf.Tensor, cfg):
  del seed  # deterministic
  return shift(updates, cfg.cagrad_c, cfg.cagrad_alpha, cfg.cagrad_steps)
