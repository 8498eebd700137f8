"""Certificates for mutual TLS between a coordinator and its workers: a small CA and one key pair per name.

`pfmsmt tls init --output=DIR --names=coordinator,silo1,silo2` writes DIR/ca.pem (the certificate every
party trusts), DIR/ca.key (keep it offline: whoever holds it can admit new parties), and DIR/<name>.pem
with DIR/<name>.key for each name. Every certificate can serve and can connect (a worker is a TLS server,
the coordinator its client), and names `localhost`, 127.0.0.1 and ::1 besides its own name and --hosts,
so that the address the coordinator dials matches. The cryptography is the `cryptography` library's.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
from typing import Dict, Sequence

CA = 'ca'
_NAME = re.compile(r'^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$')
LOOPBACK_NAMES = ('localhost', '127.0.0.1', '::1')


def _alt_names(names: Sequence[str]):
  from cryptography import x509  # pylint: disable=g-import-not-at-top
  out = []
  for n in dict.fromkeys(names):
    try:
      out.append(x509.IPAddress(ipaddress.ip_address(n)))
    except ValueError:
      out.append(x509.DNSName(n))
  return out


def _key():
  from cryptography.hazmat.primitives.asymmetric import ec  # pylint: disable=g-import-not-at-top
  return ec.generate_private_key(ec.SECP256R1())


def _write(path: str, data: bytes, private: bool) -> None:
  fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
  with os.fdopen(fd, 'wb') as f:
    f.write(data)


def _pem(key) -> bytes:
  from cryptography.hazmat.primitives import serialization  # pylint: disable=g-import-not-at-top
  return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                           serialization.NoEncryption())


def init(output: str, names: Sequence[str], hosts: Sequence[str] = (), days: int = 365,
         overwrite: bool = False) -> Dict[str, str]:
  """A CA and a certificate per name under `output`; returns name -> certificate path (the CA under 'ca')."""
  from cryptography import x509  # pylint: disable=g-import-not-at-top
  from cryptography.hazmat.primitives import hashes, serialization  # pylint: disable=g-import-not-at-top,g-multiple-import
  from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # pylint: disable=g-import-not-at-top
  names = [n.strip() for n in names if n.strip()]
  bad = [n for n in names if not _NAME.match(n) or n == CA]
  if not names or bad or len(set(names)) != len(names):
    raise ValueError(f'--names needs distinct names of letters, digits, ".", "_" or "-" (not "{CA}"), got '
                     f'{list(names)}')
  os.makedirs(output, exist_ok=True)
  taken = [p for n in [CA, *names] for p in (f'{n}.pem', f'{n}.key') if os.path.exists(os.path.join(output, p))]
  if taken and not overwrite:
    raise FileExistsError(f'{output} already holds {", ".join(taken)}: choose another --output or --overwrite')
  now = datetime.datetime.now(datetime.timezone.utc)
  ca_key = _key()
  ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'pfmsmt federation CA')])
  ca_cert = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
             .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
             .not_valid_after(now + datetime.timedelta(days=days))
             .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
             .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                          data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                          crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
             .sign(ca_key, hashes.SHA256()))
  written = {CA: os.path.join(output, f'{CA}.pem')}
  _write(os.path.join(output, f'{CA}.key'), _pem(ca_key), private=True)
  _write(written[CA], ca_cert.public_bytes(serialization.Encoding.PEM), private=False)
  for name in names:
    key = _key()
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(_alt_names([name, *hosts, *LOOPBACK_NAMES])), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    _write(os.path.join(output, f'{name}.key'), _pem(key), private=True)
    written[name] = os.path.join(output, f'{name}.pem')
    _write(written[name], cert.public_bytes(serialization.Encoding.PEM), private=False)
  return written


def read(path: str, flag: str) -> bytes:
  """A PEM file's bytes, or an error that names the flag and the file."""
  try:
    with open(path, 'rb') as f:
      data = f.read()
  except OSError as e:
    raise FileNotFoundError(f'--{flag}: cannot read {path}: {e.strerror}') from None
  if b'-----BEGIN' not in data:
    raise ValueError(f'--{flag}: {path} is not a PEM file')
  return data
