"""Wall time and peak memory of a command and every process it starts (TFF's worker_binary children included)."""

from __future__ import annotations

import collections
import dataclasses
import glob
import subprocess
import threading
import time
from typing import Dict, Sequence


@dataclasses.dataclass
class Measured:
  seconds: float
  peak_total_mib: float  # the largest sum over the whole tree at one sample
  peak_by_process: Dict[str, float]  # 'name pid' -> that process's own peak RSS, MiB
  output: str = ''

  def peak_of(self, prefix: str) -> float:
    """The largest peak among processes whose name starts with prefix (0 when none ran)."""
    return max((v for k, v in self.peak_by_process.items() if k.startswith(prefix)), default=0.0)


def tree_rss_kib(pid: int) -> Dict[str, int]:
  """RSS in KiB of a process and all its descendants, from /proc, keyed 'name pid'."""
  found, todo = {}, [pid]
  while todo:
    p = todo.pop()
    try:
      with open(f'/proc/{p}/comm') as f:
        name = f.read().strip()
      with open(f'/proc/{p}/status') as f:
        found[f'{name} {p}'] = next((int(l.split()[1]) for l in f if l.startswith('VmRSS:')), 0)
      for children in glob.glob(f'/proc/{p}/task/*/children'):
        with open(children) as f:
          todo += [int(c) for c in f.read().split()]
    except (OSError, ValueError):  # the process ended while it was read
      continue
  return found


def run(cmd: Sequence[str], env=None, cwd=None, interval_s: float = 0.2) -> Measured:
  """Runs cmd to its end, sampling the tree's memory; raises with the command's last output if it fails."""
  start = time.perf_counter()
  with subprocess.Popen(list(cmd), env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                        text=True) as proc:
    lines = collections.deque(maxlen=200)
    # drained in a thread, so that a full pipe never blocks the command
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    total, by_process = 0, {}
    while proc.poll() is None:
      sample = tree_rss_kib(proc.pid)
      total = max(total, sum(sample.values()))
      for k, v in sample.items():
        by_process[k] = max(by_process.get(k, 0), v)
      time.sleep(interval_s)
    reader.join()
  seconds = time.perf_counter() - start
  output = ''.join(lines)
  if proc.returncode:
    raise RuntimeError(f'{" ".join(cmd)} failed ({proc.returncode}):\n{output[-3000:]}')
  return Measured(seconds, total / 1024, {k: v / 1024 for k, v in by_process.items()}, output)
