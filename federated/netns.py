"""A private network for this process: a new user and network namespace holding only loopback.

TFF's `worker_binary` listens on every interface and has no bind-address flag. Started inside a private
network namespace, its port exists only on that namespace's loopback: no other host, and no other process
of this machine, can reach it. Entering needs no privilege where the kernel allows unprivileged user
namespaces (most Linux distributions; some containers and hardened kernels forbid it), and must happen
while the process has a single thread, so before TensorFlow is imported.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import socket
import struct
import threading

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
_SIOCGIFFLAGS, _SIOCSIFFLAGS, _IFF_UP = 0x8913, 0x8914, 0x1
_entered = False


class Unavailable(OSError):
  """This machine or process cannot create a private network namespace; the message says why."""


def entered() -> bool:
  """Whether this process runs in a private network it entered (see enter())."""
  return _entered


def _write(path: str, text: str) -> None:
  with open(path, 'w') as f:
    f.write(text)


def _loopback_up() -> None:
  with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    ifreq = struct.pack('16sH14x', b'lo', 0)
    flags = struct.unpack('16sH14x', fcntl.ioctl(s, _SIOCGIFFLAGS, ifreq))[1]
    fcntl.ioctl(s, _SIOCSIFFLAGS, struct.pack('16sH14x', b'lo', flags | _IFF_UP))


def enter() -> None:
  """Moves this process (and every process it starts later) into a new user and network namespace with
  loopback up; the user id maps to itself, so files keep their owner. Sockets opened before keep their
  own namespace: a listener opened first still accepts from the host's network. Raises Unavailable."""
  global _entered
  if _entered:
    return
  if threading.active_count() > 1 or _threads() > 1:
    raise Unavailable(errno.EINVAL, 'a private network must be entered before any thread starts (before '
                      'TensorFlow is imported)')
  uid, gid = os.getuid(), os.getgid()
  libc = ctypes.CDLL(None, use_errno=True)
  if libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0:
    err = ctypes.get_errno()
    raise Unavailable(err, f'this machine forbids unprivileged network namespaces ({os.strerror(err)})')
  try:
    _write('/proc/self/setgroups', 'deny')
    _write('/proc/self/uid_map', f'{uid} {uid} 1')
    _write('/proc/self/gid_map', f'{gid} {gid} 1')
    _loopback_up()
  except OSError as e:  # already in the new namespaces: there is no way back
    raise RuntimeError(f'entered a private network but could not set it up ({e}); run with '
                       'PFMSMT_PRIVATE_NETWORK=0 to do without it') from e
  _entered = True


def _threads() -> int:
  try:
    return len(os.listdir('/proc/self/task'))
  except OSError:
    return 1


def listeners(pid: int | str = 'self') -> list:
  """(address, port) of every TCP socket listening in the network namespace of process `pid`, from its
  /proc/<pid>/net/tcp and tcp6 (addresses as the kernel writes them, e.g. '0.0.0.0', '::', '127.0.0.1')."""
  out = []
  for name, family in (('tcp', socket.AF_INET), ('tcp6', socket.AF_INET6)):
    try:
      with open(f'/proc/{pid}/net/{name}') as f:
        rows = f.read().splitlines()[1:]
    except OSError:
      continue
    for row in rows:
      local, state = row.split()[1], row.split()[3]
      if state != '0A':  # TCP_LISTEN
        continue
      hex_addr, hex_port = local.split(':')
      raw = bytes.fromhex(hex_addr)
      # The kernel prints each 32-bit word in host (little-endian) order.
      raw = b''.join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
      out.append((socket.inet_ntop(family, raw), int(hex_port, 16)))
  return out


def interfaces(pid: int | str = 'self') -> list:
  """The network interfaces of the namespace of process `pid` (from /proc/<pid>/net/dev)."""
  with open(f'/proc/{pid}/net/dev') as f:
    return [line.split(':')[0].strip() for line in f.read().splitlines()[2:]]
