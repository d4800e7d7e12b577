"""Upstream conformance behaviours (tests/data/compat/conformance-v1.32.yaml)
shown against the in-process API server. Each test names the behaviour."""

from __future__ import annotations

import json

from tests.unit.conftest import CMS, HEADERS, create_cm, ensure_default_service_account
from tests.unit.volume_fixtures import protection_controllers

MERGE = {"Content-Type": "application/merge-patch+json", **HEADERS}


async def lines(resp, count):
    out = []
    while len(out) < count:
        out.append(json.loads(await resp.content.readline()))
    return out


async def test_find_kubernetes_service_in_default_namespace(client):
    body = await (await client.get("/api/v1/services", headers=HEADERS)).json()
    assert ("default", "kubernetes") in {(s["metadata"]["namespace"], s["metadata"]["name"]) for s in body["items"]}


async def test_discovery_preferred_version_for_each_group(client):
    groups = (await (await client.get("/apis", headers=HEADERS)).json())["groups"]
    assert groups
    for group in groups:
        preferred = group["preferredVersion"]["groupVersion"]
        assert preferred in [v["groupVersion"] for v in group["versions"]]
        one = await (await client.get(f"/apis/{group['name']}", headers=HEADERS)).json()
        assert one["preferredVersion"]["groupVersion"] == preferred


async def test_namespace_patching(client):
    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "patchme"}}
    assert (await client.post("/api/v1/namespaces", json=ns, headers=HEADERS)).status == 201
    await client.patch("/api/v1/namespaces/patchme", data=json.dumps({"metadata": {"labels": {"testLabel": "v"}}}),
                       headers=MERGE)
    got = await (await client.get("/api/v1/namespaces/patchme", headers=HEADERS)).json()
    assert got["metadata"]["labels"]["testLabel"] == "v"


async def test_secret_and_configmap_with_empty_key_are_refused(client):
    for path, kind in (("/api/v1/namespaces/default/secrets", "Secret"), (CMS, "ConfigMap")):
        body = {"apiVersion": "v1", "kind": kind, "metadata": {"name": "empty-key"}, "data": {"": "dmFsdWU="}}
        resp = await client.post(path, json=body, headers=HEADERS)
        assert resp.status == 422, kind
        assert (await client.get(f"{path}/empty-key", headers=HEADERS)).status == 404


async def test_watch_configmaps_from_resource_version(client):
    await create_cm(client, "from-rv")
    first = await (await client.patch(CMS + "/from-rv", data=json.dumps({"data": {"mutation": "1"}}),
                                      headers=MERGE)).json()
    await client.patch(CMS + "/from-rv", data=json.dumps({"data": {"mutation": "2"}}), headers=MERGE)
    await client.delete(CMS + "/from-rv", headers=HEADERS)
    rv = first["metadata"]["resourceVersion"]
    resp = await client.get(f"{CMS}?watch=true&resourceVersion={rv}&fieldSelector=metadata.name%3Dfrom-rv",
                            headers=HEADERS)
    got = await lines(resp, 2)
    assert [e["type"] for e in got] == ["MODIFIED", "DELETED"]
    assert got[0]["object"]["data"] == {"mutation": "2"}


async def test_watch_configmaps_label_changed(client):
    created = await create_cm(client, "labelled")
    await client.patch(CMS + "/labelled", data=json.dumps({"metadata": {"labels": {"watch": "yes"}}}),
                       headers=MERGE)
    rv = created["metadata"]["resourceVersion"]
    resp = await client.get(f"{CMS}?watch=true&resourceVersion={rv}&labelSelector=watch%3Dyes", headers=HEADERS)
    for patch in ({"data": {"m": "1"}}, {"metadata": {"labels": {"watch": "no"}}}, {"data": {"m": "2"}},
                  {"metadata": {"labels": {"watch": "yes"}}}, {"data": {"m": "3"}}):
        await client.patch(CMS + "/labelled", data=json.dumps(patch), headers=MERGE)
    got = await lines(resp, 5)
    # Stops matching -> DELETED; changes while not matching are not seen; matching again -> ADDED.
    assert [e["type"] for e in got] == ["ADDED", "MODIFIED", "DELETED", "ADDED", "MODIFIED"]
    assert got[3]["object"]["data"] == {"m": "2"} and got[4]["object"]["data"] == {"m": "3"}


# ---------------------------------------------------------------------------
# "X API operations" / "X lifecycle": discovery, create, get, list (label selector),
# watch, update, patch, status get/update/patch, deletecollection, delete.

import asyncio
import base64

import pytest

JSON_HEADERS = {"Content-Type": "application/json", **HEADERS}
STRATEGIC = {"Content-Type": "application/strategic-merge-patch+json", **HEADERS}
NS = "default"


async def call(client, method: str, path: str, body=None, headers=None):
    resp = await client.request(method, path, data=None if body is None else json.dumps(body),
                                headers=headers or JSON_HEADERS)
    text = await resp.text()
    return resp.status, (json.loads(text) if text else None)


def is_subset(sent, got) -> bool:
    """What we sent is in what the server stored (defaults may add more)."""
    if isinstance(sent, dict):
        return isinstance(got, dict) and all(is_subset(v, got.get(k)) for k, v in sent.items())
    if isinstance(sent, list):
        return isinstance(got, list) and len(sent) == len(got) and all(map(is_subset, sent, got))
    return sent == got


def collection_path(group: str, version: str, plural: str, namespaced: bool, ns: str = NS) -> str:
    prefix = f"/apis/{group}/{version}" if group else f"/api/{version}"
    return prefix + (f"/namespaces/{ns}" if namespaced else "") + f"/{plural}"


async def assert_discovered(client, group: str, version: str, plural: str, subresources=()):
    if group:
        groups = (await call(client, "GET", "/apis"))[1]["groups"]
        entry = next(g for g in groups if g["name"] == group)
        assert f"{group}/{version}" in [v["groupVersion"] for v in entry["versions"]]
        one = (await call(client, "GET", f"/apis/{group}"))[1]
        assert f"{group}/{version}" in [v["groupVersion"] for v in one["versions"]]
        listing = (await call(client, "GET", f"/apis/{group}/{version}"))[1]
    else:
        assert version in (await call(client, "GET", "/api"))[1]["versions"]
        listing = (await call(client, "GET", f"/api/{version}"))[1]
    names = {r["name"]: r for r in listing["resources"]}
    assert plural in names, f"{plural} not in discovery"
    for sub in subresources:
        assert f"{plural}/{sub}" in names, f"{plural}/{sub} not in discovery"
    return names[plural]


async def watch_events(client, path: str, rv: str, count: int, selector: str | None = None):
    query = f"?watch=true&resourceVersion={rv}" + (f"&labelSelector={selector}" if selector else "")
    resp = await client.get(path + query, headers=HEADERS)
    assert resp.status == 200
    try:
        return await asyncio.wait_for(lines(resp, count), 10)
    finally:
        resp.close()


async def watch_until_deleted(client, path: str, rv: str, selector: str):
    resp = await client.get(f"{path}?watch=true&resourceVersion={rv}&labelSelector={selector}", headers=HEADERS)
    assert resp.status == 200

    async def read():
        seen = []
        while not seen or seen[-1]["type"] != "DELETED":
            seen.append(json.loads(await resp.content.readline()))
        return seen
    try:
        return await asyncio.wait_for(read(), 10)
    finally:
        resp.close()


async def exercise_api_operations(client, group, version, kind, plural, spec_fields, *, namespaced=True,
                                  status=None, mutate=None):
    """Run one resource through every verb the conformance API tests name.

    spec_fields: the non-metadata fields of a valid object; status: a status to write
    through the /status subresource; mutate: a merge patch of a mutable spec field."""
    resource = await assert_discovered(client, group, version, plural, ("status",) if status else ())
    assert set(resource["verbs"]) >= {"create", "get", "list", "watch", "update", "patch", "delete",
                                      "deletecollection"}
    api_version = f"{group}/{version}" if group else version
    path = collection_path(group, version, plural, namespaced)

    def body(name, labels):
        return {"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "labels": labels},
                **json.loads(json.dumps(spec_fields))}

    code, before = await call(client, "GET", path)
    assert code == 200
    watch_rv = before["metadata"]["resourceVersion"]
    code, first = await call(client, "POST", path, body("conf-labelled", {"conformance": "yes"}))
    assert code == 201, first
    code, other = await call(client, "POST", path, body("conf-other", {"conformance": "no"}))
    assert code == 201, other
    code, got = await call(client, "GET", f"{path}/conf-labelled")
    assert code == 200 and is_subset(spec_fields, got), got

    code, listed = await call(client, "GET", f"{path}?labelSelector=conformance%3Dyes")
    assert code == 200 and [i["metadata"]["name"] for i in listed["items"]] == ["conf-labelled"]
    all_names = {i["metadata"]["name"] for i in (await call(client, "GET", path))[1]["items"]}
    assert {"conf-labelled", "conf-other"} <= all_names
    if namespaced:  # and across all namespaces
        everywhere = collection_path(group, version, plural, False) + "?labelSelector=conformance%3Dyes"
        code, listed = await call(client, "GET", everywhere)
        assert code == 200 and [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in listed["items"]] == [
            (NS, "conf-labelled")]

    got["metadata"]["labels"]["updated"] = "true"
    got["metadata"].setdefault("annotations", {})["updated"] = "true"
    code, updated = await call(client, "PUT", f"{path}/conf-labelled", got)
    assert code == 200, updated
    replaced = (await call(client, "GET", f"{path}/conf-labelled"))[1]["metadata"]
    assert replaced["labels"]["updated"] == "true" and replaced["annotations"]["updated"] == "true"

    patch = {"metadata": {"annotations": {"patched": "true"}}, **(mutate or {})}
    code, patched = await call(client, "PATCH", f"{path}/conf-labelled", patch, MERGE)
    assert code == 200, patched
    code, got = await call(client, "GET", f"{path}/conf-labelled")
    assert got["metadata"]["annotations"]["patched"] == "true" and is_subset(mutate or {}, got)
    modifications = 2  # the update and the patch above; each status write below that changes the object adds one

    if status:
        code, current = await call(client, "GET", f"{path}/conf-labelled/status")
        assert code == 200 and current["metadata"]["name"] == "conf-labelled"
        current["status"] = status
        code, after = await call(client, "PUT", f"{path}/conf-labelled/status", current)
        assert code == 200, after
        modifications += after["metadata"]["resourceVersion"] != current["metadata"]["resourceVersion"]
        code, got = await call(client, "GET", f"{path}/conf-labelled")
        assert is_subset(status, got["status"]), got.get("status")
        tampered = {"status": status, "spec": {"ignoredByStatus": True}} if "spec" in got else {"status": status}
        code, after = await call(client, "PATCH", f"{path}/conf-labelled/status", tampered, MERGE)
        assert code == 200, after
        modifications += after["metadata"]["resourceVersion"] != got["metadata"]["resourceVersion"]
        code, got = await call(client, "GET", f"{path}/conf-labelled/status")
        assert is_subset(status, got["status"]), got.get("status")
        assert "ignoredByStatus" not in (got.get("spec") or {}), "a status write must not change the spec"

    # An object with finalizers (pv/pvc-protection) is first marked for deletion, then removed.
    code, current = await call(client, "GET", f"{path}/conf-labelled")
    modifications += bool(current["metadata"].get("finalizers"))
    code, gone = await call(client, "DELETE", f"{path}?labelSelector=conformance%3Dyes")
    assert code == 200, gone
    seen = await watch_until_deleted(client, path, watch_rv, "conformance%3Dyes")
    types = [e["type"] for e in seen]
    assert types == ["ADDED"] + ["MODIFIED"] * modifications + ["DELETED"], types
    assert seen[0]["object"]["metadata"]["labels"] == {"conformance": "yes"}
    assert (await call(client, "GET", f"{path}/conf-labelled"))[0] == 404
    assert (await call(client, "GET", f"{path}/conf-other"))[0] == 200, "deletecollection took too much"

    code, _ = await call(client, "DELETE", f"{path}/conf-other")
    assert code == 200
    # Kinds with a protection finalizer (PVs, PVCs) go once their controller lets them.
    for _ in range(500):
        if (await call(client, "GET", f"{path}/conf-other"))[0] == 404:
            break
        await asyncio.sleep(0.02)
    assert (await call(client, "GET", f"{path}/conf-other"))[0] == 404


def _csr_request() -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    request = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "conformance")])).sign(key, hashes.SHA256())
    return base64.b64encode(request.public_bytes(serialization.Encoding.PEM)).decode()


POD_SPEC = {"containers": [{"name": "c", "image": "busybox"}]}
TEMPLATE = {"metadata": {"labels": {"app": "conf"}}, "spec": POD_SPEC}
SELECTOR = {"matchLabels": {"app": "conf"}}
NOW = "2024-01-01T00:00:00Z"

# id -> (group, version, kind, plural, fields, namespaced, status, mutate)
API_KINDS = {
    "leases": ("coordination.k8s.io", "v1", "Lease", "leases",
               {"spec": {"holderIdentity": "holder", "leaseDurationSeconds": 30}}, True, None,
               {"spec": {"holderIdentity": "holder-2"}}),
    "runtimeclasses": ("node.k8s.io", "v1", "RuntimeClass", "runtimeclasses", {"handler": "runc"}, False, None,
                       None),
    "ingressclasses": ("networking.k8s.io", "v1", "IngressClass", "ingressclasses",
                       {"spec": {"controller": "example.com/conformance"}}, False, None, None),
    "ingresses": ("networking.k8s.io", "v1", "Ingress", "ingresses",
                  {"spec": {"defaultBackend": {"service": {"name": "svc", "port": {"number": 80}}}}}, True,
                  {"loadBalancer": {"ingress": [{"ip": "203.0.113.1"}]}},
                  {"spec": {"defaultBackend": {"service": {"name": "svc2", "port": {"number": 81}}}}}),
    "endpointslices": ("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices",
                       {"addressType": "IPv4", "endpoints": [{"addresses": ["10.0.0.1"]}],
                        "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}, True, None, None),
    "certificatesigningrequests": ("certificates.k8s.io", "v1", "CertificateSigningRequest",
                                   "certificatesigningrequests", None, False,
                                   {"conditions": [{"type": "Failed", "status": "True", "reason": "E2E",
                                                    "message": "set from the test"}]}, None),
    "cronjobs": ("batch", "v1", "CronJob", "cronjobs",
                 {"spec": {"schedule": "*/1 * * * *", "suspend": True,
                           "jobTemplate": {"spec": {"template": {"spec": {**POD_SPEC, "restartPolicy": "Never"}}}}}},
                 True, {"lastScheduleTime": NOW}, {"spec": {"schedule": "*/2 * * * *"}}),
    "podtemplates": ("", "v1", "PodTemplate", "podtemplates", {"template": TEMPLATE}, True, None, None),
    "limitranges": ("", "v1", "LimitRange", "limitranges",
                    {"spec": {"limits": [{"type": "Container", "default": {"cpu": "500m"}}]}}, True, None,
                    {"spec": {"limits": [{"type": "Container", "default": {"cpu": "300m"}}]}}),
    "resourcequotas": ("", "v1", "ResourceQuota", "resourcequotas",
                       {"spec": {"hard": {"cpu": "1", "memory": "500Mi"}}}, True,
                       {"hard": {"cpu": "1", "memory": "500Mi"}, "used": {"cpu": "0", "memory": "0"}},
                       {"spec": {"hard": {"cpu": "2", "memory": "1Gi"}}}),
    "priorityclasses": ("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses",
                        {"value": 1000, "description": "conformance"}, False, None, {"description": "changed"}),
    "csidrivers": ("storage.k8s.io", "v1", "CSIDriver", "csidrivers", {"spec": {"attachRequired": True}}, False,
                   None, None),
    "csinodes": ("storage.k8s.io", "v1", "CSINode", "csinodes", {"spec": {"drivers": []}}, False, None, None),
    "volumeattachments": ("storage.k8s.io", "v1", "VolumeAttachment", "volumeattachments",
                          {"spec": {"attacher": "csi.example.com", "nodeName": "node-1",
                                    "source": {"persistentVolumeName": "pv-1"}}}, False,
                          {"attached": True}, None),
    "storageclasses": ("storage.k8s.io", "v1", "StorageClass", "storageclasses",
                       {"provisioner": "example.com/conformance"}, False, None, None),
    "persistentvolumes": ("", "v1", "PersistentVolume", "persistentvolumes",
                          {"spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                                    "hostPath": {"path": "/tmp/conf"}}}, False,
                          {"phase": "Available", "reason": "E2E", "message": "set from the test"}, None),
    "persistentvolumeclaims": ("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims",
                               {"spec": {"accessModes": ["ReadWriteOnce"],
                                         "resources": {"requests": {"storage": "1Gi"}}}}, True,
                               {"conditions": [{"type": "StatusUpdate", "status": "True", "reason": "E2E"}]},
                               None),
    "nodes": ("", "v1", "Node", "nodes", {"spec": {"podCIDR": "10.42.9.0/24"}}, False,
              {"conditions": [{"type": "Ready", "status": "True", "reason": "E2E"}]}, None),
    "serviceaccounts": ("", "v1", "ServiceAccount", "serviceaccounts", {"automountServiceAccountToken": False},
                        True, None, {"automountServiceAccountToken": True}),
    "endpoints": ("", "v1", "Endpoints", "endpoints",
                  {"subsets": [{"addresses": [{"ip": "10.0.0.2"}], "ports": [{"port": 80}]}]}, True, None,
                  {"subsets": [{"addresses": [{"ip": "10.0.0.3"}], "ports": [{"port": 8080}]}]}),
    "services": ("", "v1", "Service", "services", {"spec": {"ports": [{"port": 80}]}}, True,
                 {"conditions": [{"type": "StatusUpdate", "status": "True", "reason": "E2E", "message": "set",
                                  "lastTransitionTime": NOW}]}, {"spec": {"ports": [{"port": 8080}]}}),
    "configmaps": ("", "v1", "ConfigMap", "configmaps", {"data": {"k": "v"}}, True, None, {"data": {"k": "v2"}}),
    "secrets": ("", "v1", "Secret", "secrets", {"data": {"k": base64.b64encode(b"v").decode()}}, True, None,
                {"data": {"k": base64.b64encode(b"v2").decode()}}),
    "events": ("", "v1", "Event", "events",
               {"involvedObject": {"kind": "Pod", "name": "p", "namespace": NS}, "reason": "Conf",
                "message": "first", "type": "Normal", "source": {"component": "conformance"}}, True, None,
               {"message": "second", "series": {"count": 2, "lastObservedTime": "2024-01-01T00:00:00.000000Z"}}),
    "events.k8s.io": ("events.k8s.io", "v1", "Event", "events",
                      {"eventTime": "2024-01-01T00:00:00.000000Z", "reportingController": "example.com/conf",
                       "reportingInstance": "conf-1", "action": "Test", "reason": "Conf", "type": "Normal",
                       "regarding": {"kind": "Pod", "name": "p", "namespace": NS}, "note": "first"}, True, None,
                      {"note": "second", "series": {"count": 2,
                                                    "lastObservedTime": "2024-01-01T00:00:01.000000Z"}}),
    "poddisruptionbudgets": ("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets",
                             {"spec": {"minAvailable": 1, "selector": SELECTOR}}, True,
                             {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 1,
                              "expectedPods": 0, "observedGeneration": 1}, {"spec": {"minAvailable": 2}}),
    "controllerrevisions": ("apps", "v1", "ControllerRevision", "controllerrevisions",
                            {"data": {"spec": {}}, "revision": 1}, True, None, None),
    "replicasets": ("apps", "v1", "ReplicaSet", "replicasets",
                    {"spec": {"replicas": 1, "selector": SELECTOR, "template": TEMPLATE}}, True,
                    {"replicas": 1, "readyReplicas": 1, "availableReplicas": 1}, {"spec": {"replicas": 2}}),
    "deployments": ("apps", "v1", "Deployment", "deployments",
                    {"spec": {"replicas": 1, "selector": SELECTOR, "template": TEMPLATE}}, True,
                    {"replicas": 1, "readyReplicas": 1, "availableReplicas": 1}, {"spec": {"replicas": 2}}),
    "statefulsets": ("apps", "v1", "StatefulSet", "statefulsets",
                     {"spec": {"replicas": 1, "serviceName": "conf", "selector": SELECTOR, "template": TEMPLATE}},
                     True, {"replicas": 1, "readyReplicas": 1, "availableReplicas": 1}, {"spec": {"replicas": 2}}),
    "daemonsets": ("apps", "v1", "DaemonSet", "daemonsets", {"spec": {"selector": SELECTOR, "template": TEMPLATE}},
                   True, {"currentNumberScheduled": 1, "desiredNumberScheduled": 1, "numberMisscheduled": 0,
                          "numberReady": 1}, None),
    "replicationcontrollers": ("", "v1", "ReplicationController", "replicationcontrollers",
                               {"spec": {"replicas": 1, "selector": {"app": "conf"}, "template": TEMPLATE}}, True,
                               {"replicas": 1, "readyReplicas": 1}, {"spec": {"replicas": 2}}),
    "jobs": ("batch", "v1", "Job", "jobs",
             {"spec": {"suspend": True, "template": {"spec": {**POD_SPEC, "restartPolicy": "Never"}}}}, True,
             {"startTime": NOW}, {"spec": {"parallelism": 2}}),
    "flowschemas": ("flowcontrol.apiserver.k8s.io", "v1", "FlowSchema", "flowschemas",
                    {"spec": {"priorityLevelConfiguration": {"name": "global-default"}, "matchingPrecedence": 9000,
                              "rules": [{"subjects": [{"kind": "Group", "group": {"name": "conformance"}}],
                                         "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"],
                                                            "resources": ["*"], "namespaces": ["*"]}]}]}},
                    False, {"conditions": [{"type": "Dangling", "status": "False", "reason": "E2E"}]},
                    {"spec": {"matchingPrecedence": 9001}}),
    "prioritylevelconfigurations": ("flowcontrol.apiserver.k8s.io", "v1", "PriorityLevelConfiguration",
                                    "prioritylevelconfigurations",
                                    {"spec": {"type": "Limited", "limited": {"nominalConcurrencyShares": 2,
                                                                             "limitResponse": {"type": "Reject"}}}},
                                    False, {"conditions": [{"type": "Concurrency", "status": "True",
                                                            "reason": "E2E"}]}, None),
    "validatingadmissionpolicies": ("admissionregistration.k8s.io", "v1", "ValidatingAdmissionPolicy",
                                    "validatingadmissionpolicies",
                                    {"spec": {"failurePolicy": "Fail", "matchConstraints": {"resourceRules": [
                                        {"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE"],
                                         "resources": ["deployments"]}]},
                                        "validations": [{"expression": "object.spec.replicas > 1"}]}},
                                    False, {"observedGeneration": 1}, None),
    "validatingadmissionpolicybindings": ("admissionregistration.k8s.io", "v1", "ValidatingAdmissionPolicyBinding",
                                          "validatingadmissionpolicybindings",
                                          {"spec": {"policyName": "conf-policy", "validationActions": ["Deny"]}},
                                          False, None, {"spec": {"validationActions": ["Warn"]}}),
    "csistoragecapacities": ("storage.k8s.io", "v1", "CSIStorageCapacity", "csistoragecapacities",
                             {"storageClassName": "conf-sc", "capacity": "1Gi"}, True, None,
                             {"capacity": "2Gi"}),
}


async def test_persistent_volume_and_claim_api_operations(client):
    # As on a real cluster, the protection finalizers are removed by their controllers.
    async with protection_controllers(client):
        for kind_id in ("persistentvolumes", "persistentvolumeclaims"):
            group, version, kind, plural, fields, namespaced, status, mutate = API_KINDS[kind_id]
            await exercise_api_operations(client, group, version, kind, plural, fields, namespaced=namespaced,
                                          status=status, mutate=mutate)


@pytest.mark.parametrize("kind_id", list(API_KINDS))
async def test_api_operations(client, kind_id):
    group, version, kind, plural, fields, namespaced, status, mutate = API_KINDS[kind_id]
    if kind_id == "certificatesigningrequests":
        fields = {"spec": {"request": _csr_request(), "signerName": "example.com/conformance",
                           "usages": ["client auth"]}}
    if kind_id in ("persistentvolumes", "persistentvolumeclaims"):
        async with protection_controllers(client):  # their protection finalizers need the controllers
            await exercise_api_operations(client, group, version, kind, plural, fields, namespaced=namespaced,
                                          status=status, mutate=mutate)
        return
    await exercise_api_operations(client, group, version, kind, plural, fields, namespaced=namespaced,
                                  status=status, mutate=mutate)


# ---------------------------------------------------------------------------
# Discovery, version, content negotiation

async def test_server_version_major_and_minor_are_integers(client):
    code, version = await call(client, "GET", "/version")
    assert code == 200
    assert version["major"].isdigit() and version["minor"].isdigit(), version
    assert version["gitVersion"].startswith(f"v{version['major']}.{version['minor']}.")


async def test_discovery_group_version_and_a_resource_for_each_group(client):
    groups = (await call(client, "GET", "/apis"))[1]["groups"]
    assert len(groups) > 10
    for group in groups:
        for version in group["versions"]:
            code, listing = await call(client, "GET", f"/apis/{version['groupVersion']}")
            assert code == 200 and listing["kind"] == "APIResourceList"
            assert listing["groupVersion"] == version["groupVersion"]
            assert any(r["name"] and r["kind"] and r["verbs"] for r in listing["resources"]), listing


AGGREGATED = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


async def aggregated_resources(client) -> set[tuple[str, str, str]]:
    """(group, version, resource) from the aggregated /api and /apis documents."""
    found = set()
    for root in ("/api", "/apis"):
        resp = await client.get(root, headers={"Accept": AGGREGATED + ",application/json", **HEADERS})
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("application/json;g=apidiscovery.k8s.io;v=v2")
        doc = await resp.json()
        assert doc["kind"] == "APIGroupDiscoveryList" and doc["apiVersion"] == "apidiscovery.k8s.io/v2"
        for group in doc["items"]:
            for version in group["versions"]:
                for res in version["resources"]:
                    found.add((group["metadata"].get("name", ""), version["version"], res["resource"]))
    return found


async def test_aggregated_discovery_lists_every_builtin_resource(client):
    found = await aggregated_resources(client)
    legacy = set()
    for group in (await call(client, "GET", "/apis"))[1]["groups"]:
        for version in group["versions"]:
            listing = (await call(client, "GET", f"/apis/{version['groupVersion']}"))[1]
            legacy |= {(group["name"], version["version"], r["name"]) for r in listing["resources"]
                       if "/" not in r["name"]}
    legacy |= {("", "v1", r["name"]) for r in (await call(client, "GET", "/api/v1"))[1]["resources"]
               if "/" not in r["name"]}
    assert legacy and legacy <= found, legacy - found
    for builtin in (("", "v1", "pods"), ("apps", "v1", "deployments"), ("batch", "v1", "jobs"),
                    ("networking.k8s.io", "v1", "ingresses"), ("coordination.k8s.io", "v1", "leases")):
        assert builtin in found


async def test_table_for_a_kind_without_table_support_is_406(client):
    review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
              "spec": {"resourceAttributes": {"verb": "get", "resource": "pods", "namespace": NS}}}
    resp = await client.post("/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", data=json.dumps(review),
                             headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io",
                                      **JSON_HEADERS})
    assert resp.status == 406
    assert (await resp.json())["reason"] == "NotAcceptable"


# ---------------------------------------------------------------------------
# Chunking

async def test_list_chunks_with_remaining_item_count_and_one_resource_version(client):
    path = collection_path("", "v1", "podtemplates", True)
    for i in range(12):
        code, _ = await call(client, "POST", path, {"apiVersion": "v1", "kind": "PodTemplate",
                                                    "metadata": {"name": f"chunk-{i:02d}"}, "template": TEMPLATE})
        assert code == 201
    code, page = await call(client, "GET", f"{path}?limit=5")
    assert len(page["items"]) == 5 and page["metadata"]["remainingItemCount"] == 7
    rv = page["metadata"]["resourceVersion"]
    names = [i["metadata"]["name"] for i in page["items"]]
    await call(client, "POST", path, {"apiVersion": "v1", "kind": "PodTemplate",
                                      "metadata": {"name": "chunk-99"}, "template": TEMPLATE})
    remaining = [7, 2]
    while page["metadata"].get("continue"):
        code, page = await call(client, "GET", f"{path}?limit=5&continue={page['metadata']['continue']}")
        assert code == 200 and len(page["items"]) <= 5
        assert page["metadata"]["resourceVersion"] == rv, "every chunk is a snapshot of the first one's revision"
        names += [i["metadata"]["name"] for i in page["items"]]
        if page["metadata"].get("continue"):
            assert page["metadata"]["remainingItemCount"] == remaining.pop(0) - 5
    assert names == [f"chunk-{i:02d}" for i in range(12)], "the object created meanwhile is not in the snapshot"
    code, whole = await call(client, "GET", path)
    assert len(whole["items"]) == 13 and "continue" not in whole["metadata"]


# ---------------------------------------------------------------------------
# Watch

async def open_watch(client, rv: str, selector: str = ""):
    query = f"?watch=true&resourceVersion={rv}" + (f"&labelSelector={selector}" if selector else "")
    resp = await client.get(CMS + query, headers=HEADERS)
    assert resp.status == 200
    return resp


async def read_events(resp, count):
    return await asyncio.wait_for(lines(resp, count), 10)


async def test_watch_restarts_from_the_last_observed_resource_version(client):
    start = (await call(client, "GET", CMS))[1]["metadata"]["resourceVersion"]
    first = await open_watch(client, start, "watch-this%3Drestart")
    label = {"watch-this": "restart"}
    await call(client, "POST", CMS, {"apiVersion": "v1", "kind": "ConfigMap",
                                     "metadata": {"name": "restart", "labels": label}})
    await call(client, "PATCH", f"{CMS}/restart", {"data": {"mutation": "1"}}, MERGE)
    await call(client, "PATCH", f"{CMS}/restart", {"data": {"mutation": "2"}}, MERGE)
    seen = await read_events(first, 3)
    first.close()
    assert [(e["type"], (e["object"].get("data") or {}).get("mutation")) for e in seen] == [
        ("ADDED", None), ("MODIFIED", "1"), ("MODIFIED", "2")]
    last_rv = seen[-1]["object"]["metadata"]["resourceVersion"]
    # changes while nobody watches
    await call(client, "PATCH", f"{CMS}/restart", {"data": {"mutation": "3"}}, MERGE)
    await call(client, "DELETE", f"{CMS}/restart")
    await call(client, "POST", CMS, {"apiVersion": "v1", "kind": "ConfigMap",
                                     "metadata": {"name": "restart", "labels": label}})
    second = await open_watch(client, last_rv, "watch-this%3Drestart")
    rest = await read_events(second, 3)
    second.close()
    assert [(e["type"], (e["object"].get("data") or {}).get("mutation")) for e in rest] == [
        ("MODIFIED", "3"), ("DELETED", "3"), ("ADDED", None)]


async def test_multiple_watchers_see_only_their_selector(client):
    start = (await call(client, "GET", CMS))[1]["metadata"]["resourceVersion"]
    watch_a = await open_watch(client, start, "multi%3DA")
    watch_b = await open_watch(client, start, "multi%3DB")
    watch_ab = await open_watch(client, start, "multi+in+%28A%2CB%29")
    for name, value in (("cm-a", "A"), ("cm-b", "B")):
        await call(client, "POST", CMS, {"apiVersion": "v1", "kind": "ConfigMap",
                                         "metadata": {"name": name, "labels": {"multi": value}}})
        await call(client, "PATCH", f"{CMS}/{name}", {"data": {"mutation": "1"}}, MERGE)
        await call(client, "DELETE", f"{CMS}/{name}")
    await call(client, "POST", CMS, {"apiVersion": "v1", "kind": "ConfigMap",
                                     "metadata": {"name": "cm-c", "labels": {"multi": "C"}}})
    got_a = await read_events(watch_a, 3)
    got_b = await read_events(watch_b, 3)
    got_ab = await read_events(watch_ab, 6)
    for resp in (watch_a, watch_b, watch_ab):
        resp.close()
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in got_a] == [
        ("ADDED", "cm-a"), ("MODIFIED", "cm-a"), ("DELETED", "cm-a")]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in got_b] == [
        ("ADDED", "cm-b"), ("MODIFIED", "cm-b"), ("DELETED", "cm-b")]
    assert [e["object"]["metadata"]["name"] for e in got_ab] == ["cm-a"] * 3 + ["cm-b"] * 3


async def test_concurrent_watches_see_the_same_order(client):
    start = (await call(client, "GET", CMS))[1]["metadata"]["resourceVersion"]
    main = await open_watch(client, start)

    async def writes():
        for i in range(30):
            name = f"order-{i % 5}"
            if (await call(client, "GET", f"{CMS}/{name}"))[0] == 404:
                await call(client, "POST", CMS, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}})
            elif i % 3:
                await call(client, "PATCH", f"{CMS}/{name}", {"data": {"i": str(i)}}, MERGE)
            else:
                await call(client, "DELETE", f"{CMS}/{name}")

    writer = asyncio.create_task(writes())
    events = await read_events(main, 30)
    await writer
    main.close()
    rvs = [e["object"]["metadata"]["resourceVersion"] for e in events]
    assert rvs == sorted(rvs, key=int) and len(set(rvs)) == len(rvs)
    # A watch started at each observed event's revision sees exactly the events after it, in the same order.
    for index in (0, 7, 15):
        again = await open_watch(client, rvs[index])
        later = await read_events(again, len(rvs) - index - 1)
        again.close()
        assert [e["object"]["metadata"]["resourceVersion"] for e in later] == rvs[index + 1:]


@pytest.mark.parametrize("client", [4], indirect=True)  # a tiny in-memory history: old snapshots expire fast
async def test_continue_after_the_snapshot_expired_gives_an_inconsistent_continue_token(client):
    path = collection_path("", "v1", "podtemplates", True)
    for i in range(9):
        await call(client, "POST", path, {"apiVersion": "v1", "kind": "PodTemplate",
                                          "metadata": {"name": f"expire-{i}"}, "template": TEMPLATE})
    code, page = await call(client, "GET", f"{path}?limit=3")
    assert code == 200 and len(page["items"]) == 3 and page["metadata"]["remainingItemCount"] == 6
    first_rv = page["metadata"]["resourceVersion"]
    for i in range(6):  # push the first page's revision out of the history
        await call(client, "PATCH", f"{path}/expire-0", {"metadata": {"labels": {"n": str(i)}}}, MERGE)
    code, expired = await call(client, "GET", f"{path}?limit=3&continue={page['metadata']['continue']}")
    assert code == 410 and expired["reason"] == "Expired", expired
    inconsistent = expired["metadata"]["continue"]
    assert inconsistent
    names = [i["metadata"]["name"] for i in page["items"]]
    token = inconsistent
    while token:
        code, page = await call(client, "GET", f"{path}?limit=3&continue={token}")
        assert code == 200 and len(page["items"]) <= 3
        assert int(page["metadata"]["resourceVersion"]) > int(first_rv), "inconsistent pages are at the latest"
        names += [i["metadata"]["name"] for i in page["items"]]
        token = page["metadata"].get("continue")
        if token:
            assert page["metadata"]["remainingItemCount"] == 9 - len(names)
    assert names == [f"expire-{i}" for i in range(9)]


# ---------------------------------------------------------------------------
# Namespaces

NAMESPACES = "/api/v1/namespaces"


async def make_namespace(client, name: str) -> dict:
    code, ns = await call(client, "POST", NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                                       "metadata": {"name": name}})
    assert code == 201, ns
    # The in-process server runs no serviceaccount controller: make the `default`
    # account it would, so pods can be created in the namespace.
    await ensure_default_service_account(client.api, name)
    return ns


async def test_namespace_update(client):
    ns = await make_namespace(client, "conf-update")
    ns["metadata"]["labels"]["e2e"] = "updated"
    code, updated = await call(client, "PUT", f"{NAMESPACES}/conf-update", ns)
    assert code == 200 and updated["metadata"]["labels"]["e2e"] == "updated"
    assert (await call(client, "GET", f"{NAMESPACES}/conf-update"))[1]["metadata"]["labels"]["e2e"] == "updated"


async def test_namespace_finalizer_through_the_finalize_subresource(client):
    ns = await make_namespace(client, "conf-finalize")
    assert ns["spec"]["finalizers"] == ["kubernetes"]
    ns["spec"]["finalizers"].append("e2e.example.com/fakeFinalizer")
    code, after = await call(client, "PUT", f"{NAMESPACES}/conf-finalize/finalize", ns)
    assert code == 200, after
    got = (await call(client, "GET", f"{NAMESPACES}/conf-finalize"))[1]
    assert "e2e.example.com/fakeFinalizer" in got["spec"]["finalizers"]
    got["spec"]["finalizers"].remove("e2e.example.com/fakeFinalizer")
    code, after = await call(client, "PUT", f"{NAMESPACES}/conf-finalize/finalize", got)
    assert code == 200
    got = (await call(client, "GET", f"{NAMESPACES}/conf-finalize"))[1]
    assert "e2e.example.com/fakeFinalizer" not in got["spec"]["finalizers"]


async def test_namespace_status_read_patch_update(client):
    await make_namespace(client, "conf-status")
    code, status = await call(client, "GET", f"{NAMESPACES}/conf-status/status")
    assert code == 200 and status["status"]["phase"] == "Active"
    condition = {"type": "StatusPatch", "status": "True", "reason": "E2E", "message": "patched"}
    code, patched = await call(client, "PATCH", f"{NAMESPACES}/conf-status/status",
                               {"status": {"conditions": [condition]}}, STRATEGIC)
    assert code == 200 and patched["status"]["conditions"][0]["message"] == "patched"
    got = (await call(client, "GET", f"{NAMESPACES}/conf-status"))[1]
    got["status"]["conditions"] = [dict(condition, type="StatusUpdate", message="updated")]
    code, updated = await call(client, "PUT", f"{NAMESPACES}/conf-status/status", got)
    assert code == 200
    got = (await call(client, "GET", f"{NAMESPACES}/conf-status/status"))[1]
    assert got["status"]["conditions"][0]["type"] == "StatusUpdate"
    assert got["status"]["conditions"][0]["message"] == "updated"


# ---------------------------------------------------------------------------
# Immutability

@pytest.mark.parametrize("kind", ["ConfigMap", "Secret"])
async def test_immutable_configmap_and_secret(client, kind):
    plural = kind.lower() + "s"
    path = collection_path("", "v1", plural, True)
    encode = (lambda v: base64.b64encode(v.encode()).decode()) if kind == "Secret" else (lambda v: v)
    code, obj = await call(client, "POST", path, {"apiVersion": "v1", "kind": kind, "metadata": {"name": "imm"},
                                                  "data": {"k": encode("1")}})
    assert code == 201
    obj["data"]["k"] = encode("2")
    code, obj = await call(client, "PUT", f"{path}/imm", obj)
    assert code == 200
    obj["immutable"] = True
    code, obj = await call(client, "PUT", f"{path}/imm", obj)
    assert code == 200, obj
    code, err = await call(client, "PUT", f"{path}/imm", dict(obj, data={"k": encode("3")}))
    assert code == 422 and "field is immutable when `immutable` is set" in err["message"], err
    code, err = await call(client, "PATCH", f"{path}/imm", {"immutable": False}, MERGE)
    assert code == 422, err
    code, labelled = await call(client, "PATCH", f"{path}/imm", {"metadata": {"labels": {"a": "b"}}}, MERGE)
    assert code == 200 and labelled["metadata"]["labels"] == {"a": "b"} and labelled["data"]["k"] == encode("2")
    assert (await call(client, "DELETE", f"{path}/imm"))[0] == 200


async def test_priority_class_mutable_and_immutable_fields(client):
    path = "/apis/scheduling.k8s.io/v1/priorityclasses"
    listed = (await call(client, "GET", path))[1]
    assert {"system-cluster-critical", "system-node-critical"} <= {i["metadata"]["name"] for i in listed["items"]}
    code, pc = await call(client, "POST", path, {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                                                 "metadata": {"name": "conf-pc"}, "value": 100})
    assert code == 201
    code, err = await call(client, "PATCH", f"{path}/conf-pc", {"value": 200}, MERGE)
    assert code == 422, err
    code, err = await call(client, "PUT", f"{path}/conf-pc", dict(pc, value=300))
    assert code == 422, err
    code, patched = await call(client, "PATCH", f"{path}/conf-pc", {"description": "patched"}, MERGE)
    assert code == 200 and patched["description"] == "patched"
    patched["description"] = "updated"
    code, updated = await call(client, "PUT", f"{path}/conf-pc", patched)
    assert code == 200 and updated["description"] == "updated" and updated["value"] == 100


# ---------------------------------------------------------------------------
# Certificates, service accounts, access reviews

async def test_csr_approval_and_status_subresources(client):
    """Conformance: CertificateSigningRequest API (discovery, every verb of the resource, then
    get/update/patch of approval and of status)."""
    await assert_discovered(client, "certificates.k8s.io", "v1", "certificatesigningrequests",
                            ("status", "approval"))
    await test_api_operations(client, "certificatesigningrequests")
    path = "/apis/certificates.k8s.io/v1/certificatesigningrequests"
    code, csr = await call(client, "POST", path, {
        "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest", "metadata": {"name": "conf-csr"},
        "spec": {"request": _csr_request(), "signerName": "example.com/conformance", "usages": ["client auth"]}})
    assert code == 201, csr
    code, approval = await call(client, "GET", f"{path}/conf-csr/approval")
    assert code == 200 and approval["metadata"]["name"] == "conf-csr"
    approval["status"] = {"conditions": [{"type": "Approved", "status": "True", "reason": "E2E",
                                          "message": "Set from an e2e test"}]}
    code, approved = await call(client, "PUT", f"{path}/conf-csr/approval", approval)
    assert code == 200, approved
    assert [c["type"] for c in (await call(client, "GET", f"{path}/conf-csr"))[1]["status"]["conditions"]] == \
        ["Approved"]
    code, patched = await call(client, "PATCH", f"{path}/conf-csr/approval",
                               {"metadata": {"annotations": {"patchedapproval": "true"}}}, MERGE)
    assert code == 200 and patched["metadata"]["annotations"]["patchedapproval"] == "true"
    code, status = await call(client, "GET", f"{path}/conf-csr/status")
    assert code == 200
    status["status"]["conditions"].append({"type": "Failed", "status": "True", "reason": "E2E",
                                           "message": "Set from the status subresource"})
    code, updated = await call(client, "PUT", f"{path}/conf-csr/status", status)
    assert code == 200 and [c["type"] for c in updated["status"]["conditions"]] == ["Approved", "Failed"], updated
    code, patched = await call(client, "PATCH", f"{path}/conf-csr/status",
                               {"metadata": {"annotations": {"patchedstatus": "true"}}}, MERGE)
    assert code == 200 and patched["metadata"]["annotations"]["patchedstatus"] == "true"


async def test_service_account_token_request_and_token_review(client):
    sas = collection_path("", "v1", "serviceaccounts", True)
    code, _ = await call(client, "POST", sas, {"apiVersion": "v1", "kind": "ServiceAccount",
                                               "metadata": {"name": "conf-sa"}})
    assert code == 201
    code, request = await call(client, "POST", f"{sas}/conf-sa/token",
                               {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": {}})
    assert code == 201 and request["status"]["token"], request
    code, review = await call(client, "POST", "/apis/authentication.k8s.io/v1/tokenreviews",
                              {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                               "spec": {"token": request["status"]["token"]}})
    assert code == 201 and review["status"]["authenticated"] is True and not review["status"].get("error")
    assert review["status"]["user"]["username"] == "system:serviceaccount:default:conf-sa"


async def test_subject_access_reviews_match_what_the_impersonated_service_account_may_do(client):
    sas = collection_path("", "v1", "serviceaccounts", True)
    await call(client, "POST", sas, {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "conf-sar"}})
    user = "system:serviceaccount:default:conf-sar"
    as_sa = {"Impersonate-User": user, **JSON_HEADERS}
    direct = await client.get("/api/v1/namespaces/default/configmaps", headers=as_sa)
    attributes = {"verb": "list", "resource": "configmaps", "namespace": NS}
    code, sar = await call(client, "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                           {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                            "spec": {"user": user, "resourceAttributes": attributes}})
    assert code == 201 and sar["status"]["allowed"] == (direct.status == 200)
    code, local = await call(client, "POST", f"/apis/authorization.k8s.io/v1/namespaces/{NS}/localsubjectaccessreviews",
                             {"apiVersion": "authorization.k8s.io/v1", "kind": "LocalSubjectAccessReview",
                              "metadata": {"namespace": NS}, "spec": {"user": user, "resourceAttributes": attributes}})
    assert code == 201 and local["status"]["allowed"] == (direct.status == 200)
    # and the same for something the service account may do: read discovery
    allowed = await client.get("/apis", headers=as_sa)
    code, sar = await call(client, "POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                           {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
                            "spec": {"user": user, "groups": ["system:authenticated"],
                                     "nonResourceAttributes": {"path": "/apis", "verb": "get"}}})
    assert code == 201 and sar["status"]["allowed"] == (allowed.status == 200) is True


# ---------------------------------------------------------------------------
# Scale subresources that need no running pods

@pytest.mark.parametrize("kind_id", ["replicationcontrollers", "statefulsets"])
async def test_scale_subresource_get_update_patch(client, kind_id):
    group, version, kind, plural, fields, _, _, _ = API_KINDS[kind_id]
    path = collection_path(group, version, plural, True)
    api_version = f"{group}/{version}" if group else version
    code, _ = await call(client, "POST", path, {"apiVersion": api_version, "kind": kind,
                                                "metadata": {"name": "conf-scale"}, **fields})
    assert code == 201
    code, scale = await call(client, "GET", f"{path}/conf-scale/scale")
    assert code == 200 and scale["kind"] == "Scale" and scale["spec"]["replicas"] == 1
    scale["spec"]["replicas"] = 2
    code, scale = await call(client, "PUT", f"{path}/conf-scale/scale", scale)
    assert code == 200 and scale["spec"]["replicas"] == 2
    assert (await call(client, "GET", f"{path}/conf-scale"))[1]["spec"]["replicas"] == 2
    code, scale = await call(client, "PATCH", f"{path}/conf-scale/scale", {"spec": {"replicas": 3}}, MERGE)
    assert code == 200 and scale["spec"]["replicas"] == 3
    assert (await call(client, "GET", f"{path}/conf-scale"))[1]["spec"]["replicas"] == 3


# ---------------------------------------------------------------------------
# Pods through the API alone (nothing here needs a pod to run)

PODS = collection_path("", "v1", "pods", True)


def pod(name: str, labels: dict | None = None, **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}},
            "spec": json.loads(json.dumps({**POD_SPEC, **spec}))}


async def test_pods_delete_collection(client):
    for i in range(3):
        assert (await call(client, "POST", PODS, pod(f"coll-{i}", {"type": "Testing"})))[0] == 201
    listed = (await call(client, "GET", f"{PODS}?labelSelector=type%3DTesting"))[1]
    assert len(listed["items"]) == 3
    code, _ = await call(client, "DELETE", f"{PODS}?labelSelector=type%3DTesting")
    assert code == 200
    # unscheduled pods have no kubelet to wait for: they go at once
    assert (await call(client, "GET", f"{PODS}?labelSelector=type%3DTesting"))[1]["items"] == []


async def test_pod_label_update_is_found_by_the_new_selector(client):
    await call(client, "POST", PODS, pod("upd", {"name": "foo", "time": "1"}))
    assert len((await call(client, "GET", f"{PODS}?labelSelector=time%3D1"))[1]["items"]) == 1
    got = (await call(client, "GET", f"{PODS}/upd"))[1]
    got["metadata"]["labels"]["time"] = "2"
    assert (await call(client, "PUT", f"{PODS}/upd", got))[0] == 200
    found = (await call(client, "GET", f"{PODS}?labelSelector=time%3D2"))[1]["items"]
    assert [p["metadata"]["name"] for p in found] == ["upd"]
    assert (await call(client, "GET", f"{PODS}?labelSelector=time%3D1"))[1]["items"] == []


async def test_pod_and_pod_status_lifecycle(client):
    assert (await call(client, "POST", PODS, pod("life", {"test-pod-static": "true"})))[0] == 201
    code, patched = await call(client, "PATCH", f"{PODS}/life",
                               {"metadata": {"labels": {"test-pod": "patched"}},
                                "spec": {"activeDeadlineSeconds": 5000}}, STRATEGIC)
    assert code == 200 and patched["metadata"]["labels"]["test-pod"] == "patched"
    assert patched["spec"]["activeDeadlineSeconds"] == 5000
    code, status = await call(client, "GET", f"{PODS}/life/status")
    assert code == 200 and status["status"]["phase"] == "Pending"
    status["status"]["conditions"] = [{"type": "PodScheduled", "status": "True"},
                                      {"type": "Ready", "status": "True"}]
    code, replaced = await call(client, "PUT", f"{PODS}/life/status", status)
    assert code == 200
    got = (await call(client, "GET", f"{PODS}/life"))[1]
    assert {c["type"]: c["status"] for c in got["status"]["conditions"]}["Ready"] == "True"
    code, _ = await call(client, "DELETE", f"{PODS}/life")
    assert code == 200 and (await call(client, "GET", f"{PODS}/life"))[0] == 404


async def test_pod_status_patch(client):
    await call(client, "POST", PODS, pod("stat"))
    patch = {"metadata": {"annotations": {"patchedstatus": "true"}},
             "status": {"message": "Patched by e2e", "reason": "E2E", "conditions": [
                 {"type": "StatusPatched", "status": "True"}]}}
    code, patched = await call(client, "PATCH", f"{PODS}/stat/status", patch, STRATEGIC)
    assert code == 200, patched
    got = (await call(client, "GET", f"{PODS}/stat"))[1]
    assert got["status"]["message"] == "Patched by e2e" and got["status"]["reason"] == "E2E"
    assert any(c["type"] == "StatusPatched" for c in got["status"]["conditions"])


async def test_pods_with_csi_inline_volumes_through_the_api(client):
    volume = {"name": "csi", "csi": {"driver": "e2e.example.com", "volumeAttributes": {"foo": "bar"}}}
    body = pod("csi-inline", {"app": "csi"}, volumes=[volume])
    body["spec"]["containers"][0]["volumeMounts"] = [{"name": "csi", "mountPath": "/mnt/csi"}]
    code, created = await call(client, "POST", PODS, body)
    assert code == 201 and created["spec"]["volumes"][0]["csi"]["driver"] == "e2e.example.com"
    assert (await call(client, "GET", f"{PODS}/csi-inline"))[1]["spec"]["volumes"][0]["csi"] == volume["csi"]
    listed = (await call(client, "GET", f"{PODS}?labelSelector=app%3Dcsi"))[1]["items"]
    assert [p["metadata"]["name"] for p in listed] == ["csi-inline"]
    code, patched = await call(client, "PATCH", f"{PODS}/csi-inline", {"metadata": {"labels": {"p": "y"}}}, MERGE)
    assert code == 200 and patched["metadata"]["labels"]["p"] == "y"
    assert (await call(client, "DELETE", f"{PODS}/csi-inline"))[0] == 200


# ---------------------------------------------------------------------------
# LimitRanges across namespaces; the kubernetes Service's endpoints

async def test_limit_ranges_listed_across_namespaces_patched_and_deleted_by_collection(client):
    await make_namespace(client, "conf-lr")
    spec = {"limits": [{"type": "Container", "default": {"cpu": "500m"}}]}
    for ns in (NS, "conf-lr"):
        code, _ = await call(client, "POST", collection_path("", "v1", "limitranges", True, ns),
                             {"apiVersion": "v1", "kind": "LimitRange",
                              "metadata": {"name": "conf-lr", "labels": {"e2e": "lr"}}, "spec": spec})
        assert code == 201
    everywhere = (await call(client, "GET", "/api/v1/limitranges?labelSelector=e2e%3Dlr"))[1]["items"]
    assert {i["metadata"]["namespace"] for i in everywhere} == {NS, "conf-lr"}
    path = collection_path("", "v1", "limitranges", True)
    code, patched = await call(client, "PATCH", f"{path}/conf-lr",
                               {"spec": {"limits": [{"type": "Container", "default": {"cpu": "200m"}}]}}, MERGE)
    assert code == 200 and patched["spec"]["limits"][0]["default"]["cpu"] == "200m"
    assert (await call(client, "DELETE", f"{path}?labelSelector=e2e%3Dlr"))[0] == 200
    left = (await call(client, "GET", "/api/v1/limitranges?labelSelector=e2e%3Dlr"))[1]["items"]
    assert [i["metadata"]["namespace"] for i in left] == ["conf-lr"]


async def test_kubernetes_service_has_endpoints_and_endpoint_slices_for_the_api_server(client):
    code, svc = await call(client, "GET", "/api/v1/namespaces/default/services/kubernetes")
    assert code == 200
    code, endpoints = await call(client, "GET", "/api/v1/namespaces/default/endpoints/kubernetes")
    assert code == 200
    addresses = [a["ip"] for s in endpoints["subsets"] for a in s["addresses"]]
    assert addresses
    slices = (await call(client, "GET", "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"
                                        "?labelSelector=kubernetes.io%2Fservice-name%3Dkubernetes"))[1]["items"]
    assert slices, "no EndpointSlice for the kubernetes Service"
    assert sorted(a for s in slices for e in s["endpoints"] for a in e["addresses"]) == sorted(addresses)
    assert slices[0]["ports"][0]["port"] == endpoints["subsets"][0]["ports"][0]["port"]


# ---------------------------------------------------------------------------
# CustomResourceDefinitions

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


async def eventually(check, timeout: float = 5.0, what: str = "condition"):
    """Await `check()` until it is truthy (CRD serving starts asynchronously)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


def crd_body(group: str, kind: str, *, versions=("v1",), schema=None, labels=None, status=False) -> dict:
    plural = kind.lower() + "s"
    schema = schema or {"type": "object", "properties": {"spec": {"type": "object",
                                                                  "x-kubernetes-preserve-unknown-fields": True},
                                                         "status": {"type": "object",
                                                                    "x-kubernetes-preserve-unknown-fields": True}}}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{group}", "labels": labels or {}},
            "spec": {"group": group, "scope": "Namespaced",
                     "names": {"plural": plural, "singular": kind.lower(), "kind": kind, "listKind": kind + "List"},
                     "versions": [{"name": v, "served": True, "storage": i == 0,
                                   "schema": {"openAPIV3Schema": schema},
                                   **({"subresources": {"status": {}}} if status else {})}
                                  for i, v in enumerate(versions)]}}


async def create_crd(client, body: dict) -> str:
    code, crd = await call(client, "POST", CRDS, body)
    assert code == 201, crd
    name = crd["metadata"]["name"]
    group, plural = body["spec"]["group"], body["spec"]["names"]["plural"]
    version = body["spec"]["versions"][0]["name"]

    async def served():
        got = (await call(client, "GET", f"{CRDS}/{name}"))[1]
        established = any(c["type"] == "Established" and c["status"] == "True"
                          for c in (got.get("status") or {}).get("conditions") or [])
        listing = await call(client, "GET", f"/apis/{group}/{version}/namespaces/{NS}/{plural}")
        return established and listing[0] == 200
    await eventually(served, what=f"{name} to be served")
    return name


async def test_crd_create_and_delete(client):
    name = await create_crd(client, crd_body("create.conformance.example.com", "Thing"))
    assert (await call(client, "DELETE", f"{CRDS}/{name}"))[0] == 200

    async def gone():
        return (await call(client, "GET", f"{CRDS}/{name}"))[0] == 404
    await eventually(gone, what="the CRD to be deleted")


async def test_custom_resources_watch_sees_create_modify_delete(client):
    await create_crd(client, crd_body("watch.conformance.example.com", "Noxu"))
    path = f"/apis/watch.conformance.example.com/v1/namespaces/{NS}/noxus"
    rv = (await call(client, "GET", path))[1]["metadata"]["resourceVersion"]
    resp = await client.get(f"{path}?watch=true&resourceVersion={rv}", headers=HEADERS)
    obj = {"apiVersion": "watch.conformance.example.com/v1", "kind": "Noxu", "metadata": {"name": "name1"},
           "spec": {"a": 1}}
    assert (await call(client, "POST", path, obj))[0] == 201
    assert (await call(client, "PATCH", f"{path}/name1", {"spec": {"a": 2}}, MERGE))[0] == 200
    assert (await call(client, "DELETE", f"{path}/name1"))[0] == 200
    events = await asyncio.wait_for(lines(resp, 3), 10)
    resp.close()
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "name1"), ("MODIFIED", "name1"), ("DELETED", "name1")]
    assert events[1]["object"]["spec"] == {"a": 2}


async def test_crd_status_subresource_read_update_patch(client):
    name = await create_crd(client, crd_body("status.conformance.example.com", "Stat"))
    code, status = await call(client, "GET", f"{CRDS}/{name}/status")
    assert code == 200 and status["status"]["acceptedNames"]["kind"] == "Stat"
    status["status"]["conditions"].append({"type": "StatusUpdated", "status": "True", "reason": "E2E",
                                           "message": "updated", "lastTransitionTime": NOW})
    code, updated = await call(client, "PUT", f"{CRDS}/{name}/status", status)
    assert code == 200, updated
    assert any(c["type"] == "StatusUpdated" for c in (await call(client, "GET", f"{CRDS}/{name}"))[1]["status"]
               ["conditions"])
    code, patched = await call(client, "PATCH", f"{CRDS}/{name}/status",
                               {"metadata": {"annotations": {"patched": "true"}}}, MERGE)
    assert code == 200 and patched["metadata"]["annotations"]["patched"] == "true"
    assert (await call(client, "GET", f"{CRDS}/{name}"))[1]["metadata"]["annotations"]["patched"] == "true"


async def test_crd_list_by_label_and_delete_collection(client):
    names = []
    for i in range(3):
        names.append(await create_crd(client, crd_body(f"list{i}.conformance.example.com", "Lst",
                                                       labels={"e2e-list-test-uuid": "x"})))
    other = await create_crd(client, crd_body("unlabelled.conformance.example.com", "Lst"))
    listed = (await call(client, "GET", f"{CRDS}?labelSelector=e2e-list-test-uuid%3Dx"))[1]["items"]
    assert sorted(i["metadata"]["name"] for i in listed) == sorted(names)
    assert (await call(client, "DELETE", f"{CRDS}?labelSelector=e2e-list-test-uuid%3Dx"))[0] == 200

    async def only_unlabelled_left():
        items = (await call(client, "GET", CRDS))[1]["items"]
        left = {i["metadata"]["name"] for i in items}
        return not (left & set(names)) and other in left
    await eventually(only_unlabelled_left, what="the labelled CRDs to be deleted")


async def test_crd_discovery_documents(client):
    await assert_discovered(client, "apiextensions.k8s.io", "v1", "customresourcedefinitions", ("status",))
    groups = (await call(client, "GET", "/apis"))[1]["groups"]
    entry = next(g for g in groups if g["name"] == "apiextensions.k8s.io")
    assert entry["preferredVersion"]["groupVersion"] == "apiextensions.k8s.io/v1"


@pytest.mark.parametrize("accept", [AGGREGATED, AGGREGATED.replace("v=v2", "v=v2beta1")])
async def test_aggregated_discovery_includes_a_new_crd(client, accept):
    await create_crd(client, crd_body("aggregated.conformance.example.com", "Agg"))

    async def listed():
        resp = await client.get("/apis", headers={"Accept": accept, **HEADERS})
        assert resp.status == 200
        doc = await resp.json()
        assert doc["kind"] == "APIGroupDiscoveryList"
        for group in doc["items"]:
            if group["metadata"]["name"] == "aggregated.conformance.example.com":
                return any(r["resource"] == "aggs" and r["responseKind"]["kind"] == "Agg"
                           for v in group["versions"] for r in v["resources"])
        return False
    await eventually(listed, what="the CRD in aggregated discovery")


# ---------------------------------------------------------------------------
# Server-side field validation

APPLY = {"Content-Type": "application/apply-patch+yaml", **HEADERS}
STRICT = "fieldValidation=Strict"


async def raw(client, method: str, path: str, text: str, headers=None):
    resp = await client.request(method, path, data=text, headers=headers or JSON_HEADERS)
    return resp.status, await resp.json()


async def test_typed_object_unknown_and_duplicate_fields_are_refused(client):
    path = collection_path("apps", "v1", "deployments", True)
    text = ('{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"strict"},'
            '"spec":{"replicas":1,"replicas":2,"unknownField":"x","selector":{"matchLabels":{"app":"s"}},'
            '"template":{"metadata":{"labels":{"app":"s"}},"spec":{"containers":[{"name":"c","image":"i"}]}}}}')
    code, err = await raw(client, "POST", f"{path}?{STRICT}", text)
    assert code == 400 and err["reason"] == "BadRequest", err
    assert 'unknown field "spec.unknownField"' in err["message"]
    assert 'duplicate field "spec.replicas"' in err["message"]
    assert (await call(client, "GET", f"{path}/strict"))[0] == 404


async def test_typed_object_unknown_metadata_field_is_refused(client):
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "meta", "unknownMeta": "x"}}
    code, err = await raw(client, "POST", f"{CMS}?{STRICT}", json.dumps(body))
    assert code == 400 and 'unknown field "metadata.unknownMeta"' in err["message"], err


CR_SCHEMA = {"type": "object", "properties": {
    "spec": {"type": "object", "properties": {
        "replicas": {"type": "integer"},
        "ports": {"type": "array", "items": {"type": "object", "properties": {
            "containerPort": {"type": "integer"}, "protocol": {"type": "string"}}}},
        "template": {"type": "object", "x-kubernetes-embedded-resource": True,
                     "x-kubernetes-preserve-unknown-fields": True}}}}}


async def cr_setup(client, group: str, schema=None):
    await create_crd(client, crd_body(group, "Widget", schema=schema or CR_SCHEMA))
    return f"/apis/{group}/v1/namespaces/{NS}/widgets"


async def test_cr_without_a_validation_schema_accepts_unknown_fields(client):
    group = "noschema.conformance.example.com"
    path = await cr_setup(client, group, {"type": "object", "x-kubernetes-preserve-unknown-fields": True})
    body = {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "w1"},
            "spec": {"anything": {"goes": True}}, "extra": 1}
    code, created = await call(client, "POST", f"{path}?{STRICT}", body)
    assert code == 201 and created["spec"]["anything"] == {"goes": True} and created["extra"] == 1
    applied = dict(body, metadata={"name": "w2"})
    code, created = await raw(client, "PATCH", f"{path}/w2?{STRICT}&fieldManager=conf", json.dumps(applied), APPLY)
    assert code == 201 and created["extra"] == 1, created


async def test_valid_cr_with_a_schema_is_created_and_applied(client):
    group = "valid.conformance.example.com"
    path = await cr_setup(client, group)
    body = {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "w1"},
            "spec": {"replicas": 1, "ports": [{"containerPort": 80, "protocol": "TCP"}]}}
    code, created = await call(client, "POST", f"{path}?{STRICT}", body)
    assert code == 201 and created["spec"]["ports"][0]["containerPort"] == 80
    code, created = await raw(client, "PATCH", f"{path}/w2?{STRICT}&fieldManager=conf",
                              json.dumps(dict(body, metadata={"name": "w2"})), APPLY)
    assert code == 201 and created["spec"]["replicas"] == 1, created


async def test_cr_with_unknown_fields_fails_strict_validation(client):
    group = "unknown.conformance.example.com"
    path = await cr_setup(client, group)
    body = {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "w1"},
            "spec": {"replicas": 1, "foo": "bar", "ports": [{"containerPort": 80, "hostPort": 8080}]}}
    code, err = await call(client, "POST", f"{path}?{STRICT}", body)
    assert code == 400, err
    assert 'unknown field "spec.foo"' in err["message"]
    assert 'unknown field "spec.ports[0].hostPort"' in err["message"]
    code, err = await raw(client, "PATCH", f"{path}/w1?{STRICT}&fieldManager=conf", json.dumps(body), APPLY)
    assert code >= 400 and "spec.foo" in err["message"], err
    assert (await call(client, "GET", f"{path}/w1"))[0] == 404


async def test_cr_duplicate_fields_are_refused_even_when_preserving_unknown(client):
    group = "dupes.conformance.example.com"
    path = await cr_setup(client, group, {"type": "object", "x-kubernetes-preserve-unknown-fields": True})
    text = ('{"apiVersion":"' + group + '/v1","kind":"Widget","metadata":{"name":"w1"},'
            '"spec":{"foo":"bar","foo":"baz","known":1}}')
    code, err = await raw(client, "POST", f"{path}?{STRICT}", text)
    assert code == 400 and 'duplicate field "spec.foo"' in err["message"], err


async def test_cr_unknown_metadata_in_root_and_embedded_object_is_refused(client):
    group = "meta.conformance.example.com"
    path = await cr_setup(client, group)
    body = {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "w1", "unknownMeta": "x"},
            "spec": {"template": {"apiVersion": "v1", "kind": "Pod",
                                  "metadata": {"name": "p", "unknownSubMeta": "y"}}}}
    code, err = await call(client, "POST", f"{path}?{STRICT}", body)
    assert code == 400, err
    assert 'unknown field "metadata.unknownMeta"' in err["message"]
    assert 'unknown field "spec.template.metadata.unknownSubMeta"' in err["message"]


# ---------------------------------------------------------------------------
# Endpoints controllers on their own against the in-process server

from k8py.client import Client  # noqa: E402
from k8py.controllers import endpoints as endpoints_controller  # noqa: E402
from k8py.controllers import endpointslice as endpointslice_controller  # noqa: E402
from k8py.controllers import endpointslice_mirroring as mirroring_controller  # noqa: E402
from tests.unit.conftest import TOKEN  # noqa: E402


@pytest.fixture
async def endpoint_controllers(client):
    api = Client(str(client.make_url("")), token=TOKEN)
    tasks = [asyncio.create_task(endpoints_controller.run(api, c)) for c in (
        endpoints_controller.EndpointsController, endpointslice_controller.EndpointSliceController,
        mirroring_controller.EndpointSliceMirroringController)]
    yield api
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await api.close()


async def test_service_matching_no_pods_gets_empty_endpoints_and_slice_until_deleted(client, endpoint_controllers):
    services = collection_path("", "v1", "services", True)
    code, _ = await call(client, "POST", services, {"apiVersion": "v1", "kind": "Service",
                                                    "metadata": {"name": "example-empty-selector"},
                                                    "spec": {"selector": {"does-not": "match-anything"},
                                                             "ports": [{"name": "example", "port": 80}]}})
    assert code == 201
    endpoints_path = collection_path("", "v1", "endpoints", True) + "/example-empty-selector"
    slices_path = (collection_path("discovery.k8s.io", "v1", "endpointslices", True)
                   + "?labelSelector=kubernetes.io%2Fservice-name%3Dexample-empty-selector")

    async def empty_endpoints():
        code, got = await call(client, "GET", endpoints_path)
        return code == 200 and not got.get("subsets")

    async def empty_slice():
        items = (await call(client, "GET", slices_path))[1]["items"]
        return len(items) == 1 and not items[0].get("endpoints")
    await eventually(empty_endpoints, what="empty Endpoints")
    await eventually(empty_slice, what="an empty EndpointSlice")
    assert (await call(client, "DELETE", f"{services}/example-empty-selector"))[0] == 200

    async def both_gone():
        return (await call(client, "GET", endpoints_path))[0] == 404 and \
            (await call(client, "GET", slices_path))[1]["items"] == []
    await eventually(both_gone, what="Endpoints and EndpointSlice deleted with the Service")


async def test_custom_endpoints_are_mirrored_through_create_update_delete(client, endpoint_controllers):
    await assert_discovered(client, "discovery.k8s.io", "v1", "endpointslices")
    services = collection_path("", "v1", "services", True)
    endpoints = collection_path("", "v1", "endpoints", True)
    slices_path = (collection_path("discovery.k8s.io", "v1", "endpointslices", True)
                   + "?labelSelector=kubernetes.io%2Fservice-name%3Dexample-custom-endpoints")
    await call(client, "POST", services, {"apiVersion": "v1", "kind": "Service",
                                          "metadata": {"name": "example-custom-endpoints"},
                                          "spec": {"ports": [{"name": "example", "port": 80}]}})
    await call(client, "POST", endpoints, {"apiVersion": "v1", "kind": "Endpoints",
                                           "metadata": {"name": "example-custom-endpoints"},
                                           "subsets": [{"addresses": [{"ip": "10.1.2.3"}],
                                                        "ports": [{"name": "example", "port": 80}]}]})

    async def mirrored(address, port):
        items = (await call(client, "GET", slices_path))[1]["items"]
        return len(items) == 1 and [e["addresses"] for e in items[0].get("endpoints") or []] == [[address]] and \
            [p["port"] for p in items[0].get("ports") or []] == [port]
    await eventually(lambda: mirrored("10.1.2.3", 80), what="the Endpoints mirrored")
    await call(client, "PATCH", f"{endpoints}/example-custom-endpoints",
               {"subsets": [{"addresses": [{"ip": "10.2.3.4"}], "ports": [{"name": "example", "port": 8090}]}]},
               MERGE)
    await eventually(lambda: mirrored("10.2.3.4", 8090), what="the update mirrored")
    assert (await call(client, "DELETE", f"{endpoints}/example-custom-endpoints"))[0] == 200

    async def gone():
        return (await call(client, "GET", slices_path))[1]["items"] == []
    await eventually(gone, what="the mirrored slice deleted")


# ---------------------------------------------------------------------------
# Admission webhook configurations as API objects (nothing here calls a webhook)

async def test_webhook_configuration_resources_are_in_discovery(client):
    for plural in ("mutatingwebhookconfigurations", "validatingwebhookconfigurations"):
        await assert_discovered(client, "admissionregistration.k8s.io", "v1", plural)


@pytest.mark.parametrize("kind", ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"])
async def test_webhook_configuration_match_conditions_are_stored_and_updated(client, kind):
    path = f"/apis/admissionregistration.k8s.io/v1/{kind.lower()}s"
    webhook = {"name": "conformance.example.com", "admissionReviewVersions": ["v1"], "sideEffects": "None",
               "clientConfig": {"url": "https://127.0.0.1:1/webhook"}, "failurePolicy": "Ignore",
               "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                          "resources": ["configmaps"]}],
               "matchConditions": [{"name": "exclude-skip-me", "expression": "object.metadata.name != 'skip-me'"}]}
    code, created = await call(client, "POST", path, {"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
                                                      "metadata": {"name": "conf-match"}, "webhooks": [webhook]})
    assert code == 201, created
    got = (await call(client, "GET", f"{path}/conf-match"))[1]
    assert got["webhooks"][0]["matchConditions"] == webhook["matchConditions"]
    got["webhooks"][0]["matchConditions"] = [{"name": "only-labelled",
                                              "expression": "has(object.metadata.labels)"}]
    code, updated = await call(client, "PUT", f"{path}/conf-match", got)
    assert code == 200, updated
    again = (await call(client, "GET", f"{path}/conf-match"))[1]
    assert again["webhooks"][0]["matchConditions"] == [{"name": "only-labelled",
                                                        "expression": "has(object.metadata.labels)"}]


# ---------------------------------------------------------------------------
# CRD schemas published in OpenAPI

async def openapi_definitions(client) -> dict:
    resp = await client.get("/openapi/v2", headers={"Accept": "application/json", **HEADERS})
    assert resp.status == 200
    return (await resp.json())["definitions"]


async def openapi_v3_paths(client) -> set[str]:
    return set((await call(client, "GET", "/openapi/v3"))[1]["paths"])


def definition(group: str, version: str, kind: str) -> str:
    return ".".join(reversed(group.split("."))) + f".{version}.{kind}"


async def published(client, *names: str, absent: tuple[str, ...] = ()):
    async def check():
        defs = await openapi_definitions(client)
        return all(n in defs for n in names) and not any(n in defs for n in absent)
    await eventually(check, what=f"OpenAPI to have {names} and not {absent}")
    return await openapi_definitions(client)


async def test_openapi_publishes_crds_of_different_groups(client):
    await create_crd(client, crd_body("groupa.openapi.example.com", "Foo"))
    await create_crd(client, crd_body("groupb.openapi.example.com", "Bar"))
    defs = await published(client, definition("groupa.openapi.example.com", "v1", "Foo"),
                           definition("groupb.openapi.example.com", "v1", "Bar"))
    foo = defs[definition("groupa.openapi.example.com", "v1", "Foo")]
    assert foo["x-kubernetes-group-version-kind"] == [{"group": "groupa.openapi.example.com", "version": "v1",
                                                       "kind": "Foo"}]
    assert "apis/groupb.openapi.example.com/v1" in await openapi_v3_paths(client)


async def test_openapi_publishes_crds_of_one_group_version_with_different_kinds(client):
    await create_crd(client, crd_body("kinds.openapi.example.com", "Foo"))
    await create_crd(client, crd_body("kinds.openapi.example.com", "Bar"))
    await published(client, definition("kinds.openapi.example.com", "v1", "Foo"),
                    definition("kinds.openapi.example.com", "v1", "Bar"))


async def test_openapi_publishes_every_served_version_of_a_crd(client):
    await create_crd(client, crd_body("versions.openapi.example.com", "Foo", versions=("v5", "v6alpha1")))
    await published(client, definition("versions.openapi.example.com", "v5", "Foo"),
                    definition("versions.openapi.example.com", "v6alpha1", "Foo"))


async def test_openapi_drops_a_version_no_longer_served(client):
    group = "unserved.openapi.example.com"
    name = await create_crd(client, crd_body(group, "Foo", versions=("v2", "v3")))
    await published(client, definition(group, "v2", "Foo"), definition(group, "v3", "Foo"))
    crd = (await call(client, "GET", f"{CRDS}/{name}"))[1]
    crd["spec"]["versions"][1]["served"] = False
    assert (await call(client, "PUT", f"{CRDS}/{name}", crd))[0] == 200
    await published(client, definition(group, "v2", "Foo"), absent=(definition(group, "v3", "Foo"),))


async def test_openapi_follows_a_renamed_version(client):
    group = "renamed.openapi.example.com"
    name = await create_crd(client, crd_body(group, "Foo", versions=("v2", "v3")))
    await published(client, definition(group, "v2", "Foo"), definition(group, "v3", "Foo"))
    patch = [{"op": "replace", "path": "/spec/versions/1/name", "value": "v4"}]
    code, patched = await call(client, "PATCH", f"{CRDS}/{name}", patch,
                               {"Content-Type": "application/json-patch+json", **HEADERS})
    assert code == 200, patched
    await published(client, definition(group, "v2", "Foo"), definition(group, "v4", "Foo"),
                    absent=(definition(group, "v3", "Foo"),))


# ---------------------------------------------------------------------------
# QoS class and RuntimeClass admission

async def test_pod_with_equal_requests_and_limits_is_guaranteed(client):
    resources = {"requests": {"cpu": "100m", "memory": "100Mi"}, "limits": {"cpu": "100m", "memory": "100Mi"}}
    body = pod("qos")
    body["spec"]["containers"][0]["resources"] = resources
    code, created = await call(client, "POST", PODS, body)
    assert code == 201 and created["status"]["qosClass"] == "Guaranteed", created


async def test_pod_requesting_a_missing_runtime_class_is_rejected(client):
    code, err = await call(client, "POST", PODS, pod("no-rc", runtimeClassName="does-not-exist"))
    assert code == 403 and err["reason"] == "Forbidden", err
    assert 'pod rejected: RuntimeClass "does-not-exist" not found' in err["message"]


async def test_pod_requesting_a_deleted_runtime_class_is_rejected(client):
    path = "/apis/node.k8s.io/v1/runtimeclasses"
    code, _ = await call(client, "POST", path, {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
                                                "metadata": {"name": "short-lived"}, "handler": "runc"})
    assert code == 201
    assert (await call(client, "DELETE", f"{path}/short-lived"))[0] == 200
    code, err = await call(client, "POST", PODS, pod("deleted-rc", runtimeClassName="short-lived"))
    assert code == 403 and 'RuntimeClass "short-lived" not found' in err["message"], err


async def test_runtime_class_overhead_and_scheduling_are_copied_into_the_pod(client):
    path = "/apis/node.k8s.io/v1/runtimeclasses"
    await call(client, "POST", path, {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
                                      "metadata": {"name": "with-overhead"}, "handler": "runc",
                                      "overhead": {"podFixed": {"cpu": "10m", "memory": "1Mi"}},
                                      "scheduling": {"nodeSelector": {"runtime": "runc"}}})
    code, created = await call(client, "POST", PODS, pod("overhead", runtimeClassName="with-overhead"))
    assert code == 201, created
    assert created["spec"]["overhead"] == {"cpu": "10m", "memory": "1Mi"}
    assert created["spec"]["nodeSelector"] == {"runtime": "runc"}
    code, err = await call(client, "POST", PODS, pod("clash", runtimeClassName="with-overhead",
                                                     overhead={"cpu": "1"}))
    assert code == 403 and "Overhead doesn't match" in err["message"], err


# ---------------------------------------------------------------------------
# LimitRanger admission

async def test_limit_range_defaults_and_bounds_pod_resources(client):
    path = collection_path("", "v1", "limitranges", True)
    item = {"type": "Container",
            "min": {"cpu": "100m", "memory": "100Mi"}, "max": {"cpu": "500m", "memory": "500Mi"},
            "defaultRequest": {"cpu": "200m", "memory": "200Mi"}, "default": {"cpu": "300m", "memory": "300Mi"}}
    code, created = await call(client, "POST", path, {"apiVersion": "v1", "kind": "LimitRange",
                                                      "metadata": {"name": "limits"}, "spec": {"limits": [item]}})
    assert code == 201 and is_subset(item, created["spec"]["limits"][0]), created

    code, bare = await call(client, "POST", PODS, pod("pod-no-resources"))
    assert code == 201, bare
    assert bare["spec"]["containers"][0]["resources"] == {"requests": {"cpu": "200m", "memory": "200Mi"},
                                                          "limits": {"cpu": "300m", "memory": "300Mi"}}
    partial = pod("pod-partial-resources")
    partial["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "150m"}, "limits": {"memory": "250Mi"}}
    code, merged = await call(client, "POST", PODS, partial)
    assert code == 201, merged
    # memory's request follows its limit (core defaulting); the rest comes from the LimitRange
    assert merged["spec"]["containers"][0]["resources"] == {"requests": {"cpu": "150m", "memory": "250Mi"},
                                                            "limits": {"cpu": "300m", "memory": "250Mi"}}

    too_big = pod("pod-too-big")
    too_big["spec"]["containers"][0]["resources"] = {"requests": {"cpu": "50m"}, "limits": {"memory": "600Mi"}}
    code, err = await call(client, "POST", PODS, too_big)
    assert code == 403 and err["reason"] == "Forbidden", err
    assert "minimum cpu usage per Container is 100m, but request is 50m" in err["message"]
    assert "maximum memory usage per Container is 500Mi, but limit is 600Mi" in err["message"]

    # widened, the same pod is allowed; without any LimitRange, so is a bigger one
    item["max"] = {"cpu": "1", "memory": "1Gi"}
    item["min"] = {"cpu": "10m", "memory": "10Mi"}
    code, _ = await call(client, "PATCH", f"{path}/limits", {"spec": {"limits": [item]}}, MERGE)
    assert code == 200
    assert (await call(client, "POST", PODS, too_big))[0] == 201
    assert (await call(client, "DELETE", f"{path}/limits"))[0] == 200
    assert (await call(client, "GET", f"{path}/limits"))[0] == 404
    huge = pod("pod-huge")
    huge["spec"]["containers"][0]["resources"] = {"limits": {"cpu": "4", "memory": "4Gi"}}
    code, created = await call(client, "POST", PODS, huge)
    assert code == 201 and created["spec"]["containers"][0]["resources"]["requests"] == {"cpu": "4", "memory": "4Gi"}


async def test_cr_schema_required_and_enum_are_enforced(client):
    group = "constraints.conformance.example.com"
    schema = {"type": "object", "properties": {"spec": {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string"}, "kind": {"type": "string", "enum": ["in-tree", "out-of-tree"]}}}}}
    path = await cr_setup(client, group, schema)
    body = {"apiVersion": f"{group}/v1", "kind": "Widget", "metadata": {"name": "w1"}, "spec": {"kind": "other"}}
    code, err = await call(client, "POST", path, body)
    assert code == 422 and err["reason"] == "Invalid", err
    assert {(c["field"], c["message"]) for c in err["details"]["causes"]} == {
        ("spec.name", "Required value"),
        ("spec.kind", 'Unsupported value: "other": supported values: "in-tree", "out-of-tree"')}
    body["spec"] = {"name": "ok", "kind": "in-tree"}
    code, created = await call(client, "POST", path, body)
    assert code == 201, created
    code, err = await call(client, "PATCH", f"{path}/w1", {"spec": {"name": None}}, MERGE)
    assert code == 422 and err["details"]["causes"][0]["field"] == "spec.name", err
