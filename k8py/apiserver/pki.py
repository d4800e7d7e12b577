"""The cluster's certificates: a CA, the API serving certificate, the admin
client certificate, and the server-side TLS context.

Like k3s, the server makes its own PKI on first start and keeps it in
`<data-dir>/server/tls` under k3s's file names. k3s has separate server and
client CAs; k8py uses one CA for both roles (`server-ca.crt`), which is what
the kubeconfig's certificate-authority-data and client-certificate checks
both refer to.

Keys are ECDSA P-256 (as k3s): small, and fast to generate and to sign with.
Leaf certificates last a year and, as in k3s, are renewed on start when they
have less than 90 days left; the CA lasts ten years and is never replaced
automatically.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_VALIDITY = datetime.timedelta(days=3650)
LEAF_VALIDITY = datetime.timedelta(days=365)
RENEW_BEFORE = datetime.timedelta(days=90)
# Certificates are back-dated a little so that a client whose clock is
# slightly behind does not see them as "not yet valid".
BACKDATE = datetime.timedelta(hours=1)

ADMIN_USER = "system:admin"
ADMIN_GROUP = "system:masters"
DEFAULT_SERVICE_CIDR = "10.43.0.0/16"

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


def ensure_pki(tls_dir: Path, extra_sans: Iterable[str] = (), *,
               service_cidr: str = DEFAULT_SERVICE_CIDR) -> PKI:
    """Create what is missing under tls_dir and reuse the rest.

    A new CA invalidates every leaf. The serving certificate is reissued when
    a wanted SAN is missing from it (a new --tls-san, a new hostname), and any
    leaf close to expiry is renewed.
    """
    wanted_sans = serving_sans(extra_sans, service_cidr)  # bad input fails before any write
    pki = pki_paths(tls_dir)
    pki.dir.mkdir(parents=True, exist_ok=True, mode=0o700)

    # An old CA is kept even near expiry: replacing it would silently cut off
    # every client holding a certificate it signed (k3s rotates CAs only on
    # request, too). A certificate whose key is missing or is not its own (a
    # crash between the two writes) counts as missing.
    ca = _load_pair(pki.ca_cert, pki.ca_key)
    if ca is None:
        ca = _create_ca(pki)
    ca_cert = ca[0]

    serving = _load_pair(pki.server_cert, pki.server_key)
    if not _usable_leaf(serving, ca_cert) or not wanted_sans <= _sans_of(serving[0]):
        _write_leaf(pki.server_cert, pki.server_key, ca,
                    _name("kube-apiserver"), ExtendedKeyUsageOID.SERVER_AUTH, wanted_sans)

    admin = _load_pair(pki.admin_cert, pki.admin_key)
    if not _usable_leaf(admin, ca_cert):
        _write_leaf(pki.admin_cert, pki.admin_key, ca,
                    _name(ADMIN_USER, [ADMIN_GROUP]), ExtendedKeyUsageOID.CLIENT_AUTH, set())
    return pki


def issue_client_cert(pki: PKI, common_name: str, organizations: Iterable[str] = ()) -> tuple[bytes, bytes]:
    """A client certificate (PEM cert, PEM key) for user common_name in the
    groups organizations, signed by the cluster CA (kubelets, agents, ...)."""
    ca_cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _sign_leaf(key, (ca_cert, ca_key), _name(common_name, organizations),
                      ExtendedKeyUsageOID.CLIENT_AUTH, set())
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def ensure_client_cert(pki: PKI, file_stem: str, common_name: str,
                       organizations: Iterable[str] = ()) -> tuple[Path, Path]:
    """The files (cert, key) of a client certificate kept under the PKI folder as
    <file_stem>.crt/.key: reused while usable and for the same subject, else issued anew.
    The components `k8py server` runs each authenticate with one of these."""
    cert_path, key_path = pki.dir / f"{file_stem}.crt", pki.dir / f"{file_stem}.key"
    ca_cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    subject = _name(common_name, organizations)
    pair = _load_pair(cert_path, key_path)
    if not _usable_leaf(pair, ca_cert) or pair[0].subject != subject:
        ca = (ca_cert, serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None))
        _write_leaf(cert_path, key_path, ca, subject, ExtendedKeyUsageOID.CLIENT_AUTH, set())
    return cert_path, key_path


def issue_serving_cert(pki: PKI, common_name: str, sans: Iterable[str]) -> tuple[bytes, bytes]:
    """A serving certificate (PEM cert, PEM key) for names and IPs in sans,
    signed by the cluster CA: node kubelets serve their API with one."""
    ca_cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _sign_leaf(key, (ca_cert, ca_key), _name(common_name), ExtendedKeyUsageOID.SERVER_AUTH,
                      {_general_name(n) for n in sans})
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def ssl_context(pki: PKI) -> ssl.SSLContext:
    """The API server's TLS context.

    Client certificates are asked for but optional (Go's
    VerifyClientCertIfGiven, as kube-apiserver): a certificate that is
    presented must chain to the cluster CA or the handshake fails, and a
    client without one can still authenticate with a bearer token.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(pki.server_cert, pki.server_key)
    ctx.load_verify_locations(cafile=pki.ca_cert)
    ctx.verify_mode = ssl.CERT_OPTIONAL
    # aiohttp speaks HTTP/1.1 only; offering h2 would make Go clients use it.
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def serving_sans(extra_sans: Iterable[str] = (), service_cidr: str = DEFAULT_SERVICE_CIDR) -> set[GeneralName]:
    """The names the API serving certificate must carry."""
    service_ip = next(ipaddress.ip_network(service_cidr, strict=False).hosts())
    names = ["127.0.0.1", "localhost", socket.gethostname(), "kubernetes", "kubernetes.default",
             "kubernetes.default.svc", "kubernetes.default.svc.cluster.local", str(service_ip),
             *extra_sans]
    return {_general_name(name) for name in names if name}


def _general_name(name: str) -> GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name.lower())


def _name(common_name: str, organizations: Iterable[str] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _load_pair(cert_path: Path, key_path: Path):
    """(certificate, private key) when both files exist and belong together."""
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None
    if cert.public_key() != key.public_key():
        return None
    return cert, key


def _expiring(cert: x509.Certificate) -> bool:
    return cert.not_valid_after_utc - _now() < RENEW_BEFORE


def _usable_leaf(pair, ca_cert: x509.Certificate) -> bool:
    if pair is None or _expiring(pair[0]):
        return False
    cert = pair[0]
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):  # another issuer, or a bad signature
        return False
    return True


def _sans_of(cert: x509.Certificate) -> set[GeneralName]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return set()
    return {name for name in ext.value if isinstance(name, (x509.DNSName, x509.IPAddress))}


def _create_ca(pki: PKI):
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    name = _name(f"k8py-server-ca@{int(now.timestamp())}")
    public = key.public_key()
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - BACKDATE).not_valid_after(now + CA_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(key, hashes.SHA256()))
    # Key first: a cert without its key is treated as missing on next start.
    write_atomic(pki.ca_key, _key_pem(key), 0o600)
    write_atomic(pki.ca_cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert, key


def _sign_leaf(key, ca, subject: x509.Name, usage, sans: set[GeneralName]) -> x509.Certificate:
    ca_cert, ca_key = ca
    now = _now()
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


def _write_leaf(cert_path: Path, key_path: Path, ca, subject, usage, sans) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _sign_leaf(key, ca, subject, usage, sans)
    write_atomic(key_path, _key_pem(key), 0o600)
    write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def _key_pem(key) -> bytes:
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


FRONT_PROXY_USER = "system:auth-proxy"


def front_proxy_certificate(tls_dir: Path) -> tuple[str, str]:
    """The client certificate the aggregator shows backends (k3s: client-auth-proxy.crt).

    Backends trust the X-Remote-* identity headers only from this certificate
    (requestheader-allowed-names in kube-system/extension-apiserver-authentication).
    It is signed by the cluster CA; upstream uses a separate front-proxy CA.
    """
    pki = pki_paths(tls_dir)
    cert, key = pki.dir / "client-auth-proxy.crt", pki.dir / "client-auth-proxy.key"
    ca_cert = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    if not _usable_leaf(_load_pair(cert, key), ca_cert):
        ca = (ca_cert, serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None))
        _write_leaf(cert, key, ca, _name(FRONT_PROXY_USER), ExtendedKeyUsageOID.CLIENT_AUTH, set())
    return str(cert), str(key)
