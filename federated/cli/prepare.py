"""pfmsmt prepare: turns a dataset's source files into scenario partitions (see data_pipelines/prepare.py)."""

from __future__ import annotations

import sys

from absl import flags

from data_pipelines import config as config_lib
from data_pipelines import flagconfig
from federated.cli import common

flagconfig.define_flags(config_lib.PrepareConfig, __name__)


def main() -> None:
  from data_pipelines import prepare as prepare_lib  # pylint: disable=g-import-not-at-top
  cfg = flagconfig.from_flags(config_lib.PrepareConfig, flags.FLAGS)
  summary = prepare_lib.prepare(cfg)
  print(prepare_lib.format_summary(summary))
  print(f'wrote {cfg.output} in {summary["seconds"]} s (spec.json, summary.json, shards of fixed-width rows)')


def run(argv) -> None:
  # No TensorFlow: prepare writes its records with numpy (data_pipelines/records.py), and importing it took
  # longer than preparing 300,000 rows, with 600 MiB of memory.
  common.run_app(main, argv, sys.modules[__name__], tensorflow=False)
