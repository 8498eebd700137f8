"""Workers that let no one in: `pfmsmt tls init`, the gate's mutual TLS, the executor in a private network."""

import os
import socket
import ssl
import stat
import subprocess
import sys
import time

import grpc
import portpicker
import pytest
from cryptography import x509

from federated import config as fed_config
from federated import coordinator, netns, tls, worker
from tests.conftest import REPO


@pytest.fixture(scope='module')
def certs(tmp_path_factory):
  """One federation (coordinator, silo1) and a stranger's (another CA's coordinator)."""
  root = tmp_path_factory.mktemp('certs')
  ours = tls.init(str(root / 'ours'), ['coordinator', 'silo1'])
  theirs = tls.init(str(root / 'theirs'), ['coordinator'])
  return {'ours': os.path.dirname(ours['ca']), 'theirs': os.path.dirname(theirs['ca'])}


def _files(folder, name):
  return {k: os.path.join(folder, f'{n}.{ext}') for k, n, ext in (('ca', 'ca', 'pem'), ('cert', name, 'pem'),
                                                                      ('key', name, 'key'))}


def test_tls_init_writes_a_ca_and_certificates_it_signed(certs, tmp_path):
  folder = certs['ours']
  ca = x509.load_pem_x509_certificate(open(os.path.join(folder, 'ca.pem'), 'rb').read())
  for name in ('coordinator', 'silo1'):
    cert = x509.load_pem_x509_certificate(open(os.path.join(folder, f'{name}.pem'), 'rb').read())
    cert.verify_directly_issued_by(ca)  # raises unless the CA signed it
    alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {name, 'localhost'} <= set(alt.get_values_for_type(x509.DNSName))
    assert stat.S_IMODE(os.stat(os.path.join(folder, f'{name}.key')).st_mode) == 0o600
  assert stat.S_IMODE(os.stat(os.path.join(folder, 'ca.key')).st_mode) == 0o600
  with pytest.raises(FileExistsError, match='already holds ca.pem'):
    tls.init(folder, ['silo2'])
  with pytest.raises(ValueError, match='distinct names'):
    tls.init(str(tmp_path / 'x'), ['silo1', 'silo1'])
  with pytest.raises(ValueError, match='not "ca"'):
    tls.init(str(tmp_path / 'x'), ['ca'])


def test_pfmsmt_tls_init_command(tmp_path):
  env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL='3')
  out = subprocess.run([sys.executable, '-m', 'federated.cli', 'tls', 'init', f'--output={tmp_path}/c',
                        '--names=coordinator,silo1', '--hosts=10.1.2.3'], env=env, capture_output=True, text=True)
  assert out.returncode == 0, out.stderr
  assert sorted(os.listdir(tmp_path / 'c')) == ['ca.key', 'ca.pem', 'coordinator.key', 'coordinator.pem',
                                                'silo1.key', 'silo1.pem']
  cert = x509.load_pem_x509_certificate(open(tmp_path / 'c' / 'silo1.pem', 'rb').read())
  alt = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
  assert '10.1.2.3' in {str(ip) for ip in alt.get_values_for_type(x509.IPAddress)}


def test_a_worker_needs_tls_or_says_insecure():
  with pytest.raises(ValueError, match='--insecure serves plain gRPC instead, which lets anyone'):
    fed_config.WorkerConfig(data_root='d')
  with pytest.raises(ValueError, match='go together'):
    fed_config.WorkerConfig(data_root='d', tls_cert='c')
  assert fed_config.WorkerConfig(data_root='d', insecure=True).tls is False
  with pytest.raises(ValueError, match='go together'):
    fed_config.TrainConfig(output='o', workers=('a:1',), tls_ca='ca.pem')


@pytest.fixture(scope='module')
def gate(certs, tmp_path_factory):
  """A gate with its executor, as `pfmsmt worker` starts them, serving an empty home."""
  home = tmp_path_factory.mktemp('home')
  files = _files(certs['ours'], 'silo1')
  cfg = fed_config.WorkerConfig(data_root=str(home), tls_cert=files['cert'], tls_key=files['key'],
                                tls_client_ca=files['ca'])
  listener = worker.listen('', portpicker.pick_unused_port())
  port = listener.getsockname()[1]
  log = home / 'gate.log'
  with open(log, 'w') as stderr:
    proc, report = worker.start_gated(listener, str(home), cfg, stderr=stderr)
  listener.close()
  yield port, proc, report, log
  proc.kill()
  proc.wait()


def _ready(port, credentials, timeout_s=5.0) -> bool:
  channel = (grpc.secure_channel(f'localhost:{port}', credentials) if credentials else
             grpc.insecure_channel(f'localhost:{port}'))
  try:
    grpc.channel_ready_future(channel).result(timeout=timeout_s)
    return True
  except grpc.FutureTimeoutError:
    return False
  finally:
    channel.close()


def _credentials(folder, name, ca_folder):
  files, ca = _files(folder, name), _files(ca_folder, name)['ca']
  return grpc.ssl_channel_credentials(open(ca, 'rb').read(), open(files['key'], 'rb').read(),
                                      open(files['cert'], 'rb').read())


def _refusals(log, n_before):
  deadline = time.time() + 5
  while time.time() < deadline:
    lines = [l for l in open(log).read().splitlines() if 'refused' in l]
    if len(lines) > n_before:
      return lines[n_before:]
    time.sleep(0.1)
  return []


def test_only_a_certificate_of_the_federation_gets_in(certs, gate):
  port, _, _, log = gate
  assert _ready(port, _credentials(certs['ours'], 'coordinator', certs['ours']))
  assert 'accepted' in open(log).read() and '(coordinator)' in open(log).read()
  cases = [(grpc.ssl_channel_credentials(open(_files(certs['ours'], 'x')['ca'], 'rb').read()),
            'no client certificate'),
           (_credentials(certs['theirs'], 'coordinator', certs['ours']), 'CA did not sign'),
           (None, 'not TLS (a plain connection)')]
  for credentials, reason in cases:
    before = open(log).read().count('refused')
    assert not _ready(port, credentials, timeout_s=2.0), reason  # a refused handshake fails at once
    assert any(reason in line for line in _refusals(log, before)), (reason, open(log).read()[-500:])


def test_the_executor_port_is_reachable_from_nowhere(gate):
  port, _, report, _ = gate
  executor_pid, executor_port = report['executor_pid'], report['executor_port']
  host = netns.listeners()
  assert (executor_port not in {p for _, p in host}) == report['confined']  # the report tells the truth
  if not report['confined']:
    pytest.skip(f'this machine forbids network namespaces ({report["why"]}): the executor port stays open, '
                'as the worker\'s start-up line says')
  # Nothing on this machine's network listens on the executor's port, on any address of the host.
  addresses = {'127.0.0.1', '::1'} | {a[4][0] for a in socket.getaddrinfo(socket.gethostname(), None)}
  for address in addresses:
    with pytest.raises(OSError):
      socket.create_connection((address, executor_port), timeout=2).close()
  # Where the executor runs: loopback is the only interface, and its port the only listener.
  assert netns.interfaces(executor_pid) == ['lo']
  assert {p for _, p in netns.listeners(executor_pid)} == {executor_port}
  assert port in {p for _, p in host}  # the TLS endpoint, on the host's network


def test_the_coordinator_keeps_one_channel_per_worker_over_restarts(certs, tmp_path):
  """Three restarts of a worker's gate behind the same port: the coordinator finds it again each time on the
  same channel, and opens no new channel or file."""
  files = _files(certs['ours'], 'silo1')
  cfg = fed_config.WorkerConfig(data_root=str(tmp_path), tls_cert=files['cert'], tls_key=files['key'],
                                tls_client_ca=files['ca'])
  port = portpicker.pick_unused_port()
  ours = _files(certs['ours'], 'coordinator')
  placement = coordinator.Placement.parse(
      [f'localhost:{port}'], [], ['NL'], coordinator.Credentials.from_files(ours['ca'], ours['cert'], ours['key']))
  fds = []
  try:
    for _ in range(4):  # the first start, then 3 restarts
      listener = worker.listen('', port)
      proc, _ = worker.start_gated(listener, str(tmp_path), cfg, stderr=subprocess.DEVNULL)
      listener.close()
      coordinator.check_reachable(placement, timeout_s=10)
      assert coordinator.open_channels() == 1
      fds.append(len(os.listdir('/proc/self/fd')))
      proc.kill()
      proc.wait()
      deadline = time.time() + 10  # the channel notices the closed connection at its next probe
      while not coordinator.unreachable(placement, timeout_s=1) and time.time() < deadline:
        time.sleep(0.2)
      assert coordinator.unreachable(placement, timeout_s=1) == [f'worker 0 (localhost:{port})']
  finally:
    coordinator.close_channels()
  assert max(fds) - min(fds) <= 2, fds  # no growth with restarts


def test_a_command_without_workers_runs_in_a_private_network():
  """What `pfmsmt train` does before TensorFlow loads; TFF's local executor then lives on loopback only."""
  code = ('import sys; from federated import cli, netns; cli.enter_private_network("train", sys.argv[1:]); '
          'print(netns.entered(), netns.interfaces())')
  env = dict(os.environ, PYTHONPATH=REPO)
  out = subprocess.run([sys.executable, '-c', code], env=env, capture_output=True, text=True, cwd=REPO)
  if out.stdout.startswith('False'):
    assert 'forbids' in out.stderr
    pytest.skip(out.stderr.strip())
  assert out.stdout.strip() == "True ['lo']", out.stderr
  remote = subprocess.run([sys.executable, '-c', code, '--workers=h:1'], env=env, capture_output=True, text=True,
                          cwd=REPO)
  assert remote.stdout.startswith('False'), remote.stderr  # a coordinator needs the network


def test_the_gate_demands_a_client_certificate_over_tls_1_2_or_later(certs):
  from federated import gate as gate_lib  # pylint: disable=g-import-not-at-top
  files = _files(certs['ours'], 'silo1')
  ctx = gate_lib.server_context(files['cert'], files['key'], files['ca'])
  assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.minimum_version >= ssl.TLSVersion.TLSv1_2
