"""Wiring the kubelet API into the node agent: its serving certificate and
a factory the Agent calls once its pod informer runs.

Serving certificate: signed by the cluster CA when the agent can read the CA
key (the agent inside `k8py server`, or any agent given the server's TLS
folder), else self-signed (the API server does not check it, as upstream by
default). Clients must present a certificate from the cluster CA.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
from pathlib import Path

from k8py.apimachinery import certs as pki_mod
from k8py.kubelet.server import KubeletServer

log = logging.getLogger("k8py.kubelet.serving")


def ensure_serving_cert(cert_dir: Path, node_name: str, addresses: list[str],
                        ca_dir: Path | None = None) -> tuple[Path, Path]:
    """(cert, key) paths for the kubelet API, reissued when the names change."""
    cert_dir = Path(cert_dir)
    cert_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    cert_path, key_path = cert_dir / "serving-kubelet.crt", cert_dir / "serving-kubelet.key"
    sans = sorted({node_name, "localhost", "127.0.0.1", *[a for a in addresses if a]})
    wanted = ",".join(sans)
    marker = cert_dir / "serving-kubelet.sans"
    ca = pki_mod.pki_paths(ca_dir) if ca_dir else None
    signed_by_ca = ca is not None and ca.ca_key.exists() and ca.ca_cert.exists()
    if cert_path.exists() and key_path.exists() and marker.exists() and \
            marker.read_text() == wanted + (":ca" if signed_by_ca else ":self"):
        return cert_path, key_path
    if signed_by_ca:
        cert, key = pki_mod.issue_serving_cert(ca, node_name, sans)
    else:
        log.info("no cluster CA key here: the kubelet API uses a self-signed certificate")
        cert, key = _self_signed(node_name, sans)
    pki_mod.write_atomic(key_path, key, 0o600)
    pki_mod.write_atomic(cert_path, cert, 0o644)
    marker.write_text(wanted + (":ca" if signed_by_ca else ":self"))
    return cert_path, key_path


def _self_signed(node_name: str, sans: list[str]) -> tuple[bytes, bytes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{node_name}@kubelet")])
    names = []
    for san in sans:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(san)))
        except ValueError:
            names.append(x509.DNSName(san))
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def server_factory(cert_dir: Path, *, ca_dir: Path | None = None, client_ca_file: Path | None = None,
                   bind_address: str | None = None, port: int | None = None):
    """For Agent(server_factory=...): builds the KubeletServer once the agent
    knows its node name, address, runtime and pod informer.

    port: None uses the agent's kubelet_port (10250 by default).
    client_ca_file: the cluster CA certificate; callers must present a client
    certificate it signed (the API server does). None: no client check (tests).
    """
    def build(agent) -> KubeletServer:
        cfg = agent.config
        node_ip = getattr(cfg, "node_ip", None) or "127.0.0.1"
        cert, key = ensure_serving_cert(cert_dir, cfg.node_name, [node_ip], ca_dir)

        def pods_lookup(namespace: str, name: str) -> dict | None:
            informer = getattr(agent, "informer", None)
            return informer.get(f"{namespace}/{name}") if informer is not None else None

        pods_lookup.list = lambda: list(agent.informer.list()) if getattr(agent, "informer", None) else []
        server = KubeletServer(agent.runtime, pods_lookup, cert, key, cfg.kubelet_port if port is None else port,
                               bind_address=bind_address or node_ip, client_ca_file=client_ca_file,
                               node_name=cfg.node_name)
        server.stats.data_dir = str(cfg.data_dir)      # the node's filesystem figures are this one's
        if client_ca_file:       # callers are known by certificate: RBAC decides what each may do
            from k8py.kubelet.authz import SubjectAccessReviewer
            server.authorizer = SubjectAccessReviewer(agent.client, cfg.node_name)
        return server
    return build
