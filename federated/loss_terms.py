"""Client loss terms an algorithm adds to the mean task loss, one function each with one signature.

    term(context: LossContext, cfg: ClientConfig) -> scalar tf.Tensor, or None when the term is off

Terms are evaluated inside the client's training step (federated/client_work.py), so they see the model's
current weights and the values the client received at the start of the round.
"""

from __future__ import annotations

import dataclasses
from typing import Dict, List

import tensorflow as tf

from federated.config import ClientConfig


@dataclasses.dataclass
class LossContext:
  weights: List[tf.Variable]  # the model's weights, in model.weights order
  layout: 'object'  # federated.layout.ModelLayout
  received_global: List[tf.Tensor]  # the global values received this round, in layout.global_idx order
  received_groups: Dict[str, tf.Tensor]  # each personalized group's received flat vector


def squared_distance(a: List, b: List) -> tf.Tensor:
  return tf.add_n([tf.reduce_sum(tf.square(x - y)) for x, y in zip(a, b)]) if a else tf.constant(0.0)


def personalization_regularizer(ctx: LossContext, cfg: ClientConfig):
  """(lambda/2) ||theta_P - theta_P received||^2 over the personalized groups (ALGORITHM.md, --reg_lambda)."""
  if cfg.reg_lambda <= 0 or not ctx.layout.group_idx:
    return None
  return 0.5 * cfg.reg_lambda * tf.add_n([
      tf.reduce_sum(tf.square(ctx.layout.flatten_group(k, ctx.weights) - ctx.received_groups[k]))
      for k in ctx.layout.group_idx])


def proximal(ctx: LossContext, cfg: ClientConfig):
  """FedProx: (mu/2) ||w - w received||^2 over the global parameters (--prox_mu)."""
  if cfg.prox_mu <= 0 or not ctx.layout.global_idx:
    return None
  return 0.5 * cfg.prox_mu * squared_distance([ctx.weights[i] for i in ctx.layout.global_idx], ctx.received_global)
