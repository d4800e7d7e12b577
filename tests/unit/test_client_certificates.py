"""ClientCertificate: TLS bootstrap through a CSR, reuse, and renewal before expiry."""

import asyncio
import base64
import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from k8py.client.certificates import CertificateRefused, ClientCertificate, Identity
from k8py.controllers.certificates import signer


class FakeCSRs:
    """Signs every CSR at once (or denies them), with a short lifetime."""

    def __init__(self, lifetime: datetime.timedelta, deny: bool = False):
        self.lifetime, self.deny, self.created = lifetime, deny, []
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ca")])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.ca = ((x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                    .serial_number(1).not_valid_before(now - datetime.timedelta(hours=1))
                    .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256())), key)

    def resource(self, group_version, plural):
        return self

    async def create(self, obj):
        name = obj["metadata"].get("name") or f"csr-{len(self.created)}"
        self.created.append({**obj, "metadata": {"name": name}})
        return self.created[-1]

    async def get(self, name):
        csr = next(c for c in self.created if c["metadata"]["name"] == name)
        if self.deny:
            return {**csr, "status": {"conditions": [{"type": "Denied", "status": "True", "message": "no"}]}}
        request = x509.load_pem_x509_csr(base64.b64decode(csr["spec"]["request"]))
        cert = signer.sign(request, *self.ca, set(csr["spec"]["usages"]), self.lifetime)
        return {**csr, "status": {"certificate": base64.b64encode(cert.public_bytes(serialization.Encoding.PEM))
                                  .decode()}}


class FakeClient:
    def __init__(self):
        self.reloaded = []

    def reload_client_certificate(self, cert, key):
        self.reloaded.append((cert, key))


IDENTITY = Identity("system:node:n1", ["system:nodes"], "kubernetes.io/kube-apiserver-client-kubelet", "node-csr-")


async def test_bootstrap_then_reuse(tmp_path):
    api = FakeCSRs(datetime.timedelta(hours=1))
    cert = await ClientCertificate(tmp_path, "client-kubelet", IDENTITY).ensure(api)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "system:node:n1"
    assert api.created[0]["metadata"]["name"].startswith("node-csr-")
    assert api.created[0]["spec"]["signerName"] == "kubernetes.io/kube-apiserver-client-kubelet"
    assert (tmp_path / "client-kubelet.key").stat().st_mode & 0o777 == 0o600
    again = await ClientCertificate(tmp_path, "client-kubelet", IDENTITY).ensure(api)
    assert again == cert and len(api.created) == 1          # kept on disk: no second request
    # Another subject on disk does not count as ours.
    other = Identity("system:node:n2", ["system:nodes"], IDENTITY.signer)
    await ClientCertificate(tmp_path, "client-kubelet", other).ensure(api)
    assert len(api.created) == 2


async def test_denied_request_is_an_error(tmp_path):
    with pytest.raises(CertificateRefused, match="denied"):
        await ClientCertificate(tmp_path, "c", IDENTITY).ensure(FakeCSRs(datetime.timedelta(hours=1), deny=True))


async def test_renewed_before_expiry_and_clients_reload(tmp_path, monkeypatch):
    # The earliest point of the jitter (70%): back-dated by 5 minutes, a 132-second certificate
    # lives 432 s and is renewed 302.4 s after its start, 2.4 s from now.
    import k8py.client.certificates as certificates
    monkeypatch.setattr(certificates.random, "random", lambda: 0.0)
    api = FakeCSRs(datetime.timedelta(seconds=132))
    pair = ClientCertificate(tmp_path, "client-kubelet", IDENTITY)
    first = await pair.ensure(api)
    client = FakeClient()
    pair.clients.append(client)
    pair.start_rotation(api)
    try:
        deadline = asyncio.get_running_loop().time() + 20
        while not client.reloaded and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.1)
    finally:
        await pair.stop()
    assert client.reloaded == [(str(pair.cert_file), str(pair.key_file))]
    renewed = pair.current()
    assert renewed is not None and renewed.serial_number != first.serial_number
    assert renewed.not_valid_before_utc < first.not_valid_after_utc     # renewed before the old one expired
    assert api.created[-1]["metadata"] == {"name": "csr-1"}             # a renewal is a new generateName CSR
