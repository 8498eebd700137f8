"""A worker's only door: a mutual-TLS endpoint in front of TFF's executor, which runs in a private network.

`pfmsmt worker` opens the listening socket on the host and starts this module as a process of its own
(`python -m federated.gate`), handing it that socket. The gate then enters a private network namespace
(federated/netns.py), starts `worker_binary` there, where its port exists only on the namespace's
loopback, and relays each connection that completes a TLS handshake with a client certificate signed by
--client_ca to it; every other connection is refused and the refusal logged with its reason. TFF's
executor service has no authentication of its own: anyone who reaches it can run any TensorFlow graph, so
the executor port must never be reachable, and the relay is the one way in.

Where the kernel forbids the namespace, the executor listens on the host's network (all interfaces, a
random port): the start-up line says so, and `pfmsmt worker` refuses to go on without --insecure.
"""

from __future__ import annotations

import argparse
import json
import select
import socket
import ssl
import sys
import threading
import time

from federated import netns

CONNECT_TIMEOUT_S = 30.0
HANDSHAKE_TIMEOUT_S = 10.0
MAX_CONNECTIONS = 32  # a coordinator holds one channel (one connection) per worker; the rest wait or are refused
_CHUNK = 1 << 16

_REASONS = (  # OpenSSL's reason -> what it means at this door
    ('PEER_DID_NOT_RETURN_A_CERTIFICATE', 'no client certificate'),
    ('CERTIFICATE_REQUIRED', 'no client certificate'),
    ('UNKNOWN_CA', 'a certificate this worker\'s CA did not sign'),
    ('CERTIFICATE_VERIFY_FAILED', 'a certificate this worker\'s CA did not sign'),
    ('HTTP_REQUEST', 'not TLS (a plain connection)'),
    ('WRONG_VERSION_NUMBER', 'not TLS (a plain connection)'),
    ('UNEXPECTED_RECORD', 'not TLS (a plain connection)'),
    ('PACKET_LENGTH_TOO_LONG', 'not TLS (a plain connection)'),
)


def refusal_reason(error: BaseException) -> str:
  text = f'{getattr(error, "reason", "") or ""} {error}'
  return next((why for key, why in _REASONS if key in text), f'handshake failed ({text.strip()})')


def server_context(cert: str, key: str, client_ca: str) -> ssl.SSLContext:
  """TLS 1.2+ server context that demands a client certificate signed by client_ca; ALPN h2 for gRPC."""
  ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
  ctx.minimum_version = ssl.TLSVersion.TLSv1_2
  ctx.load_cert_chain(cert, key)
  ctx.load_verify_locations(client_ca)
  ctx.verify_mode = ssl.CERT_REQUIRED
  ctx.set_alpn_protocols(['h2'])
  return ctx


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def _wait_listening(port: int, proc) -> None:
  deadline = time.monotonic() + CONNECT_TIMEOUT_S
  while time.monotonic() < deadline:
    if proc.poll() is not None:
      raise RuntimeError(f'worker_binary exited with {proc.returncode} before listening')
    try:
      socket.create_connection(('127.0.0.1', port), timeout=1).close()
      return
    except OSError:
      time.sleep(0.1)
  raise RuntimeError(f'worker_binary did not listen on port {port} within {CONNECT_TIMEOUT_S:.0f} s')


def _pump(outer: ssl.SSLSocket, inner: socket.socket) -> BaseException | None:
  """Copies bytes both ways until either side closes; returns the error that ended it, if one did. TLS may
  hold decrypted bytes that select cannot see, so those are read first."""
  try:
    while True:
      ready = [outer] if outer.pending() else select.select([outer, inner], [], [])[0]
      for src in ready:
        data = src.recv(_CHUNK)
        if not data:
          return None
        (inner if src is outer else outer).sendall(data)
  except (OSError, ValueError) as e:
    return e
  finally:
    for s in (outer, inner):
      try:
        s.close()
      except OSError:
        pass


class Gate:
  """Accepts on `listener`; relays every connection that passes `context`'s handshake to the executor."""

  def __init__(self, listener: socket.socket, executor_port: int, context: ssl.SSLContext, log):
    self._listener, self._port, self._context, self._log = listener, executor_port, context, log
    self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)

  def _serve_one(self, conn: socket.socket, peer) -> None:
    try:
      self._relay(conn, f'{peer[0]}:{peer[1]}')
    finally:
      self._slots.release()

  def _relay(self, conn: socket.socket, where: str) -> None:
    conn.settimeout(HANDSHAKE_TIMEOUT_S)
    try:
      conn = self._context.wrap_socket(conn, server_side=True)
    except (ssl.SSLError, OSError) as e:
      self._log(f'gate: refused {where}: {refusal_reason(e)}')
      conn.close()
      return
    conn.settimeout(None)
    subject = dict(x[0] for x in conn.getpeercert().get('subject', ()))
    self._log(f'gate: accepted {where} ({subject.get("commonName", "?")})')
    try:
      inner = socket.create_connection(('127.0.0.1', self._port))
    except OSError as e:
      self._log(f'gate: executor unreachable for {where}: {e}')
      conn.close()
      return
    for s in (conn, inner):
      s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    error = _pump(conn, inner)
    if isinstance(error, ssl.SSLError):  # a reset or a closed peer is the end of a call; this is not
      self._log(f'gate: connection from {where} ended by a TLS error: {error}')

  def serve_forever(self) -> None:
    while True:
      conn, peer = self._listener.accept()
      if not self._slots.acquire(blocking=False):
        self._log(f'gate: refused {peer[0]}:{peer[1]}: {MAX_CONNECTIONS} connections already open')
        conn.close()
        continue
      threading.Thread(target=self._serve_one, args=(conn, peer), daemon=True).start()


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument('--listen_fd', type=int, required=True)
  p.add_argument('--home', required=True)
  p.add_argument('--binary', required=True)
  p.add_argument('--cert', required=True)
  p.add_argument('--key', required=True)
  p.add_argument('--client_ca', required=True)
  p.add_argument('--max_message_mb', type=int, required=True)
  p.add_argument('--max_concurrent_calls', type=int, required=True)
  args = p.parse_args(argv)
  listener = socket.socket(fileno=args.listen_fd)
  try:
    netns.enter()  # before any thread: the executor below then lives on this namespace's loopback only
    confined, why = True, ''
  except netns.Unavailable as e:
    confined, why = False, str(e.strerror)
  context = server_context(args.cert, args.key, args.client_ca)
  port = _free_port()
  from federated import runtime  # pylint: disable=g-import-not-at-top  (after enter(): no thread before it)
  proc = runtime.BoundPopen([args.binary, f'--port={port}',
                             f'--grpc_max_message_length_megabytes={args.max_message_mb}',
                             f'--max_concurrent_computation_calls={args.max_concurrent_calls}'], cwd=args.home)
  try:
    _wait_listening(port, proc)
    print(json.dumps({'executor_pid': proc.pid, 'executor_port': port, 'confined': confined, 'why': why}),
          flush=True)
    Gate(listener, port, context, lambda line: print(line, file=sys.stderr, flush=True)).serve_forever()
  except KeyboardInterrupt:
    return 0
  finally:
    if proc.poll() is None:
      proc.kill()
  return 0


if __name__ == '__main__':
  sys.exit(main())
