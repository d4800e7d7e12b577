"""Client certificates obtained through CertificateSigningRequests, kept and renewed.

As client-go's util/certificate manager (what the kubelet's TLS bootstrap and
client-certificate rotation use): a key and certificate pair is kept in
`<dir>/<name>.key|.crt`; when there is none (or it is expired, or names
another subject) a new ECDSA key is made and a CSR for the wanted subject
and signer is created and waited for (Approved and issued, or refused:
Denied/Failed). While it runs, the certificate is renewed through a new CSR
at a jittered 70-90% of its lifetime, and the clients using it load the new
pair for their next connections.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import hashlib
import logging
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from k8py.client.rest import ApiError, Client

log = logging.getLogger("k8py.client.certificates")

CSR_API = ("certificates.k8s.io/v1", "certificatesigningrequests")
KUBELET_CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client-kubelet"
CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client"
CLIENT_USAGES = ["digital signature", "client auth"]       # ECDSA keys: no key encipherment


class CertificateRefused(Exception):
    """The CSR was denied or failed: retrying the same request will not help."""


@dataclass
class Identity:
    common_name: str
    organizations: list[str] = field(default_factory=list)
    signer: str = CLIENT_SIGNER
    csr_prefix: str = "csr-"        # the kubelet's first request is node-csr-<digest>, as upstream
    expiration_seconds: int | None = None


def rotation_deadline(cert: x509.Certificate, rng: random.Random | None = None) -> datetime.datetime:
    """When to renew: a random point between 70% and 90% of the lifetime (client-go's jitter)."""
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    fraction = 0.7 + 0.2 * (rng or random).random()
    return start + (end - start) * fraction


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def _subject(identity: Identity) -> x509.Name:
    parts = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in identity.organizations]
    return x509.Name(parts + [x509.NameAttribute(NameOID.COMMON_NAME, identity.common_name)])


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


class ClientCertificate:
    """One identity's certificate pair on disk; `clients` reload it when it is renewed."""

    def __init__(self, folder: Path, name: str, identity: Identity):
        self.cert_file = Path(folder) / f"{name}.crt"
        self.key_file = Path(folder) / f"{name}.key"
        self.identity = identity
        self.clients: list[Client] = []
        self._task: asyncio.Task | None = None

    def current(self) -> x509.Certificate | None:
        """The stored certificate when it is usable: ours, for this subject, not expired."""
        try:
            cert = x509.load_pem_x509_certificate(self.cert_file.read_bytes())
            key = serialization.load_pem_private_key(self.key_file.read_bytes(), password=None)
        except (OSError, ValueError):
            return None
        if cert.public_key().public_numbers() != key.public_key().public_numbers():
            return None
        if cert.subject != _subject(self.identity) or cert.not_valid_after_utc <= _now():
            return None
        return cert

    async def ensure(self, requester: Client, timeout: float = 300.0) -> x509.Certificate:
        """The stored certificate, or a new one requested through `requester` (TLS bootstrap)."""
        cert = self.current()
        if cert is None:
            cert = await self.request(requester, timeout, first=True)
        return cert

    async def request(self, requester: Client, timeout: float = 300.0, first: bool = False) -> x509.Certificate:
        key = ec.generate_private_key(ec.SECP256R1())
        request = (x509.CertificateSigningRequestBuilder().subject_name(_subject(self.identity))
                   .sign(key, hashes.SHA256()))
        pem = request.public_bytes(serialization.Encoding.PEM)
        metadata = {"generateName": "csr-"}
        if first:
            # Upstream's bootstrap name: a digest of key and subject, so a retried bootstrap finds its CSR.
            digest = hashlib.sha512(key.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) +
                self.identity.common_name.encode()).digest()
            metadata = {"name": self.identity.csr_prefix + base64.urlsafe_b64encode(digest).decode()[:43]
                        .replace("_", "-").lower().strip("-")}
        spec = {"request": base64.b64encode(pem).decode(), "signerName": self.identity.signer,
                "usages": list(CLIENT_USAGES)}
        if self.identity.expiration_seconds:
            spec["expirationSeconds"] = self.identity.expiration_seconds
        csrs = requester.resource(*CSR_API)
        created = await csrs.create({"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
                                     "metadata": metadata, "spec": spec})
        name = created["metadata"]["name"]
        log.info("requested a certificate for %s (CSR %s, signer %s)", self.identity.common_name, name,
                 self.identity.signer)
        issued = await asyncio.wait_for(self._wait_issued(csrs, name), timeout)
        cert = x509.load_pem_x509_certificate(issued)
        self.cert_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Key first: a certificate without its key counts as missing.
        _write(self.key_file, key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()), 0o600)
        _write(self.cert_file, issued, 0o644)
        for client in self.clients:
            client.reload_client_certificate(str(self.cert_file), str(self.key_file))
        return cert

    async def _wait_issued(self, csrs, name: str) -> bytes:
        delay = 0.2
        while True:
            csr = await csrs.get(name)
            status = csr.get("status") or {}
            for condition in status.get("conditions") or []:
                if condition.get("type") in ("Denied", "Failed") and condition.get("status", "True") == "True":
                    raise CertificateRefused(f"certificate signing request {name} is {condition['type'].lower()}: "
                                             f"{condition.get('message', '')}")
            if status.get("certificate"):
                return base64.b64decode(status["certificate"])
            await asyncio.sleep(delay)
            delay = min(delay * 1.5, 2.0)

    # ---- rotation --------------------------------------------------------------------------

    def start_rotation(self, requester: Client) -> None:
        """Renew before expiry, for as long as it runs, asking through `requester`."""
        self._task = asyncio.create_task(self._rotate(requester), name=f"rotate {self.identity.common_name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _rotate(self, requester: Client) -> None:
        while True:
            cert = self.current()
            wait = 0.0 if cert is None else (rotation_deadline(cert) - _now()).total_seconds()
            if wait > 0:
                log.info("certificate of %s expires %s; renewing in %.0fs", self.identity.common_name,
                         cert.not_valid_after_utc.isoformat(), wait)
                await asyncio.sleep(wait)
            try:
                await self.request(requester)
                await asyncio.sleep(1)      # however short-lived the new one, never a busy loop
            except asyncio.CancelledError:
                raise
            except (ApiError, CertificateRefused, asyncio.TimeoutError, OSError) as e:
                log.warning("renewing the certificate of %s failed: %s; retrying in 30s",
                            self.identity.common_name, e)
                await asyncio.sleep(30)
