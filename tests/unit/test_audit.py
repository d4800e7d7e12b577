"""The audit log: policy matching, the Event shape, stages, annotations and rotation."""

from __future__ import annotations

import asyncio
import os
import re

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer

from k8py.apiserver import pki, request_context
from k8py.apiserver.audit.log import AuditLog
from k8py.apiserver.audit.policy import PolicyError, RequestAttributes, parse
from k8py.apiserver.authn import Authenticator, UserInfo
from k8py.apiserver.server import APIServer, ServerConfig

TOKEN = "unit-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}
JANE = UserInfo("jane", groups=("devs", "system:authenticated"))

POLICY = """
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: None
  nonResourceURLs: ["/version", "/healthz*"]
- level: Metadata
  resources: [{group: "", resources: [secrets, configmaps]}]
- level: Request
  users: [jane]
  verbs: [create]
- level: RequestResponse
  resources: [{group: apps, resources: ["deployments/*"]}]
- level: Metadata
  namespaces: [kube-system]
  omitStages: [ResponseStarted]
- level: RequestResponse
  userGroups: [devs]
  resources: [{group: "", resources: [pods], resourceNames: [web]}]
- level: Metadata
  resources: [{group: "", resources: ["*/status"]}]
- level: Metadata
  nonResourceURLs: ["/apis/*"]
"""


def attrs(verb="get", resource="", group="", subresource="", namespace="default", name="", user=JANE,
          path="", is_resource=True):
    return RequestAttributes(user=user, verb=verb, is_resource=is_resource, path=path, group=group,
                             resource=resource, subresource=subresource, namespace=namespace, name=name)


def level(policy, a) -> str:
    return policy.evaluate(a).level


def test_first_matching_rule_wins_and_criteria():
    p = parse(POLICY)
    admin = UserInfo("admin", groups=("system:masters",))
    assert level(p, attrs(resource="secrets", verb="create")) == "Metadata"  # before jane's create rule
    assert level(p, attrs(resource="pods", verb="create")) == "Request"
    assert level(p, attrs(resource="pods", verb="create", user=admin)) == "None"
    assert level(p, attrs(resource="deployments", group="apps", subresource="scale")) == "RequestResponse"
    # "deployments/*" covers the resource itself too (as upstream); "*/status" only the subresource
    assert level(p, attrs(resource="deployments", group="apps", user=UserInfo("bob"))) == "RequestResponse"
    assert level(p, attrs(resource="nodes", namespace="", user=UserInfo("bob"))) == "None"
    assert level(p, attrs(resource="pods", namespace="kube-system", user=admin)) == "Metadata"
    assert level(p, attrs(resource="pods", name="web", user=JANE)) == "RequestResponse"
    assert level(p, attrs(resource="pods", name="db", user=JANE)) == "None"  # resourceNames
    assert level(p, attrs(resource="pods", name="web", user=admin)) == "None"  # userGroups
    assert level(p, attrs(resource="nodes", subresource="status", namespace="", user=admin)) == "Metadata"
    assert level(p, attrs(path="/healthz/ready", is_resource=False, resource="")) == "None"
    assert level(p, attrs(path="/apis/apps", is_resource=False, resource="")) == "Metadata"
    assert level(p, attrs(path="/api", is_resource=False, resource="", user=admin)) == "None"
    # a request that failed authentication has no user: rules naming users or groups never match it
    assert level(p, attrs(path="/apis/x", is_resource=False, user=None)) == "Metadata"
    cfg = p.evaluate(attrs(resource="pods", namespace="kube-system", user=admin))
    assert cfg.omit_stages == {"RequestReceived", "ResponseStarted"}


def test_omit_managed_fields_rule_overrides_policy():
    p = parse("apiVersion: audit.k8s.io/v1\nkind: Policy\nomitManagedFields: true\nrules:\n"
              "- {level: Request, users: [jane], omitManagedFields: false}\n- {level: Request}\n")
    assert p.evaluate(attrs()).omit_managed_fields is False
    assert p.evaluate(attrs(user=UserInfo("bob"))).omit_managed_fields is True


@pytest.mark.parametrize("text,message", [
    ("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Everything\n", 'Unsupported value: "Everything"'),
    ("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- {level: None, nonResourceURLs: [/x], namespaces: [a]}\n",
     "rules cannot apply to both regular resources and non-resource URLs"),
    ("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- {level: None, omitStages: [Done]}\n",
     'omitStages[0]: Unsupported value: "Done"'),
    ("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: []\n", "0 rules"),
    ("apiVersion: v1\nkind: ConfigMap\n", "expected kind"),
])
def test_policy_errors(text, message):
    with pytest.raises(PolicyError) as err:
        parse(text)
    assert message in str(err.value)


def test_rotation_keeps_max_backups(tmp_path):
    path = tmp_path / "audit.log"
    log = AuditLog(str(path), max_backups=2, max_size_mb=1)
    line = b'{"x":"' + b"a" * 1000 + b'"}\n'
    for _ in range(4 * 1050):  # about four megabytes: three rotations
        log.write(line)
    log.close()
    backups = log.backups()
    assert len(backups) == 2
    for b in backups:
        assert re.fullmatch(r"audit-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}\d*\.log", os.path.basename(b)), b
        assert os.path.getsize(b) <= 1024 * 1024
    assert os.path.getsize(path) <= 1024 * 1024
    # every line that is kept is whole
    for p in [path, *backups]:
        assert all(orjson.loads(x) for x in p.read_bytes().splitlines()) if hasattr(p, "read_bytes") else \
            all(orjson.loads(x) for x in open(p, "rb").read().splitlines())


# ---- the API server writing the log ---------------------------------------

FULL_POLICY = """
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: None
  nonResourceURLs: ["/healthz*"]
- level: Metadata
  resources: [{group: "", resources: [secrets]}]
- level: RequestResponse
  resources: [{group: "", resources: [configmaps]}]
  omitManagedFields: true
- level: Metadata
"""


@pytest.fixture
async def audited(tmp_path):
    (tmp_path / "policy.yaml").write_text(FULL_POLICY)
    log_path = tmp_path / "audit" / "audit.log"
    api = APIServer(ServerConfig(data_dir=tmp_path, audit_policy_file=tmp_path / "policy.yaml",
                                 audit_log_path=str(log_path)))
    api.authenticator = Authenticator.from_config(pki.ensure_pki(tmp_path / "tls"), TOKEN)
    await api.start()
    client = TestClient(TestServer(api.app()))
    await client.start_server()
    client.api = api

    async def events():
        await asyncio.sleep(0)
        deadline = asyncio.get_running_loop().time() + 10
        while True:  # the writer thread appends in the background
            backend = client.api.audit.backend
            drained = not backend._pending and backend._queued == 0  # checked before reading: nothing missed
            text = log_path.read_bytes() if log_path.exists() else b""
            lines = [orjson.loads(x) for x in text.splitlines()]
            if lines and (drained or asyncio.get_running_loop().time() > deadline):
                return lines
            await asyncio.sleep(0.05)
    client.events = events
    yield client
    await client.close()
    await api.stop()


def by_id(events, audit_id):
    return [e for e in events if e["auditID"] == audit_id]


async def test_events_for_a_create_with_stages_user_and_object_ref(audited):
    body = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s1"}, "stringData": {"k": "topsecret"}}
    resp = await audited.post("/api/v1/namespaces/default/secrets", json=body,
                              headers={**HEADERS, "User-Agent": "kubectl/v1.32.0"})
    assert resp.status == 201
    audit_id = resp.headers["Audit-Id"]
    events = by_id(await audited.events(), audit_id)
    assert [e["stage"] for e in events] == ["RequestReceived", "ResponseComplete"]
    done = events[-1]
    assert done["kind"] == "Event" and done["apiVersion"] == "audit.k8s.io/v1" and done["level"] == "Metadata"
    assert done["verb"] == "create" and done["requestURI"] == "/api/v1/namespaces/default/secrets"
    assert done["user"]["username"] == "system:admin" and "system:masters" in done["user"]["groups"]
    assert done["objectRef"] == {"resource": "secrets", "namespace": "default", "name": "s1", "apiVersion": "v1"}
    assert done["responseStatus"] == {"metadata": {}, "code": 201}
    assert done["sourceIPs"] == ["127.0.0.1"] and done["userAgent"] == "kubectl/v1.32.0"
    assert done["annotations"]["authorization.k8s.io/decision"] == "allow"
    assert "authorization.k8s.io/reason" in done["annotations"]
    assert "requestObject" not in done and "responseObject" not in done
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", done["stageTimestamp"])
    assert done["requestReceivedTimestamp"] <= done["stageTimestamp"]
    assert list(done)[-3:] == ["requestReceivedTimestamp", "stageTimestamp", "annotations"]
    assert b"topsecret" not in orjson.dumps(await audited.events())


async def test_request_response_level_objects_and_error_status(audited):
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c1"}, "data": {"a": "b"}}
    resp = await audited.post("/api/v1/namespaces/default/configmaps", json=body, headers=HEADERS)
    created = by_id(await audited.events(), resp.headers["Audit-Id"])[-1]
    assert created["level"] == "RequestResponse"
    assert created["requestObject"]["data"] == {"a": "b"}
    assert created["responseObject"]["metadata"]["uid"] and "managedFields" not in created["responseObject"]["metadata"]
    resp = await audited.get("/api/v1/namespaces/default/configmaps/missing", headers=HEADERS)
    assert resp.status == 404
    missing = by_id(await audited.events(), resp.headers["Audit-Id"])[-1]
    assert missing["responseStatus"] == {"metadata": {}, "status": "Failure",
                                         "message": 'configmaps "missing" not found', "reason": "NotFound",
                                         "details": {"name": "missing", "kind": "configmaps"}, "code": 404}


async def test_impersonation_client_audit_id_and_failed_authentication(audited):
    resp = await audited.get("/api/v1/namespaces/default/pods", headers={
        **HEADERS, "Impersonate-User": "jane", "Audit-ID": "my-own-id"})
    assert resp.headers["Audit-Id"] == "my-own-id"
    e = by_id(await audited.events(), "my-own-id")[-1]
    assert e["user"]["username"] == "system:admin" and e["impersonatedUser"]["username"] == "jane"
    assert e["verb"] == "list" and e["objectRef"] == {"resource": "pods", "namespace": "default",
                                                      "apiVersion": "v1"}
    resp = await audited.get("/api/v1/pods", headers={"Authorization": "Bearer wrong"})
    assert resp.status == 401
    events = by_id(await audited.events(), resp.headers["Audit-Id"])
    assert [(e["stage"], e["user"], e["responseStatus"]["code"]) for e in events] == [("ResponseStarted", {}, 401)]
    assert events[0]["responseStatus"]["message"] == "Authentication failed, attempted: bearer"
    resp = await audited.get("/healthz", headers=HEADERS)  # level None: nothing
    assert resp.status == 200 and "Audit-Id" in resp.headers
    assert not by_id(await audited.events(), resp.headers["Audit-Id"])


async def test_watch_has_response_started(audited):
    resp = await audited.get("/api/v1/namespaces/default/configmaps?watch=true&timeoutSeconds=1", headers=HEADERS)
    assert resp.status == 200
    await resp.read()
    events = by_id(await audited.events(), resp.headers["Audit-Id"])
    assert [e["stage"] for e in events] == ["RequestReceived", "ResponseStarted", "ResponseComplete"]
    assert events[1]["responseStatus"] == {"metadata": {}, "code": 200} and events[1]["verb"] == "watch"
    assert "responseObject" not in events[2]


async def test_admission_annotations_reach_the_event(audited, monkeypatch):
    strategy = audited.api.strategy
    original = strategy.admit_create

    async def admit_create(resource, obj, **kw):
        request_context.add_audit_annotation("example.k8py.io/from-admission", "seen")
        return await original(resource, obj, **kw)
    monkeypatch.setattr(strategy, "admit_create", admit_create)
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c2"}}
    resp = await audited.post("/api/v1/namespaces/default/configmaps", json=body, headers=HEADERS)
    assert resp.status == 201
    done = by_id(await audited.events(), resp.headers["Audit-Id"])[-1]
    assert done["annotations"]["example.k8py.io/from-admission"] == "seen"


async def test_audit_id_header_without_an_audit_log(client):
    resp = await client.get("/api/v1/namespaces", headers=HEADERS)
    other = await client.get("/api/v1/namespaces", headers={**HEADERS, "Audit-ID": "given"})
    assert re.fullmatch(r"[0-9a-f-]{36}", resp.headers["Audit-Id"]) and other.headers["Audit-Id"] == "given"


async def test_pod_security_annotations_reach_the_event(audited):
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "psa", "labels": {
        "pod-security.kubernetes.io/enforce": "privileged", "pod-security.kubernetes.io/audit": "restricted"}}}
    assert (await audited.post("/api/v1/namespaces", json=ns, headers=HEADERS)).status == 201
    # no controller-manager here: make the account ServiceAccount admission looks for
    account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}
    assert (await audited.post("/api/v1/namespaces/psa/serviceaccounts", json=account, headers=HEADERS)).status == 201
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
           "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    resp = await audited.post("/api/v1/namespaces/psa/pods", json=pod, headers=HEADERS)
    assert resp.status == 201, await resp.text()
    done = by_id(await audited.events(), resp.headers["Audit-Id"])[-1]
    assert done["annotations"]["pod-security.kubernetes.io/enforce-policy"] == "privileged:latest"
    assert done["annotations"]["pod-security.kubernetes.io/audit-violations"].startswith(
        'would violate PodSecurity "restricted:latest"')


async def test_an_internal_error_is_logged_as_panic(audited, monkeypatch):
    from k8py.apiserver import handlers

    async def broken(req):
        raise RuntimeError("boom")
    monkeypatch.setattr(handlers, "handle", broken)
    resp = await audited.get("/api/v1/namespaces/default/pods", headers=HEADERS)
    assert resp.status == 500
    events = by_id(await audited.events(), resp.headers["Audit-Id"])
    assert [e["stage"] for e in events] == ["RequestReceived", "Panic"]
    assert events[-1]["responseStatus"]["code"] == 500
    assert events[-1]["responseStatus"]["message"] == "APIServer panic'd: boom"
