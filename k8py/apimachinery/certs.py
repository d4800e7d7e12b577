"""Certificate helpers shared by the API server's PKI and the kubelet: the cluster
CA's file layout, signing a leaf certificate with it, writing key material safely.

(They lived in apiserver/pki.py; the kubelet issues its serving certificate with
them, and components do not import each other.)
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LEAF_VALIDITY = datetime.timedelta(days=365)
# Certificates are back-dated a little so that a client whose clock is
# slightly behind does not see them as "not yet valid".
BACKDATE = datetime.timedelta(hours=1)

GeneralName = x509.DNSName | x509.IPAddress


@dataclass
class PKI:
    ca_cert: Path
    ca_key: Path
    server_cert: Path
    server_key: Path
    admin_cert: Path
    admin_key: Path
    dir: Path


def pki_paths(tls_dir: Path) -> PKI:
    tls_dir = Path(tls_dir)
    return PKI(ca_cert=tls_dir / "server-ca.crt", ca_key=tls_dir / "server-ca.key",
               server_cert=tls_dir / "serving-kube-apiserver.crt",
               server_key=tls_dir / "serving-kube-apiserver.key",
               admin_cert=tls_dir / "client-admin.crt", admin_key=tls_dir / "client-admin.key",
               dir=tls_dir)


def issue_serving_cert(pki: PKI, common_name: str, sans: Iterable[str]) -> tuple[bytes, bytes]:
    """A serving certificate (PEM cert, PEM key) for names and IPs in sans,
    signed by the cluster CA: node kubelets serve their API with one."""
    ca_cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = sign_leaf(key, (ca_cert, ca_key), subject_name(common_name), ExtendedKeyUsageOID.SERVER_AUTH,
                      {general_name(n) for n in sans})
    return cert.public_bytes(serialization.Encoding.PEM), key_pem(key)


def general_name(name: str) -> GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name.lower())


def subject_name(common_name: str, organizations: Iterable[str] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def sign_leaf(key, ca, subject: x509.Name, usage, sans: set[GeneralName]) -> x509.Certificate:
    ca_cert, ca_key = ca
    now = utc_now()
    builder = (x509.CertificateBuilder()
               .subject_name(subject).issuer_name(ca_cert.subject)
               .public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - BACKDATE)
               .not_valid_after(min(now + LEAF_VALIDITY, ca_cert.not_valid_after_utc))
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False,
                                            content_commitment=False, data_encipherment=False,
                                            key_agreement=False, key_cert_sign=False, crl_sign=False,
                                            encipher_only=False, decipher_only=False), critical=True)
               .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
               .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                              critical=False))
    if sans:
        # Sorted so that the certificate is the same whatever the set order.
        ordered = sorted(sans, key=lambda n: (isinstance(n, x509.IPAddress), str(n.value)))
        builder = builder.add_extension(x509.SubjectAlternativeName(ordered), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write via a temporary file and rename, so a crash never leaves half a
    key; the file has its final mode before it holds any secret."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
