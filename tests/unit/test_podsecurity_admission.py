"""PodSecurity admission through the real HTTP app: namespace labels, pods
refused or warned about, workload templates, the namespace check, the
AdmissionConfiguration defaults and exemptions, audit annotations."""

from __future__ import annotations

import contextvars

import pytest
from aiohttp.test_utils import TestClient, TestServer

from k8py.apiserver import pki, request_context
from k8py.apiserver.admission_config import ConfigError
from k8py.apiserver.authn import Authenticator
from k8py.apiserver.podsecurity import PodSecurity, load_config
from k8py.apiserver.podsecurity.config import from_object
from k8py.apiserver.podsecurity.policy import LevelVersion, Policy, policy_from_labels
from k8py.apiserver.server import APIServer, ServerConfig
from tests.unit.conftest import HEADERS, TOKEN

PLAIN_POD_VIOLATIONS = (
    'allowPrivilegeEscalation != false (container "c" must set securityContext.allowPrivilegeEscalation=false), '
    'unrestricted capabilities (container "c" must set securityContext.capabilities.drop=["ALL"]), '
    'runAsNonRoot != true (pod or container "c" must set securityContext.runAsNonRoot=true), '
    'seccompProfile (pod or container "c" must set securityContext.seccompProfile.type to "RuntimeDefault" '
    'or "Localhost")')


def pod(name: str, privileged: bool = False, **spec) -> dict:
    container = {"name": "c", "image": "busybox"}
    if privileged:
        container["securityContext"] = {"privileged": True}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [container], **spec}}


def deployment(name: str) -> dict:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": labels}, "template": {
                "metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}


def warnings_of(resp) -> list[str]:
    out = []
    for value in resp.headers.getall("Warning", []):
        code, agent, text = value.split(" ", 2)
        assert code == "299" and agent == "-"
        out.append(text[1:-1].replace('\\"', '"').replace("\\\\", "\\"))
    return out


async def make_namespace(client, name: str, **labels) -> None:
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": name, "labels": {f"pod-security.kubernetes.io/{k.replace('_', '-')}": v for k, v in labels.items()}}}
    resp = await client.post("/api/v1/namespaces", json=body, headers=HEADERS)
    assert resp.status == 201, await resp.text()


async def label_namespace(client, name: str, **labels):
    patch = {"metadata": {"labels": {f"pod-security.kubernetes.io/{k.replace('_', '-')}": v
                                     for k, v in labels.items()}}}
    return await client.patch(f"/api/v1/namespaces/{name}", json=patch,
                              headers={**HEADERS, "Content-Type": "application/merge-patch+json"})


# ---- policy from labels -------------------------------------------------------------

def test_labels_give_the_policy_and_unset_modes_take_the_defaults():
    labels = {"pod-security.kubernetes.io/enforce": "baseline", "pod-security.kubernetes.io/enforce-version": "v1.25",
              "pod-security.kubernetes.io/audit": "restricted"}
    policy, causes = policy_from_labels(labels, Policy())
    assert not causes
    assert str(policy.enforce) == "baseline:v1.25" and str(policy.audit) == "restricted:latest"
    # warn was not set: it follows the stricter enforce level and its version
    assert str(policy.warn) == "baseline:v1.25"
    policy, _ = policy_from_labels({"pod-security.kubernetes.io/enforce": "baseline",
                                    "pod-security.kubernetes.io/warn": "privileged"}, Policy())
    assert str(policy.warn) == "privileged:latest"
    assert policy_from_labels({}, Policy()) == (Policy(), [])


def test_bad_labels_fail_closed_for_enforce_and_open_for_audit_and_warn():
    policy, causes = policy_from_labels({"pod-security.kubernetes.io/enforce": "strict",
                                         "pod-security.kubernetes.io/audit-version": "1.25",
                                         "pod-security.kubernetes.io/warn": "nope"}, Policy())
    assert policy.enforce == LevelVersion("restricted", None)
    assert policy.warn.level == "privileged"
    assert [c.describe() for c in causes] == [
        'metadata.labels[pod-security.kubernetes.io/enforce]: Invalid value: "strict": must be one of privileged, '
        'baseline, restricted',
        'metadata.labels[pod-security.kubernetes.io/audit-version]: Invalid value: "1.25": must be "latest" or "v1.x"',
        'metadata.labels[pod-security.kubernetes.io/warn]: Invalid value: "nope": must be one of privileged, '
        'baseline, restricted']


# ---- through the API --------------------------------------------------------------

async def test_enforce_refuses_a_violating_pod_with_upstreams_words_and_stores_nothing(client):
    await make_namespace(client, "locked", enforce="restricted")
    for query in ("?dryRun=All", ""):
        resp = await client.post(f"/api/v1/namespaces/locked/pods{query}", json=pod("bad", privileged=True),
                                 headers=HEADERS)
        assert resp.status == 403
        status = await resp.json()
        assert status["reason"] == "Forbidden"
        assert status["message"] == (
            'pods "bad" is forbidden: violates PodSecurity "restricted:latest": privileged (container "c" must not '
            'set securityContext.privileged=true), ' + PLAIN_POD_VIOLATIONS)
        assert status["details"] == {"name": "bad", "kind": "pods"}
        assert warnings_of(resp) == []
    resp = await client.get("/api/v1/namespaces/locked/pods/bad", headers=HEADERS)
    assert resp.status == 404


async def test_enforce_admits_a_conforming_pod(client):
    await make_namespace(client, "locked2", enforce="restricted")
    good = pod("good")
    good["spec"]["securityContext"] = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    good["spec"]["containers"][0]["securityContext"] = {"allowPrivilegeEscalation": False,
                                                        "capabilities": {"drop": ["ALL"]}}
    resp = await client.post("/api/v1/namespaces/locked2/pods", json=good, headers=HEADERS)
    assert resp.status == 201, await resp.text()
    assert warnings_of(resp) == []


async def test_warn_admits_with_a_warning_for_pods_and_workloads(client):
    await make_namespace(client, "warned", warn="restricted", warn_version="v1.32")
    resp = await client.post("/api/v1/namespaces/warned/pods", json=pod("p"), headers=HEADERS)
    assert resp.status == 201
    assert warnings_of(resp) == ['would violate PodSecurity "restricted:v1.32": ' + PLAIN_POD_VIOLATIONS]
    resp = await client.post("/apis/apps/v1/namespaces/warned/deployments", json=deployment("d"), headers=HEADERS)
    assert resp.status == 201
    assert warnings_of(resp) == ['would violate PodSecurity "restricted:v1.32": ' + PLAIN_POD_VIOLATIONS]
    cron = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "cj"}, "spec": {
        "schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}}}}
    resp = await client.post("/apis/batch/v1/namespaces/warned/cronjobs", json=cron, headers=HEADERS)
    assert resp.status == 201
    assert len(warnings_of(resp)) == 1


async def test_workloads_are_not_enforced_but_warned_by_the_enforce_level(client):
    await make_namespace(client, "enforced", enforce="baseline")
    bad = deployment("d")
    bad["spec"]["template"]["spec"]["hostNetwork"] = True
    resp = await client.post("/apis/apps/v1/namespaces/enforced/deployments", json=bad, headers=HEADERS)
    assert resp.status == 201
    assert warnings_of(resp) == ['would violate PodSecurity "baseline:latest": host namespaces (hostNetwork=true)']
    # a status update is a subresource: not evaluated again
    status = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "status": {"replicas": 0}}
    resp = await client.put("/apis/apps/v1/namespaces/enforced/deployments/d/status", json=status, headers=HEADERS)
    assert resp.status == 200 and warnings_of(resp) == []


async def test_bad_namespace_labels_are_refused(client):
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {
        "name": "badlabels", "labels": {"pod-security.kubernetes.io/enforce": "strict"}}}
    resp = await client.post("/api/v1/namespaces", json=body, headers=HEADERS)
    assert resp.status == 422
    status = await resp.json()
    assert status["message"] == ('Namespace "badlabels" is invalid: metadata.labels[pod-security.kubernetes.io/'
                                 'enforce]: Invalid value: "strict": must be one of privileged, baseline, restricted')
    await make_namespace(client, "goodlabels")
    resp = await label_namespace(client, "goodlabels", warn_version="1.30")
    assert resp.status == 422
    assert (await resp.json())["details"]["causes"][0]["field"] == \
        "metadata.labels[pod-security.kubernetes.io/warn-version]"


async def test_raising_the_enforce_level_warns_about_existing_pods(client):
    await make_namespace(client, "existing")
    for name in ("b-pod", "a-pod"):
        resp = await client.post("/api/v1/namespaces/existing/pods", json=pod(name), headers=HEADERS)
        assert resp.status == 201
    resp = await client.post("/api/v1/namespaces/existing/pods", json=pod("priv", privileged=True), headers=HEADERS)
    assert resp.status == 201
    resp = await label_namespace(client, "existing", enforce="restricted")
    assert resp.status == 200
    reasons = "allowPrivilegeEscalation != false, unrestricted capabilities, runAsNonRoot != true, seccompProfile"
    assert warnings_of(resp) == [
        'existing pods in namespace "existing" violate the new PodSecurity enforce level "restricted:latest"',
        f"a-pod (and 1 other pod): {reasons}",
        f"priv: privileged, {reasons}",
    ]
    # the same level again, or a relaxed one, checks nothing
    resp = await label_namespace(client, "existing", enforce="baseline")
    assert resp.status == 200 and warnings_of(resp) == []
    resp = await label_namespace(client, "existing", enforce="baseline", enforce_version="v1.30")
    assert warnings_of(resp) == [
        'existing pods in namespace "existing" violate the new PodSecurity enforce level "baseline:v1.30"',
        "priv: privileged"]


async def test_pod_updates_are_checked_only_when_the_image_changes(client):
    await make_namespace(client, "upd")
    resp = await client.post("/api/v1/namespaces/upd/pods", json=pod("p", privileged=True), headers=HEADERS)
    assert resp.status == 201
    resp = await label_namespace(client, "upd", enforce="baseline")
    assert resp.status == 200
    merge = {**HEADERS, "Content-Type": "application/merge-patch+json"}
    resp = await client.patch("/api/v1/namespaces/upd/pods/p", json={"metadata": {"labels": {"a": "b"}}},
                              headers=merge)
    assert resp.status == 200
    strategic = {**HEADERS, "Content-Type": "application/strategic-merge-patch+json"}
    resp = await client.patch("/api/v1/namespaces/upd/pods/p",
                              json={"spec": {"containers": [{"name": "c", "image": "busybox:2"}]}}, headers=strategic)
    assert resp.status == 403
    assert 'violates PodSecurity "baseline:latest": privileged' in (await resp.json())["message"]


# ---- configuration ---------------------------------------------------------------

@pytest.fixture
async def configured(tmp_path):
    (tmp_path / "psa.yaml").write_text("""
apiVersion: pod-security.admission.config.k8s.io/v1
kind: PodSecurityConfiguration
defaults:
  enforce: baseline
  warn: restricted
exemptions:
  namespaces: [free]
  runtimeClasses: [trusted]
  usernames: [system:admin]
""")
    (tmp_path / "admission.yaml").write_text("""
apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: PodSecurity
  path: psa.yaml
""")
    api = APIServer(ServerConfig(data_dir=tmp_path, admission_control_config_file=tmp_path / "admission.yaml"))
    tokens = tmp_path / "tokens.csv"
    tokens.write_text(f"{TOKEN},system:admin,1,system:masters\nother-token,alice,2,system:masters\n")
    api.authenticator = Authenticator.from_config(pki.ensure_pki(tmp_path / "tls"), None, tokens)
    await api.start()
    client = TestClient(TestServer(api.app()))
    await client.start_server()
    yield client
    await client.close()
    await api.stop()


async def test_configuration_defaults_and_exemptions_apply(configured):
    alice = {"Authorization": "Bearer other-token"}
    # unlabelled namespace: the configured defaults (enforce baseline, warn restricted)
    resp = await configured.post("/api/v1/namespaces/default/pods", json=pod("priv", privileged=True), headers=alice)
    assert resp.status == 403
    assert (await resp.json())["message"].startswith('pods "priv" is forbidden: violates PodSecurity '
                                                     '"baseline:latest": privileged')
    resp = await configured.post("/api/v1/namespaces/default/pods", json=pod("plain"), headers=alice)
    assert resp.status == 201
    assert warnings_of(resp) == ['would violate PodSecurity "restricted:latest": ' + PLAIN_POD_VIOLATIONS]
    # an exempt user, namespace or runtime class is let through
    resp = await configured.post("/api/v1/namespaces/default/pods", json=pod("admin", privileged=True),
                                 headers=HEADERS)
    assert resp.status == 201
    await make_namespace(configured, "free")
    resp = await configured.post("/api/v1/namespaces/free/pods", json=pod("priv", privileged=True), headers=alice)
    assert resp.status == 201
    runtime_class = {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "trusted"},
                     "handler": "runc"}
    assert (await configured.post("/apis/node.k8s.io/v1/runtimeclasses", json=runtime_class,
                                  headers=HEADERS)).status == 201
    resp = await configured.post("/api/v1/namespaces/default/pods",
                                 json=pod("rc", privileged=True, runtimeClassName="trusted"), headers=alice)
    assert resp.status == 201, await resp.text()
    # labelling an exempt namespace says its policy is ignored
    resp = await label_namespace(configured, "free", enforce="restricted")
    assert warnings_of(resp) == ['namespace "free" is exempt from Pod Security, and the policy '
                                 '(enforce=restricted:latest) will be ignored']


def test_no_configuration_means_everything_privileged(tmp_path):
    assert load_config(None).defaults == Policy()
    (tmp_path / "a.yaml").write_text("apiVersion: apiserver.config.k8s.io/v1\nkind: AdmissionConfiguration\n"
                                     "plugins: []\n")
    assert load_config(tmp_path / "a.yaml").defaults.fully_privileged()


@pytest.mark.parametrize("body,message", [
    ({"defaults": {"enforce": "strict"}}, 'defaults.enforce: Invalid value: "strict"'),
    ({"defaults": {"warn-version": "1.2"}}, 'defaults.warn-version: Invalid value: "1.2": must be "latest" or "v1.x"'),
    ({"exemptions": {"namespaces": ["Bad_NS"]}}, "exemptions.namespaces[0]: Invalid value"),
    ({"exemptions": {"usernames": ["a", "a"]}}, 'exemptions.usernames[1]: Duplicate value: "a"'),
    ({"exemptions": {"usernames": [""]}}, "username must not be empty"),
])
def test_bad_configuration_stops_the_server(body, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        from_object({"apiVersion": "pod-security.admission.config.k8s.io/v1", "kind": "PodSecurityConfiguration",
                     **body})
    with pytest.raises(ConfigError):
        from_object({"apiVersion": "v1", "kind": "ConfigMap"})


def test_bad_admission_configuration_file_stops_the_server(tmp_path):
    with pytest.raises(ConfigError):
        load_config(tmp_path / "missing.yaml")
    (tmp_path / "a.yaml").write_text("kind: Something\n")
    with pytest.raises(ConfigError):
        APIServer(ServerConfig(data_dir=tmp_path, admission_control_config_file=tmp_path / "a.yaml"))


# ---- audit annotations -------------------------------------------------------------

def _pods():
    from k8py.api.builtin import builtin_registry
    return builtin_registry().lookup("", "v1", "pods")


class _FakeAPI:
    def __init__(self, labels):
        self.labels = labels

    def namespace(self, name):
        return {"metadata": {"name": name, "labels": self.labels}}


def _annotations_for(labels, obj, plugin=None) -> tuple[dict, list]:
    """What one request (a context of its own) records."""
    resource = _pods()

    def one_request():
        ctx = request_context.begin()
        (plugin or PodSecurity()).admit(_FakeAPI(labels), resource, obj)
        return ctx.audit_annotations, ctx.warnings
    return contextvars.Context().run(one_request)


def test_audit_level_annotates_the_request_for_the_audit_log():
    obj = pod("p")
    obj["metadata"]["namespace"] = "ns"
    annotations, warnings = _annotations_for({"pod-security.kubernetes.io/audit": "restricted"}, obj)
    assert annotations == {
        "pod-security.kubernetes.io/enforce-policy": "privileged:latest",
        "pod-security.kubernetes.io/audit-violations": 'would violate PodSecurity "restricted:latest": ' +
                                                       PLAIN_POD_VIOLATIONS}
    assert warnings == []
    annotations, _ = _annotations_for({}, obj)
    assert annotations == {"pod-security.kubernetes.io/enforce-policy": "privileged:latest"}
    exempting = PodSecurity(from_object({"apiVersion": "pod-security.admission.config.k8s.io/v1",
                                         "kind": "PodSecurityConfiguration",
                                         "exemptions": {"namespaces": ["ns"]}}))
    annotations, _ = _annotations_for({"pod-security.kubernetes.io/enforce": "restricted"}, obj, exempting)
    assert annotations == {"pod-security.kubernetes.io/exempt": "namespace"}
    # outside any request nothing is recorded, and nothing fails
    PodSecurity().admit(_FakeAPI({"pod-security.kubernetes.io/warn": "restricted"}), _pods(), obj)


async def test_ephemeral_containers_are_checked_like_the_pods_own(client):
    await make_namespace(client, "debugged", enforce="baseline")
    resp = await client.post("/api/v1/namespaces/debugged/pods", json=pod("p"), headers=HEADERS)
    assert resp.status == 201
    strategic = {**HEADERS, "Content-Type": "application/strategic-merge-patch+json"}
    debug = {"spec": {"ephemeralContainers": [{"name": "dbg", "image": "busybox", "targetContainerName": "c",
                                               "securityContext": {"privileged": True}}]}}
    resp = await client.patch("/api/v1/namespaces/debugged/pods/p/ephemeralcontainers", json=debug,
                              headers=strategic)
    assert resp.status == 403
    assert (await resp.json())["message"] == ('pods "p" is forbidden: violates PodSecurity "baseline:latest": '
                                              'privileged (container "dbg" must not set '
                                              'securityContext.privileged=true)')
    debug["spec"]["ephemeralContainers"][0].pop("securityContext")
    resp = await client.patch("/api/v1/namespaces/debugged/pods/p/ephemeralcontainers", json=debug,
                              headers=strategic)
    assert resp.status == 200, await resp.text()


async def test_mirror_pods_and_kube_system_have_no_special_treatment(client):
    # kube-system has no labels: privileged by default, as upstream
    resp = await client.post("/api/v1/namespaces/kube-system/pods", json=pod("priv", privileged=True),
                             headers=HEADERS)
    assert resp.status == 201 and warnings_of(resp) == []
    # a kubelet's mirror pod is a pod like any other
    await make_namespace(client, "statics", enforce="baseline")
    mirror = pod("static-node1", privileged=True, nodeName="node1")
    mirror["metadata"]["annotations"] = {"kubernetes.io/config.mirror": "abc", "kubernetes.io/config.source": "file"}
    resp = await client.post("/api/v1/namespaces/statics/pods", json=mirror, headers=HEADERS)
    assert resp.status == 403
    assert 'violates PodSecurity "baseline:latest": privileged' in (await resp.json())["message"]


async def test_namespace_check_is_capped_and_sees_one_pod_per_controller_first(client, monkeypatch):
    from k8py.apiserver.podsecurity import admission as plugin
    monkeypatch.setattr(plugin, "NAMESPACE_MAX_PODS", 2)
    await make_namespace(client, "capped")
    owner = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u-1", "controller": True}
    for name in ("a-replica", "b-replica"):
        replica = pod(name)
        replica["metadata"]["ownerReferences"] = [owner]
        assert (await client.post("/api/v1/namespaces/capped/pods", json=replica, headers=HEADERS)).status == 201
    resp = await client.post("/api/v1/namespaces/capped/pods", json=pod("z-priv", privileged=True), headers=HEADERS)
    assert resp.status == 201
    resp = await label_namespace(client, "capped", enforce="baseline")
    # the second replica is checked last, so the cap leaves it out, not the privileged pod
    assert warnings_of(resp) == [
        "new PodSecurity enforce level only checked against the first 2 of 3 existing pods",
        'existing pods in namespace "capped" violate the new PodSecurity enforce level "baseline:latest"',
        "z-priv: privileged"]
