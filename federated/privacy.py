"""Differential privacy for the global updates, and the privacy it spends.

Each round the global part of every client's update is clipped to L2 norm `dp_clip` and Gaussian noise of
standard deviation `dp_noise_multiplier * dp_clip` is added to their sum (TFF's
`DifferentiallyPrivateFactory.gaussian_fixed`), before the division by the number of clients. Every scenario
takes part in every round, so the guarantee is scenario-level (one client's whole data) without sampling
amplification: the accountant composes one Gaussian mechanism per round.

What this does not cover: the personalized groups, whose aggregation needs each client's own update (the
attention weights compare them), and the example counts and train losses that the round reports.
"""

from __future__ import annotations

import dp_accounting
import tensorflow_federated as tff

from federated.config import AggregationConfig


def enabled(cfg: AggregationConfig) -> bool:
  return cfg.dp_noise_multiplier > 0


def global_factory(cfg: AggregationConfig, num_clients: int) -> tff.aggregators.UnweightedAggregationFactory:
  return tff.aggregators.DifferentiallyPrivateFactory.gaussian_fixed(
      noise_multiplier=cfg.dp_noise_multiplier, clients_per_round=num_clients, clip=cfg.dp_clip)


def epsilon(cfg: AggregationConfig, rounds: int) -> float:
  """Scenario-level epsilon after `rounds` rounds at delta = cfg.dp_delta (RDP accountant)."""
  accountant = dp_accounting.rdp.RdpAccountant()
  accountant.compose(dp_accounting.SelfComposedDpEvent(dp_accounting.GaussianDpEvent(cfg.dp_noise_multiplier),
                                                       rounds))
  return float(accountant.get_epsilon(cfg.dp_delta))
