"""What every benchmark report shares: the machine it ran on, and printing plus writing the report."""

from __future__ import annotations

import os
import platform


def machine(tf_version: str) -> str:
  cpu = next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name')), '?')
  return (f'{cpu}, {os.cpu_count()} CPUs, {platform.platform()}, Python {platform.python_version()}, '
          f'TensorFlow {tf_version}')


def publish(lines, path: str) -> None:
  report = '\n'.join(lines)
  print(report)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'w') as f:
    f.write(report)
