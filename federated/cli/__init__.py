"""`pfmsmt SUBCOMMAND [--flags]`: one absl app per subcommand, each defining only its own flags."""

from __future__ import annotations

import importlib
import os
import sys

SUBCOMMANDS = {
    'prepare': ('federated.cli.prepare', 'Source files -> per-scenario partitions of fixed-width rows, spec and summary.'),
    'train': ('federated.cli.train', 'Federated (or centralized) training into a run directory.'),
    'algorithms': ('federated.cli.algorithms', 'Every algorithm: family, one-line description, parameter roles.'),
    'describe': ('federated.cli.describe', 'Parameters per template role and group, bytes per client per round.'),
    'evaluate': ('federated.cli.evaluate', 'Re-evaluates a run\'s selected models, on its data or other prepared data.'),
    'inspect': ('federated.cli.inspect', 'What the aggregator did per round: summary, attention heatmaps, conflicts.'),
    'tune': ('federated.cli.tune', 'Searches an algorithm\'s settings on valid with a fixed budget; writes a flagfile.'),
    'compare': ('federated.cli.compare', 'Algorithms x seeds under the same settings: report.md/.csv and plots.'),
    'export': ('federated.cli.export', 'One SavedModel per scenario for TF Serving, raw features in.'),
    'worker': ('federated.cli.worker', 'Serves TFF computations for this silo\'s scenarios (pfmsmt train --workers).'),
    'tls': ('federated.cli.tls', '`tls init`: a CA and a certificate per silo and the coordinator (mutual TLS).'),
}


def usage() -> str:
  lines = ['usage: pfmsmt SUBCOMMAND [--flags]   (pfmsmt SUBCOMMAND --help lists its flags)', '', 'subcommands:']
  lines += [f'  {name:<10} {text}' for name, (_, text) in SUBCOMMANDS.items()]
  return '\n'.join(lines)


NETWORK_ENV = 'PFMSMT_PRIVATE_NETWORK'  # 0: run without the private network (for debugging)
_RUNTIME = ('train', 'evaluate', 'compare', 'tune')  # the subcommands that start TFF's local executor


def _given(argv, flag: str) -> bool:
  """Whether `--flag=VALUE` (non-empty) is among argv or in a --flagfile it names."""
  lines = list(argv)
  for a in argv:
    if a.startswith('--flagfile='):
      try:
        with open(a.split('=', 1)[1]) as f:
          lines += f.read().split()
      except OSError:
        pass  # absl names the missing file
  return any((a.startswith(f'--{flag}=') and a.split('=', 1)[1]) or (a == f'--{flag}' and i + 1 < len(lines))
             for i, a in enumerate(lines))  # --flag=VALUE or --flag VALUE


def enter_private_network(name: str, argv) -> None:
  """A subcommand that needs no network runs in a private one (federated/netns.py): TFF's local executor,
  which listens on every interface without authentication, is then reachable from nowhere. Not the worker
  (its gate does this for its executor) nor a train or compare on --workers."""
  if name == 'worker' or _given(argv, 'workers') or os.environ.get(NETWORK_ENV) == '0':
    return
  from federated import netns  # pylint: disable=g-import-not-at-top  (no TensorFlow: still one thread)
  try:
    netns.enter()
  except netns.Unavailable as e:
    if name in _RUNTIME:
      print(f'note: {e.strerror}: TFF\'s local executor listens on a random port of every interface, without '
            'authentication, while this command runs', file=sys.stderr)


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
  enter_private_network(name, argv[2:])
  module = importlib.import_module(SUBCOMMANDS[name][0])
  module.run([f'pfmsmt {name}'] + argv[2:])


if __name__ == '__main__':
  main()
