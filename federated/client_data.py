"""The prepared partitions as TFF's `ClientData`, one client per scenario (for users of tff.simulation)."""

from __future__ import annotations

from typing import Dict

import tensorflow_federated as tff

from data_pipelines import spec as spec_lib
from data_pipelines.config import PipelineConfig
from data_pipelines.pipeline import dataset_from_pattern, partition_pattern


def make_client_data(data_dir: str, spec: spec_lib.DatasetSpec, split: str,
                     cfg: PipelineConfig = PipelineConfig()) -> tff.simulation.datasets.ClientData:
  """One client per scenario. Each client's dataset is built from its shard pattern, a string, so TFF
  serializes a path into its computations, never rows, and a remote worker reads the files where they lie."""
  patterns: Dict[str, str] = {s: partition_pattern(data_dir, spec, split, s) for s in spec.scenario_names}
  return tff.simulation.datasets.FilePerUserClientData(
      patterns, lambda pattern: dataset_from_pattern(pattern, spec, cfg))
