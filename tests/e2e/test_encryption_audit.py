"""Secrets encrypted at rest and the audit log, with the real kubectl against a real `k8py server`."""

from __future__ import annotations

import base64
import json
import os
import re
import sqlite3

import pytest

from tests.e2e.conftest import free_port, start_server, wait_for

POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: []
rules:
- level: None
  nonResourceURLs: ["/healthz*", "/readyz*", "/livez*"]
- level: Metadata
  resources: [{group: "", resources: [secrets]}]
- level: RequestResponse
  resources: [{group: "", resources: [configmaps]}]
- level: Request
  resources: [{group: "", resources: ["pods/exec"]}]
- level: Metadata
"""


def encryption_config(*keys: tuple[str, str], identity_first: bool = False) -> str:
    listed = "".join(f"      - name: {name}\n        secret: {secret}\n" for name, secret in keys)
    first = "  - identity: {}\n" if identity_first else ""
    return ("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n"
            "- resources: [secrets]\n  providers:\n" + first + "  - aescbc:\n      keys:\n" + listed)


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def db_bytes(data_dir) -> bytes:
    db = data_dir / "server" / "db"
    return b"".join(p.read_bytes() for p in db.iterdir() if p.name.startswith("state.db"))


def stored_secrets(data_dir) -> dict[str, bytes]:
    conn = sqlite3.connect(f"file:{data_dir / 'server' / 'db' / 'state.db'}?mode=ro", uri=True)
    try:
        return {k: bytes(v) for k, v in conn.execute(
            "SELECT key, value FROM kv WHERE key >= '/registry/secrets/' AND key < '/registry/secrets0'")}
    finally:
        conn.close()


def audit_events(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def secured(tmp_path):
    """A server with an encryption config and an audit policy; `restart(config)` swaps the config."""
    data_dir, port = tmp_path / "data", free_port()
    enc, policy, log = tmp_path / "encryption.yaml", tmp_path / "policy.yaml", tmp_path / "audit" / "audit.log"
    policy.write_text(POLICY)
    servers = []

    def start(config: str, *extra: str):
        if servers:
            servers[-1].stop()
        enc.write_text(config)
        servers.append(start_server(data_dir, port, ["--encryption-provider-config", str(enc),
                                                     "--audit-policy-file", str(policy),
                                                     "--audit-log-path", str(log), *extra]))
        return servers[-1]
    start.log = log
    yield start
    for s in servers:
        s.stop()


def test_secrets_encrypted_at_rest_and_key_rotation(secured):
    k1, k2 = new_key(), new_key()
    server = secured(encryption_config(("key1", k1)))
    server.kubectl("create", "secret", "generic", "db-pass", "--from-literal=password=Sup3r-S3cret-Value")
    server.kubectl("create", "secret", "generic", "api-token", "-n", "kube-system",
                   "--from-literal=token=An0ther-Secret-Token")
    got = server.kubectl_json("get", "secret", "db-pass")
    assert base64.b64decode(got["data"]["password"]) == b"Sup3r-S3cret-Value"
    raw = db_bytes(server.data_dir)
    for clear in (b"Sup3r-S3cret-Value", b"An0ther-Secret-Token"):
        assert clear not in raw and base64.b64encode(clear) not in raw
    assert b"k8s:enc:aescbc:v1:key1:" in raw
    # rotation, the upstream way: add the new key first, restart, rewrite every secret
    server = secured(encryption_config(("key2", k2), ("key1", k1)))
    listed = server.kubectl("get", "secrets", "-A", "-o", "json").stdout
    server.kubectl("replace", "-f", "-", input=listed)
    prefixes = {v[:len("k8s:enc:aescbc:v1:key2:")] for v in stored_secrets(server.data_dir).values()}
    assert prefixes == {b"k8s:enc:aescbc:v1:key2:"}
    # the old key can go now
    server = secured(encryption_config(("key2", k2)))
    got = server.kubectl_json("get", "secret", "api-token", "-n", "kube-system")
    assert base64.b64decode(got["data"]["token"]) == b"An0ther-Secret-Token"
    # a server without the key cannot read them: upstream's 500, and the server keeps serving
    server = secured(encryption_config(("key3", new_key())))
    result = server.kubectl("get", "secret", "db-pass", check=False)
    assert result.returncode != 0
    assert ('Error from server (InternalError): Internal error occurred: unable to transform key '
            '"/registry/secrets/default/db-pass": no matching prefix found') in result.stderr
    assert server.kubectl("get", "configmaps", "-A").returncode == 0


def test_identity_first_decrypts_away(secured):
    k1 = new_key()
    server = secured(encryption_config(("key1", k1)))
    server.kubectl("create", "secret", "generic", "s", "--from-literal=v=was-encrypted")
    server = secured(encryption_config(("key1", k1), identity_first=True))
    server.kubectl("get", "secrets", "-o", "json")  # still readable
    server.kubectl("replace", "-f", "-", input=server.kubectl("get", "secret", "s", "-o", "json").stdout)
    assert stored_secrets(server.data_dir)["/registry/secrets/default/s"].startswith(b"{")


def test_audit_log_levels_stages_and_status(secured):
    server = secured(encryption_config(("key1", new_key())))
    server.kubectl("create", "secret", "generic", "audited", "--from-literal=password=N0t-In-The-Log")
    server.kubectl("get", "pods", "-n", "kube-system")
    server.kubectl("get", "configmap", "missing", check=False)
    server.kubectl("create", "--raw", "/api/v1/namespaces/default/pods/nopod/exec?command=ls&stdout=true",
                   "-f", "-", input="{}", check=False)
    log = secured.log

    def find(pred):
        return [e for e in audit_events(log) if pred(e)] if log.exists() else []
    wait_for(lambda: find(lambda e: e["objectRef"].get("subresource") == "exec" and
                          e["stage"] == "ResponseComplete" if "objectRef" in e else False),
             timeout=20, what="the exec audit event")
    text = log.read_text()
    assert "N0t-In-The-Log" not in text and base64.b64encode(b"N0t-In-The-Log").decode() not in text

    created = find(lambda e: e.get("objectRef", {}).get("resource") == "secrets" and e["verb"] == "create")
    assert [e["stage"] for e in created] == ["RequestReceived", "ResponseComplete"]
    done = created[-1]
    assert done["level"] == "Metadata" and done["user"]["username"] == "system:admin"
    assert done["objectRef"] == {"resource": "secrets", "namespace": "default", "name": "audited",
                                 "apiVersion": "v1"}
    assert done["responseStatus"]["code"] == 201 and "requestObject" not in done
    assert done["userAgent"].startswith("kubectl")
    assert done["annotations"]["authorization.k8s.io/decision"] == "allow"
    assert created[0]["auditID"] == done["auditID"]

    # kubectl's list (controllers list pods too, cluster-wide)
    listed = find(lambda e: e.get("objectRef", {}).get("resource") == "pods" and e["verb"] == "list"
                  and e["stage"] == "ResponseComplete" and e.get("userAgent", "").startswith("kubectl"))
    assert listed and listed[-1]["objectRef"]["namespace"] == "kube-system"
    assert listed[-1]["responseStatus"] == {"metadata": {}, "code": 200}

    missing = find(lambda e: e.get("objectRef", {}).get("name") == "missing" and e["stage"] == "ResponseComplete")
    assert missing[-1]["level"] == "RequestResponse" and missing[-1]["responseStatus"]["code"] == 404
    assert missing[-1]["responseStatus"]["reason"] == "NotFound"
    assert missing[-1]["responseObject"]["kind"] == "Status"

    execs = find(lambda e: e.get("objectRef", {}).get("subresource") == "exec")
    assert [e["stage"] for e in execs] == ["RequestReceived", "ResponseStarted", "ResponseComplete"]
    assert execs[-1]["verb"] == "create" and execs[-1]["objectRef"]["name"] == "nopod"
    assert execs[-1]["responseStatus"]["code"] == 404
    for e in audit_events(log):
        assert re.fullmatch(r"[0-9a-f-]{36}", e["auditID"]) and e["sourceIPs"] == ["127.0.0.1"]


def test_audit_log_rotates_at_maxsize(secured, tmp_path):
    server = secured(encryption_config(("key1", new_key())), "--audit-log-maxsize", "1",
                     "--audit-log-maxbackup", "2")
    big = tmp_path / "big.txt"
    big.write_text("x" * 300_000)
    server.kubectl("create", "configmap", "big", f"--from-file=big={big}")
    for _ in range(8):  # each get logs the 300 kB object: several megabytes of log
        server.kubectl("get", "configmap", "big", "-o", "name")
    log = secured.log

    def backups():
        return sorted(p for p in log.parent.iterdir() if p.name != log.name)
    wait_for(lambda: len(backups()) == 2, timeout=20, what="two rotated audit logs")
    server.kubectl("get", "configmap", "big", "-o", "name")
    server.kubectl("get", "configmap", "big", "-o", "name")
    server.stop()  # the log stops changing (components keep writing to it while the server runs)
    assert len(backups()) == 2  # older ones removed (--audit-log-maxbackup)
    for path in [log, *backups()]:
        assert path == log or re.fullmatch(r"audit-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}\d*\.log", path.name)
        assert 0 < path.stat().st_size <= 1024 * 1024
        assert all(json.loads(line)["kind"] == "Event" for line in path.read_text().splitlines())
