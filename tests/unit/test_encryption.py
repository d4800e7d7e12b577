"""Secrets encrypted at rest: providers, the EncryptionConfiguration file, and the API over an encrypted store."""

from __future__ import annotations

import base64
import os
import sqlite3

import pytest
from aiohttp.test_utils import TestClient, TestServer

from k8py.apiserver import pki
from k8py.apiserver.authn import Authenticator
from k8py.apiserver.encryptionconfig import ConfigError, EncryptionProviders, parse
from k8py.apiserver.server import APIServer, ServerConfig
from k8py.storage.encryption import (AESCBC, AESGCM, Identity, PrefixTransformers, SecretBox, TransformError)

TOKEN = "unit-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}
SECRETS = "/api/v1/namespaces/default/secrets"
KEY = "/registry/secrets/default/s1"
PLAIN = b'{"data":{"password":"c3VwZXJzZWNyZXQ="}}'


def b64key(n: int = 32) -> str:
    return base64.b64encode(os.urandom(n)).decode()


def config(*providers: str, resources: str = "[secrets]") -> str:
    return ("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n"
            f"- resources: {resources}\n  providers:\n" + "".join(f"  - {p}\n" for p in providers))


def aescbc(name: str, secret: str) -> str:
    return f"aescbc: {{keys: [{{name: {name}, secret: '{secret}'}}]}}"


# ---- providers -------------------------------------------------------------

@pytest.mark.parametrize("cls,prefix", [(AESCBC, b"k8s:enc:aescbc:v1:k1:"), (AESGCM, b"k8s:enc:aesgcm:v1:k1:"),
                                        (SecretBox, b"k8s:enc:secretbox:v1:k1:")])
def test_provider_round_trip_prefix_and_wrong_key(cls, prefix):
    chain = PrefixTransformers([cls("k1", os.urandom(32))])
    stored = chain.to_storage(PLAIN, KEY)
    assert stored.startswith(prefix) and b"password" not in stored and b"c3VwZXJzZWNyZXQ" not in stored
    assert chain.to_storage(PLAIN, KEY) != stored  # a fresh IV/nonce every write
    assert chain.from_storage(stored, KEY) == (PLAIN, False)
    other = PrefixTransformers([cls("k1", os.urandom(32))])  # same name, another secret
    with pytest.raises(TransformError):
        other.from_storage(stored, KEY)


def test_aesgcm_binds_the_value_to_its_key():
    chain = PrefixTransformers([AESGCM("k1", os.urandom(32))])
    stored = chain.to_storage(PLAIN, KEY)
    with pytest.raises(TransformError, match="message authentication failed"):
        chain.from_storage(stored, "/registry/secrets/default/other")


def test_older_key_reads_stale_and_missing_key_has_upstream_message():
    old, new = AESCBC("old", os.urandom(32)), AESCBC("new", os.urandom(32))
    stored = PrefixTransformers([old]).to_storage(PLAIN, KEY)
    assert PrefixTransformers([new, old]).from_storage(stored, KEY) == (PLAIN, True)
    with pytest.raises(TransformError, match="^no matching prefix found$"):
        PrefixTransformers([new]).from_storage(stored, KEY)
    with pytest.raises(TransformError, match="^no matching prefix found$"):
        PrefixTransformers([Identity()]).from_storage(stored, KEY)
    # identity first: writes clear text, still reads what was encrypted (stale)
    chain = PrefixTransformers([Identity(), old])
    assert chain.to_storage(PLAIN, KEY) == PLAIN
    assert chain.from_storage(stored, KEY) == (PLAIN, True)
    assert chain.from_storage(PLAIN, KEY) == (PLAIN, False)


# ---- the configuration file --------------------------------------------------

def test_config_resource_matching_and_wildcards():
    k = b64key()
    parsed = parse(config(aescbc("a", k), resources="[secrets, deployments.apps, '*.batch', '*.', "
                                                    "pandas.awesome.bears.example]"))
    assert set(parsed) == {("", "secrets"), ("apps", "deployments"), ("batch", "*"), ("", "*"),
                           ("awesome.bears.example", "pandas")}
    providers = EncryptionProviders()
    providers.config = parsed
    assert providers.transformers_for("batch", "jobs") is parsed[("batch", "*")]
    assert providers.transformers_for("", "configmaps") is parsed[("", "*")]
    assert providers.transformers_for("apps", "replicasets") is None
    providers.config = parse(config("identity: {}", resources="['*.*']"))
    assert providers.transformers_for("apps", "replicasets") is not None


@pytest.mark.parametrize("text,message", [
    (config("aescbc: {keys: [{name: a, secret: 'c2hvcnQ='}]}"), "secret is not of the expected length, got 5"),
    (config("secretbox: {keys: [{name: a, secret: 'MDEyMzQ1Njc4OWFiY2RlZg=='}]}"), "expected one of [32]"),
    (config("aesgcm: {keys: []}"), "keys (list of at least one key) is required"),
    (config("kms: {name: x}"), "Unsupported value"),
    (config("{identity: {}, aescbc: {keys: [{name: a, secret: x}]}}"), "exactly one of"),
    (config("identity: {}", resources="['*.*', secrets]"), 'masked by earlier rule "*.*"'),
    (config("identity: {}", resources="[secrets, secrets]"), 'Duplicate value: "secrets"'),
    ("apiVersion: v1\nkind: Foo\n", "expected kind 'EncryptionConfiguration'"),
])
def test_config_errors(text, message):
    with pytest.raises(ConfigError) as err:
        parse(text)
    assert message in str(err.value)


# ---- the API over an encrypted store -----------------------------------------

class Server:
    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.config_path = tmp_path / "enc.yaml"

    async def start(self, text: str | None):
        if text is not None:
            self.config_path.write_text(text)
        self.api = APIServer(ServerConfig(data_dir=self.tmp_path,
                                          encryption_provider_config=self.config_path if text else None))
        self.api.authenticator = Authenticator.from_config(pki.ensure_pki(self.tmp_path / "tls"), TOKEN)
        await self.api.start()
        self.client = TestClient(TestServer(self.api.app()))
        await self.client.start_server()
        return self.client

    async def stop(self):
        await self.client.close()
        await self.api.stop()

    def raw_bytes(self) -> bytes:
        db = self.tmp_path / "server" / "db"
        return b"".join(p.read_bytes() for p in db.iterdir() if p.name.startswith("state.db"))

    def stored_values(self, prefix: str = "/registry/secrets/") -> list[bytes]:
        conn = sqlite3.connect(self.tmp_path / "server" / "db" / "state.db")
        try:
            return [bytes(v) for (v,) in conn.execute("SELECT value FROM kv WHERE key >= ? AND key < ?",
                                                       (prefix, prefix[:-1] + "0"))]
        finally:
            conn.close()


def secret(name: str, value: str) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
            "stringData": {"password": value}}


@pytest.fixture
async def server(tmp_path):
    s = Server(tmp_path)
    yield s
    if getattr(s, "client", None) is not None and not s.client._closed:
        await s.stop()


async def test_secret_is_not_stored_in_clear_and_reads_back(server):
    client = await server.start(config(aescbc("key1", b64key())))
    resp = await client.post(SECRETS, json=secret("s1", "hunter2-in-clear"), headers=HEADERS)
    assert resp.status == 201
    resp = await client.get(f"{SECRETS}/s1", headers=HEADERS)
    body = await resp.json()
    assert base64.b64decode(body["data"]["password"]) == b"hunter2-in-clear"
    resp = await client.post("/api/v1/namespaces/default/configmaps", headers=HEADERS,
                             json={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c1"},
                                   "data": {"k": "visible-configmap-value"}})
    assert resp.status == 201
    await server.stop()
    raw = server.raw_bytes()
    assert b"hunter2-in-clear" not in raw and base64.b64encode(b"hunter2-in-clear") not in raw
    assert b"visible-configmap-value" in raw  # not configured: stored as is
    assert all(v.startswith(b"k8s:enc:aescbc:v1:key1:") for v in server.stored_values())
    # after a restart the watch cache is filled from the encrypted store
    client = await server.start(server.config_path.read_text())
    body = await (await client.get(SECRETS, headers=HEADERS)).json()
    assert [base64.b64decode(i["data"]["password"]) for i in body["items"]] == [b"hunter2-in-clear"]


async def test_rotation_rewrites_every_secret_with_the_new_key(server):
    k1, k2 = b64key(), b64key()
    client = await server.start(config(aescbc("key1", k1)))
    for i in range(3):
        assert (await client.post(SECRETS, json=secret(f"s{i}", f"value-{i}"), headers=HEADERS)).status == 201
    await server.stop()
    # step 1: the new key is added, the old one still reads
    client = await server.start(config(f"aescbc: {{keys: [{{name: key2, secret: '{k2}'}}, "
                                       f"{{name: key1, secret: '{k1}'}}]}}"))
    listed = await (await client.get(SECRETS, headers=HEADERS)).json()
    assert len(listed["items"]) == 3
    # step 2: rewrite everything unchanged (kubectl get secrets -o json | kubectl replace -f -)
    for item in listed["items"]:
        resp = await client.put(f"{SECRETS}/{item['metadata']['name']}", json=item, headers=HEADERS)
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["metadata"]["resourceVersion"] != item["metadata"]["resourceVersion"]
    # a second replace changes nothing: no write
    again = await (await client.get(f"{SECRETS}/s0", headers=HEADERS)).json()
    resp = await client.put(f"{SECRETS}/s0", json=again, headers=HEADERS)
    assert (await resp.json())["metadata"]["resourceVersion"] == again["metadata"]["resourceVersion"]
    await server.stop()
    values = server.stored_values()
    assert len(values) == 3 and all(v.startswith(b"k8s:enc:aescbc:v1:key2:") for v in values)
    # step 3: the old key can go
    client = await server.start(config(aescbc("key2", k2)))
    body = await (await client.get(f"{SECRETS}/s2", headers=HEADERS)).json()
    assert base64.b64decode(body["data"]["password"]) == b"value-2"


async def test_identity_first_writes_clear_text_and_reads_encrypted(server):
    k1 = b64key()
    client = await server.start(config(aescbc("key1", k1)))
    assert (await client.post(SECRETS, json=secret("old", "encrypted-one"), headers=HEADERS)).status == 201
    await server.stop()
    client = await server.start(config("identity: {}", aescbc("key1", k1)))
    body = await (await client.get(f"{SECRETS}/old", headers=HEADERS)).json()
    assert base64.b64decode(body["data"]["password"]) == b"encrypted-one"
    assert (await client.post(SECRETS, json=secret("new", "clear-one"), headers=HEADERS)).status == 201
    await server.stop()
    values = server.stored_values()
    assert sum(v.startswith(b"k8s:enc:aescbc:v1:key1:") for v in values) == 1
    assert sum(v.startswith(b"{") for v in values) == 1


@pytest.mark.parametrize("restart_with", ["wrong-key", "no-config"])
async def test_unreadable_secret_is_a_500_not_a_crash(server, restart_with):
    gcm = "aesgcm: {keys: [{name: key1, secret: '%s'}]}"
    client = await server.start(config(gcm % b64key()))
    assert (await client.post(SECRETS, json=secret("s1", "x"), headers=HEADERS)).status == 201
    await server.stop()
    client = await server.start(config(gcm % b64key()) if restart_with == "wrong-key" else None)
    expected = ('Internal error occurred: unable to transform key "/registry/secrets/default/s1": ' +
                ("cipher: message authentication failed" if restart_with == "wrong-key"
                 else "identity transformer tried to read encrypted data"))
    for method, path in (("GET", f"{SECRETS}/s1"), ("GET", SECRETS), ("DELETE", f"{SECRETS}/s1"),
                         ("PUT", f"{SECRETS}/s1")):
        resp = await client.request(method, path, headers=HEADERS, json=secret("s1", "y"))
        body = await resp.json()
        assert resp.status == 500 and body["reason"] == "InternalError", (method, path, body)
        assert body["message"] == expected
    # other secrets and resources still work
    assert (await client.post(SECRETS, json=secret("s2", "z"), headers=HEADERS)).status == 201
    assert (await client.get(f"{SECRETS}/s2", headers=HEADERS)).status == 200


async def test_automatic_reload_switches_keys_of_running_views(tmp_path):
    from k8py.storage.encryption import TransformingStore
    k1, k2 = b64key(), b64key()
    path = tmp_path / "enc.yaml"
    path.write_text(config(aescbc("key1", k1)))
    providers = EncryptionProviders(path, automatic_reload=True)
    view = providers.store_for(object(), "/registry/secrets/", "", "secrets")
    assert isinstance(view, TransformingStore)
    raw = object()
    assert providers.store_for(raw, "/registry/configmaps/", "", "configmaps") is raw  # not encrypted
    assert providers.reload() is False  # unchanged file
    path.write_text("not: [valid")
    assert providers.reload() is False and view.transformers.to_storage(b"{}", KEY).startswith(
        b"k8s:enc:aescbc:v1:key1:")  # a broken file keeps the running keys
    path.write_text(config(aescbc("key2", k2), aescbc("key1", k1)))
    assert providers.reload() is True
    assert view.transformers.to_storage(b"{}", KEY).startswith(b"k8s:enc:aescbc:v1:key2:")


@pytest.mark.parametrize("backend", ["sqlite", "etcd"])
async def test_transforming_store_commits_history_and_unreadable_values(tmp_path, backend, request):
    from k8py.storage.encryption import TransformingStore
    if backend == "etcd":  # what etcdctl shows of a secret is the envelope, as with SQLite
        from k8py.storage.etcd import EtcdConfig, open_etcd_store
        etcd = request.getfixturevalue("etcd")
        etcd.wipe()
        inner = await open_etcd_store(EtcdConfig.parse(etcd.endpoint))
    else:
        from k8py.storage.sqlite import open_sqlite_store
        inner = await open_sqlite_store(tmp_path / "state.db")
    start = inner.revision
    try:
        old, new = AESGCM("old", os.urandom(32)), AESGCM("new", os.urandom(32))
        view = TransformingStore(inner, "/registry/secrets/", PrefixTransformers([old]))
        seen = []
        view.subscribe(lambda events: seen.extend(events))
        first = await view.create(KEY, PLAIN)
        await inner.create("/registry/configmaps/default/c", b'{"plain":1}')  # another resource: untouched
        assert [(e.kv.key, e.kv.value) for e in seen] == [(KEY, PLAIN), ("/registry/configmaps/default/c",
                                                                        b'{"plain":1}')]
        assert (await inner.get(KEY)).value.startswith(b"k8s:enc:aesgcm:v1:old:")
        # a new first key: the old value reads stale; an unchanged rewrite stores it under the new key
        view.transformers = PrefixTransformers([new, old])
        assert (await view.get(KEY)).value == PLAIN and KEY in view.stale
        await view.update(KEY, PLAIN, first.mod_revision)
        assert KEY not in view.stale and (await inner.get(KEY)).value.startswith(b"k8s:enc:aesgcm:v1:new:")
        # replayed history holding the old key does not mark the current value unreadable
        view.transformers = PrefixTransformers([new])
        history = await view.events_since("/registry/secrets/", start)
        assert [e.type for e in history] == ["PUT"] and not view.unreadable
        # a live commit nobody can read: the cache is told the object went, reads will say why
        seen.clear()
        stranger = PrefixTransformers([AESGCM("new", os.urandom(32))])
        await inner.update(KEY, stranger.to_storage(PLAIN, KEY))
        assert [(e.type, e.kv.value) for e in seen] == [("DELETE", PLAIN)]
        assert "message authentication failed" in view.unreadable[KEY]
        assert view.unreadable_under("/registry/secrets/default/") == view.unreadable[KEY]
    finally:
        await inner.close()
