"""`pfmsmt SUBCOMMAND [--flags]`: one absl app per subcommand, each defining only its own flags."""

from __future__ import annotations

import importlib
import os
import sys

SUBCOMMANDS = {
    'prepare': ('federated.cli.prepare', 'Source files -> per-scenario TFRecord partitions, spec and summary.'),
    'train': ('federated.cli.train', 'Federated (or centralized) training into a run directory.'),
    'algorithms': ('federated.cli.algorithms', 'Every algorithm: family, one-line description, parameter roles.'),
    'describe': ('federated.cli.describe', 'Parameters per template role and group, bytes per client per round.'),
    'evaluate': ('federated.cli.evaluate', 'Re-evaluates a run\'s selected models, on its data or other prepared data.'),
    'inspect': ('federated.cli.inspect', 'What the aggregator did per round: summary, attention heatmaps, conflicts.'),
    'tune': ('federated.cli.tune', 'Searches an algorithm\'s settings on valid with a fixed budget; writes a flagfile.'),
    'compare': ('federated.cli.compare', 'Algorithms x seeds under the same settings: report.md/.csv and plots.'),
    'export': ('federated.cli.export', 'One SavedModel per scenario for TF Serving, raw features in.'),
    'worker': ('federated.cli.worker', 'Serves TFF computations for this silo\'s scenarios (pfmsmt train --workers).'),
}


def usage() -> str:
  lines = ['usage: pfmsmt SUBCOMMAND [--flags]   (pfmsmt SUBCOMMAND --help lists its flags)', '', 'subcommands:']
  lines += [f'  {name:<10} {text}' for name, (_, text) in SUBCOMMANDS.items()]
  return '\n'.join(lines)


def main(argv=None) -> None:
  argv = list(sys.argv if argv is None else argv)
  if len(argv) < 2 or argv[1] in ('-h', '--help', 'help'):
    print(usage())
    sys.exit(0 if len(argv) >= 2 else 2)
  name = argv[1]
  if name not in SUBCOMMANDS:
    print(f'pfmsmt: unknown subcommand {name!r}\n\n{usage()}', file=sys.stderr)
    sys.exit(2)
  os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')  # before any TensorFlow import: keep C++ start-up noise out
  module = importlib.import_module(SUBCOMMANDS[name][0])
  module.run([f'pfmsmt {name}'] + argv[2:])


if __name__ == '__main__':
  main()
