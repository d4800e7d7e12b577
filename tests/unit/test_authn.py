import asyncio
import base64
import json
import logging
import ssl
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from multidict import CIMultiDict

from k8py.apiserver.authn import Authenticator, UserInfo, bearer_token, load_token_file
from k8py.apiserver.kubeconfig import write_kubeconfig
from k8py.apiserver.pki import ensure_pki, issue_client_cert, ssl_context
from tests.kubectl import kubectl_binary

TOKEN = "static-admin-token"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return ensure_pki(tmp_path_factory.mktemp("pki") / "tls")


@pytest.fixture(scope="module")
def foreign_pki(tmp_path_factory):
    return ensure_pki(tmp_path_factory.mktemp("foreign") / "tls")


@pytest.fixture
def token_file(tmp_path):
    path = tmp_path / "tokens.csv"
    path.write_text('alice-token,alice,uid-1,"dev,ops"\nbob-token,bob,uid-2\n')
    return path


class WhoAmIServer:
    """A tiny HTTPS server that answers with the authenticated user's name."""

    def __init__(self, authenticator: Authenticator):
        self.authenticator = authenticator
        self.seen: list[UserInfo | None] = []

    async def handle(self, request: web.Request) -> web.Response:
        user = self.authenticator.authenticate(request)
        self.seen.append(user)
        if user is None:
            return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                      "reason": "Unauthorized", "code": 401}, status=401)
        return web.json_response({"name": user.name, "uid": user.uid, "groups": list(user.groups)})


@pytest.fixture
async def server(pki, token_file):
    whoami = WhoAmIServer(Authenticator.from_config(pki, TOKEN, token_file))
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", whoami.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context(pki))
    await site.start()
    whoami.url = f"https://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    yield whoami
    await runner.cleanup()


def client_context(pki, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


async def get(server, ctx, headers=None):
    """(status, body or None) of GET /whoami-test; status None when the TLS
    connection was refused."""
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(server.url + "/whoami-test", ssl=ctx, headers=headers or {}) as resp:
                return resp.status, await resp.json(content_type=None)
    except aiohttp.ClientError:
        return None, None


# --- over real TLS ---------------------------------------------------------

async def test_admin_client_cert(server, pki):
    status, body = await get(server, client_context(pki, pki.admin_cert, pki.admin_key))
    assert status == 200
    assert body == {"name": "system:admin", "uid": "", "groups": ["system:masters", "system:authenticated"]}


async def test_issued_client_cert(server, pki, tmp_path):
    cert, key = issue_client_cert(pki, "system:node:n1", ["system:nodes"])
    (tmp_path / "n1.crt").write_bytes(cert)
    (tmp_path / "n1.key").write_bytes(key)
    status, body = await get(server, client_context(pki, tmp_path / "n1.crt", tmp_path / "n1.key"))
    assert status == 200
    assert body["name"] == "system:node:n1"
    assert body["groups"] == ["system:nodes", "system:authenticated"]


async def test_bearer_tokens(server, pki):
    ctx = client_context(pki)
    status, body = await get(server, ctx, {"Authorization": "Bearer alice-token"})
    assert (status, body) == (200, {"name": "alice", "uid": "uid-1",
                                    "groups": ["dev", "ops", "system:authenticated"]})
    status, body = await get(server, ctx, {"Authorization": f"bearer {TOKEN}"})
    assert (status, body["name"], body["groups"]) == (200, "system:admin",
                                                      ["system:masters", "system:authenticated"])


async def test_no_credentials_or_a_wrong_token_is_unauthenticated(server, pki):
    ctx = client_context(pki)
    assert (await get(server, ctx))[0] == 401
    assert (await get(server, ctx, {"Authorization": "Bearer nobody"}))[0] == 401
    assert (await get(server, ctx, {"Authorization": f"Basic {TOKEN}"}))[0] == 401
    assert server.seen == [None, None, None]


async def test_client_cert_from_a_foreign_ca_is_rejected(server, pki, foreign_pki):
    ctx = client_context(pki, foreign_pki.admin_cert, foreign_pki.admin_key)
    status, _ = await get(server, ctx)
    # The handshake fails (TLS 1.3 reports it on the first read); it must
    # never reach the handler as an authenticated request.
    assert status is None
    assert all(user is None for user in server.seen)


async def test_client_cert_from_a_foreign_ca_is_rejected_over_tls12(server, pki, foreign_pki):
    ctx = client_context(pki, foreign_pki.admin_cert, foreign_pki.admin_key)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    assert (await get(server, ctx))[0] is None
    assert all(user is None for user in server.seen)


async def test_cert_wins_over_token_as_upstream(server, pki):
    # kube-apiserver tries x509 before tokens: a cert plus a token is the cert's user.
    ctx = client_context(pki, pki.admin_cert, pki.admin_key)
    status, body = await get(server, ctx, {"Authorization": "Bearer alice-token"})
    assert (status, body["name"]) == (200, "system:admin")


async def test_alpn_offers_only_http11(server, pki):
    ctx = client_context(pki)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    host, port = server.url.removeprefix("https://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port), ssl=ctx, server_hostname=host)
    try:
        assert writer.get_extra_info("ssl_object").selected_alpn_protocol() == "http/1.1"
    finally:
        writer.close()


async def test_serving_cert_names(server, pki):
    # The cert must verify for the in-cluster names too, not only 127.0.0.1.
    host, port = server.url.removeprefix("https://").split(":")
    for name in ("localhost", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"):
        reader, writer = await asyncio.open_connection(host, int(port), ssl=client_context(pki),
                                                       server_hostname=name)
        writer.close()
    with pytest.raises(ssl.SSLCertVerificationError):
        await asyncio.open_connection(host, int(port), ssl=client_context(pki), server_hostname="example.org")


# --- the real kubectl ----------------------------------------------------

async def kubectl(*args):
    proc = await asyncio.create_subprocess_exec(kubectl_binary("1.32"), *args, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    return proc.returncode, out.decode(), err.decode()


async def test_kubectl_trusts_the_ca_and_presents_the_admin_cert(server, pki, tmp_path):
    config = write_kubeconfig(tmp_path / "kubeconfig.yaml", server.url, pki, token=TOKEN)
    rc, out, err = await kubectl(f"--kubeconfig={config}", f"--cache-dir={tmp_path / 'cache'}",
                                 "get", "--raw", "/whoami-test")
    assert rc == 0, err
    assert json.loads(out) == {"name": "system:admin", "uid": "",
                               "groups": ["system:masters", "system:authenticated"]}


async def test_kubectl_with_a_token_user(server, pki, tmp_path):
    config = write_kubeconfig(tmp_path / "kubeconfig.yaml", server.url, pki, token="alice-token")
    rc, out, err = await kubectl(f"--kubeconfig={config}", f"--cache-dir={tmp_path / 'cache'}",
                                 "--context=default-token", "get", "--raw", "/whoami-test")
    assert rc == 0, err
    assert json.loads(out)["name"] == "alice"


async def test_kubectl_token_flag_with_the_admin_kubeconfig_is_still_the_cert_user(server, pki, tmp_path):
    # kubectl --token keeps the kubeconfig's client cert, and the cert is
    # authenticated first, as in kube-apiserver.
    config = write_kubeconfig(tmp_path / "kubeconfig.yaml", server.url, pki)
    rc, out, err = await kubectl(f"--kubeconfig={config}", f"--cache-dir={tmp_path / 'cache'}",
                                 "--token=alice-token", "get", "--raw", "/whoami-test")
    assert rc == 0, err
    assert json.loads(out)["name"] == "system:admin"


async def test_kubectl_refuses_a_server_from_another_ca(server, foreign_pki, tmp_path):
    config = write_kubeconfig(tmp_path / "kubeconfig.yaml", server.url, foreign_pki)
    rc, out, err = await kubectl(f"--kubeconfig={config}", f"--cache-dir={tmp_path / 'cache'}",
                                 "get", "--raw", "/whoami-test")
    assert rc != 0
    assert "certificate" in err
    assert server.seen == []


# --- pieces ----------------------------------------------------------------

def test_certificate_checks_without_tls(pki, foreign_pki, tmp_path):
    authn = Authenticator(pki.ca_cert, {})

    def der(path):
        return x509.load_pem_x509_certificate(path.read_bytes()).public_bytes(serialization.Encoding.DER)

    assert authn.authenticate_certificate(der(pki.admin_cert)) == UserInfo("system:admin",
                                                                           groups=("system:masters",))
    # Signed by another CA, even one with the same kind of name.
    assert authn.authenticate_certificate(der(foreign_pki.admin_cert)) is None
    # Ours, but a serving certificate (EKU serverAuth only) is no client identity.
    assert authn.authenticate_certificate(der(pki.server_cert)) is None
    assert authn.authenticate_certificate(b"garbage") is None


def test_token_file_format(tmp_path):
    path = tmp_path / "tokens.csv"
    path.write_text('t1,alice,1,"a, b"\n\n,nobody,2\nt2,bob,2,,extra\nt3,carol,3\n')
    tokens = load_token_file(path)
    assert tokens == {"t1": UserInfo("alice", "1", ("a", "b")), "t2": UserInfo("bob", "2"),
                      "t3": UserInfo("carol", "3")}


def test_token_file_needs_three_columns(tmp_path):
    path = tmp_path / "tokens.csv"
    path.write_text("t1,alice\n")
    with pytest.raises(ValueError, match="at least 3 columns"):
        load_token_file(path)


def test_duplicate_token_later_line_wins(tmp_path, caplog):
    path = tmp_path / "tokens.csv"
    path.write_text("t1,alice,1\nt1,bob,2\n")
    with caplog.at_level(logging.WARNING):
        assert load_token_file(path) == {"t1": UserInfo("bob", "2")}
    assert "duplicate" in caplog.text


def test_flag_token_overrides_the_file_and_is_admin(pki, tmp_path):
    path = tmp_path / "tokens.csv"
    path.write_text("same,alice,1\n")
    authn = Authenticator.from_config(pki, "same", path)
    assert authn.authenticate_token("same") == UserInfo("system:admin", groups=("system:masters",))
    assert authn.authenticate_token("other") is None


def test_token_authenticator_hook(pki):
    authn = Authenticator(pki.ca_cert, {"static": UserInfo("s")})
    calls = []

    def jwt_check(token):
        calls.append(token)
        return UserInfo("system:serviceaccount:default:sa") if token.startswith("eyJ") else None

    authn.add_token_authenticator(jwt_check)
    assert authn.authenticate_token("static") == UserInfo("s")
    assert calls == []  # static tokens are tried first
    assert authn.authenticate_token("eyJabc").name == "system:serviceaccount:default:sa"
    assert authn.authenticate_token("nope") is None
    assert calls == ["eyJabc", "nope"]


@pytest.mark.parametrize("headers,expected", [
    ({"Authorization": "Bearer abc"}, "abc"),
    ({"Authorization": "  BEARER abc  "}, "abc"),
    ({"Authorization": "Bearer abc extra"}, "abc"),
    ({"Authorization": "Bearer  abc"}, None),  # empty token before the second space
    ({"Authorization": "Bearer"}, None),
    ({"Authorization": "Basic YWxpY2U6cHc="}, None),
    ({}, None),
    ({"Upgrade": "websocket", "Sec-WebSocket-Protocol":
      "v5.channel.k8s.io, base64url.bearer.authorization.k8s.io."
      + base64.urlsafe_b64encode(b"ws-token").decode().rstrip("=")}, "ws-token"),
    # Only WebSocket requests may carry the token as a subprotocol.
    ({"Sec-WebSocket-Protocol": "base64url.bearer.authorization.k8s.io.YWJj"}, None),
])
def test_bearer_token_parsing(headers, expected):
    assert bearer_token(CIMultiDict(headers)) == expected


def test_authenticated_group_added_once(pki):
    authn = Authenticator(pki.ca_cert, {"t": UserInfo("u", groups=("system:authenticated", "g"))})

    class FakeRequest:
        transport = None
        headers = CIMultiDict({"Authorization": "Bearer t"})

    assert authn.authenticate(FakeRequest()).groups == ("system:authenticated", "g")
