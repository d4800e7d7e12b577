"""Pulls from docker-registry instances that demand credentials: htpasswd (Basic) and
token auth (Bearer realm flow, with a token server of our own that signs JWTs)."""

from __future__ import annotations

import asyncio
import base64
import warnings
import datetime
import json
import secrets
import time
from pathlib import Path

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from k8py.kubelet.images.mirrors import Endpoint
from k8py.kubelet.images.store import ImageStore
from k8py.kubelet.runtime.interface import ImageError

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt  # deprecated, but the only bcrypt at hand for docker-registry's htpasswd

pytest_plugins = ["tests.e2e.registry"]     # registry_script

USER, PASSWORD = "puller", "s3cret-" + secrets.token_hex(4)
SERVICE, ISSUER = "k8py-test-registry", "k8py-test-issuer"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def dockerconfig_auths(host: str) -> list[dict]:
    token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    return [{"auths": {host: {"auth": token}}}]


async def push_busybox(script, url: str, directory: Path, client_auth) -> None:
    root = directory / "bb"
    config = script.build_busybox(root)
    layer, diff_id = script.layer_of(root)
    cfg_raw, manifest = script.image_documents(layer, diff_id, config, docker=True)
    async with script.RegistryClient(Endpoint(url, url.split("://")[1]), "library/busybox", client_auth) as c:
        await c.push_blob(layer)
        await c.push_blob(cfg_raw)
        await c.push_manifest("latest", manifest, manifest["mediaType"])


def test_basic_auth_registry(tmp_path, registry_script):
    script = registry_script
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"{USER}:{crypt.crypt(PASSWORD, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))}\n")
    registry = script.start_registry(tmp_path / "reg", images=False,
                                     auth={"htpasswd": {"realm": "k8py", "path": str(htpasswd)}})
    try:
        asyncio.run(push_busybox(script, registry.url, tmp_path, (USER, PASSWORD)))
        store = ImageStore(tmp_path / "data")
        ref = f"{registry.host}/library/busybox"
        with pytest.raises(ImageError) as err:
            asyncio.run(store.pull(ref))
        assert err.value.reason == "ErrImagePull" and "401" in err.value.message
        info = asyncio.run(store.pull(ref, dockerconfig_auths(f"http://{registry.host}")))
        assert info.config["Cmd"] == ["sh"]
    finally:
        registry.stop()


class TokenServer:
    """A registry token service: Basic credentials in, a signed JWT granting the asked scope out."""

    def __init__(self):
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "k8py test token signer")])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(self.key.public_key())
                     .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
                     .not_valid_after(now + datetime.timedelta(hours=1)).sign(self.key, hashes.SHA256()))
        self.requests: list[dict] = []

    def bundle(self, path: Path) -> Path:
        path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        return path

    def token(self, scope: str) -> str:
        header = {"typ": "JWT", "alg": "RS256",
                  "x5c": [base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode()]}
        access = []
        if scope:
            kind, name, actions = scope.split(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        claims = {"iss": ISSUER, "sub": USER, "aud": SERVICE, "exp": now + 300, "nbf": now - 10, "iat": now,
                  "jti": secrets.token_hex(8), "access": access}
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{b64url(signature)}"

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(dict(request.query))
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if request.headers.get("Authorization") != expected:
            return web.json_response({"details": "bad credentials"}, status=401)
        return web.json_response({"token": self.token(request.query.get("scope", ""))})


async def test_bearer_token_realm_flow(tmp_path, registry_script):
    script = registry_script
    tokens = TokenServer()
    app = web.Application()
    app.router.add_get("/token", tokens.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    auth = {"token": {"realm": f"http://127.0.0.1:{port}/token", "service": SERVICE, "issuer": ISSUER,
                      "rootcertbundle": str(tokens.bundle(tmp_path / "bundle.pem"))}}
    registry = await asyncio.to_thread(script.start_registry, tmp_path / "reg", None, False, auth)
    try:
        await push_busybox(script, registry.url, tmp_path, (USER, PASSWORD))
        mirrors = tmp_path / "registries.yaml"
        mirrors.write_text(f'mirrors:\n  docker.io:\n    endpoint: ["{registry.url}"]\n'
                           f'configs:\n  "{registry.host}":\n    auth: {{username: {USER}, password: {PASSWORD}}}\n')
        anonymous = ImageStore(tmp_path / "anon")
        with pytest.raises(ImageError) as err:
            await anonymous.pull(f"{registry.host}/library/busybox")
        assert err.value.reason == "ErrImagePull" and "401" in err.value.message
        # Credentials from a dockerconfigjson pull secret...
        info = await ImageStore(tmp_path / "secret").pull(f"{registry.host}/library/busybox",
                                                          dockerconfig_auths(registry.host))
        assert info.config["Cmd"] == ["sh"]
        # ...or from registries.yaml for the mirror of docker.io.
        info = await ImageStore(tmp_path / "mirror", mirrors).pull("busybox")
        assert info.repo_tags == ["docker.io/library/busybox:latest"]
        assert {"scope": "repository:library/busybox:pull", "service": SERVICE} in tokens.requests
    finally:
        registry.stop()
        await runner.cleanup()


def _serving_cert(directory: Path) -> tuple[Path, Path]:
    import ipaddress
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "tls.crt", directory / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_https_registry_with_its_ca_from_registries_yaml(tmp_path, registry_script):
    script = registry_script
    cert, key = _serving_cert(tmp_path)
    registry = script.start_registry(tmp_path / "reg", images=False, tls=(cert, key))
    try:
        asyncio.run(push_busybox_tls(script, registry, cert, tmp_path))
        ref = f"{registry.host}/library/busybox"
        with pytest.raises(ImageError) as err:            # an unknown CA is refused
            asyncio.run(ImageStore(tmp_path / "untrusting").pull(ref))
        assert err.value.reason == "ErrImagePull" and "certificate" in err.value.message.lower()
        trusting = tmp_path / "registries.yaml"
        trusting.write_text(f'configs:\n  "{registry.host}":\n    tls: {{ca_file: "{cert}"}}\n')
        info = asyncio.run(ImageStore(tmp_path / "trusting", trusting).pull(ref))
        assert info.config["Cmd"] == ["sh"]
        insecure = tmp_path / "insecure.yaml"
        insecure.write_text(f'configs:\n  "{registry.host}":\n    tls: {{insecure_skip_verify: true}}\n')
        assert asyncio.run(ImageStore(tmp_path / "insecure", insecure).pull(ref)).id == info.id
    finally:
        registry.stop()


async def push_busybox_tls(script, registry, cert: Path, directory: Path) -> None:
    root = directory / "bb"
    config = script.build_busybox(root)
    layer, diff_id = script.layer_of(root)
    cfg_raw, manifest = script.image_documents(layer, diff_id, config, docker=True)
    endpoint = Endpoint(registry.url, registry.host, tls={"ca_file": str(cert)})
    async with script.RegistryClient(endpoint, "library/busybox") as c:
        await c.push_blob(layer)
        await c.push_blob(cfg_raw)
        await c.push_manifest("latest", manifest, manifest["mediaType"])
