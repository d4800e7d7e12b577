"""ResourceQuota: usage counting (k8py.api.quota), the resourcequota controller
and quota admission, against the in-process API server. Each test names the
upstream conformance behaviour it shows."""

from __future__ import annotations

import asyncio

import pytest

from k8py.client import Client
from k8py.controllers.base import ControllerContext
from k8py.controllers.resourcequota import ResourceQuotaController
from tests.unit.conftest import TOKEN
from tests.unit.test_conformance_behaviours import (MERGE, SELECTOR, TEMPLATE, call, collection_path, eventually,
                                                    make_namespace, pod)

QNS = "quota-test"  # a namespace of its own: default holds the kubernetes Service
QUOTAS = collection_path("", "v1", "resourcequotas", True, QNS)
PODS = collection_path("", "v1", "pods", True, QNS)


@pytest.fixture
async def quota_controller(client):
    await make_namespace(client, QNS)
    api = Client(str(client.make_url("")), token=TOKEN)
    ctx = ControllerContext(api)
    task = asyncio.create_task(ResourceQuotaController(ctx).run())
    yield api
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await ctx.stop()
    await api.close()


async def make_quota(client, name: str, hard: dict, scopes=None) -> None:
    spec = {"hard": hard, **({"scopes": scopes} if scopes else {})}
    code, body = await call(client, "POST", QUOTAS, {"apiVersion": "v1", "kind": "ResourceQuota",
                                                     "metadata": {"name": name}, "spec": spec})
    assert code == 201, body


async def used_becomes(client, name: str, expected: dict):
    async def check():
        status = (await call(client, "GET", f"{QUOTAS}/{name}"))[1].get("status") or {}
        return status.get("used") == expected and status
    return await eventually(check, what=f"{name} used == {expected}")


async def test_quota_status_is_promptly_calculated(client, quota_controller):
    await make_quota(client, "test-quota", {"resourcequotas": "1", "configmaps": "2"})
    status = await used_becomes(client, "test-quota", {"resourcequotas": "1", "configmaps": "0"})
    assert status["hard"] == {"resourcequotas": "1", "configmaps": "2"}


OBJECTS = {
    "configmaps": ("configmaps", collection_path("", "v1", "configmaps", True, QNS),
                   {"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "b"}}),
    "secrets": ("secrets", collection_path("", "v1", "secrets", True, QNS),
                {"apiVersion": "v1", "kind": "Secret", "data": {"a": "Yg=="}}),
    "services": ("services", collection_path("", "v1", "services", True, QNS),
                 {"apiVersion": "v1", "kind": "Service", "spec": {"ports": [{"port": 80}]}}),
    "replicationcontrollers": ("replicationcontrollers", collection_path("", "v1", "replicationcontrollers", True, QNS),
                               {"apiVersion": "v1", "kind": "ReplicationController",
                                "spec": {"replicas": 0, "selector": {"app": "conf"}, "template": TEMPLATE}}),
    "replicasets": ("count/replicasets.apps", collection_path("apps", "v1", "replicasets", True, QNS),
                    {"apiVersion": "apps/v1", "kind": "ReplicaSet",
                     "spec": {"replicas": 0, "selector": SELECTOR, "template": TEMPLATE}}),
}


@pytest.mark.parametrize("kind", list(OBJECTS))
async def test_quota_captures_the_life_of_an_object(client, quota_controller, kind):
    resource, path, body = OBJECTS[kind]
    await make_quota(client, "test-quota", {resource: "1"})
    await used_becomes(client, "test-quota", {resource: "0"})
    code, created = await call(client, "POST", path, {**body, "metadata": {"name": "counted"}})
    assert code == 201, created
    await used_becomes(client, "test-quota", {resource: "1"})
    code, refused = await call(client, "POST", path, {**body, "metadata": {"name": "one-too-many"}})
    assert code == 403 and "exceeded quota: test-quota" in refused["message"], refused
    assert f"limited: {resource}=1" in refused["message"]
    assert (await call(client, "DELETE", f"{path}/counted"))[0] == 200
    await used_becomes(client, "test-quota", {resource: "0"})


def sized_pod(name: str, cpu: str, memory: str, limits: bool = True, **spec) -> dict:
    body = pod(name, **spec)
    resources = {"requests": {"cpu": cpu, "memory": memory}}
    if limits:
        resources["limits"] = {"cpu": cpu, "memory": memory}
    body["spec"]["containers"][0]["resources"] = resources
    return body


async def test_quota_captures_the_life_of_a_pod(client, quota_controller):
    hard = {"pods": "2", "requests.cpu": "1", "requests.memory": "500Mi"}
    await make_quota(client, "test-quota", hard)
    await used_becomes(client, "test-quota", {"pods": "0", "requests.cpu": "0", "requests.memory": "0"})
    code, created = await call(client, "POST", PODS, sized_pod("test-pod", "500m", "252Mi"))
    assert code == 201, created
    # Usage keeps the Quantity form of what was added, as upstream's sums do.
    await used_becomes(client, "test-quota", {"pods": "1", "requests.cpu": "500m", "requests.memory": "252Mi"})
    code, refused = await call(client, "POST", PODS, sized_pod("fail-pod", "600m", "100Mi"))
    assert code == 403 and refused["message"] == (
        'pods "fail-pod" is forbidden: exceeded quota: test-quota, requested: requests.cpu=600m, '
        "used: requests.cpu=500m, limited: requests.cpu=1")
    created["spec"]["containers"][0]["resources"]["requests"]["cpu"] = "600m"
    code, err = await call(client, "PUT", f"{PODS}/test-pod", created)
    assert code == 422, "a pod's resource requests cannot change"
    assert (await call(client, "DELETE", f"{PODS}/test-pod"))[0] == 200
    await used_becomes(client, "test-quota", {"pods": "0", "requests.cpu": "0", "requests.memory": "0"})


@pytest.mark.parametrize("scopes", [("BestEffort", "NotBestEffort"), ("Terminating", "NotTerminating")],
                         ids=["best-effort", "terminating"])
async def test_scoped_quotas_count_only_their_pods(client, quota_controller, scopes):
    first, second = scopes
    await make_quota(client, "quota-first", {"pods": "5"}, [first])
    await make_quota(client, "quota-second", {"pods": "5"}, [second])
    await used_becomes(client, "quota-first", {"pods": "0"})
    await used_becomes(client, "quota-second", {"pods": "0"})
    if first == "BestEffort":
        matching, other = pod("best-effort"), sized_pod("burstable", "100m", "100Mi")
    else:
        matching, other = sized_pod("terminating", "100m", "100Mi", activeDeadlineSeconds=3600), \
            sized_pod("not-terminating", "100m", "100Mi")
    for body, counted, idle in ((matching, "quota-first", "quota-second"), (other, "quota-second", "quota-first")):
        assert (await call(client, "POST", PODS, body))[0] == 201
        await used_becomes(client, counted, {"pods": "1"})
        await used_becomes(client, idle, {"pods": "0"})
        assert (await call(client, "DELETE", f"{PODS}/{body['metadata']['name']}"))[0] == 200
        await used_becomes(client, counted, {"pods": "0"})


async def test_quota_status_hard_follows_the_spec(client, quota_controller):
    await make_quota(client, "status-quota", {"cpu": "500m", "memory": "500Mi"})
    status = await used_becomes(client, "status-quota", {"cpu": "0", "memory": "0"})
    assert status["hard"] == {"cpu": "500m", "memory": "500Mi"}
    code, patched = await call(client, "PATCH", f"{QUOTAS}/status-quota",
                               {"spec": {"hard": {"cpu": "1", "memory": "1Gi"}}}, MERGE)
    assert code == 200

    async def hard_is(expected):
        async def check():
            return ((await call(client, "GET", f"{QUOTAS}/status-quota/status"))[1].get("status") or {}) \
                .get("hard") == expected
        await eventually(check, what=f"status.hard == {expected}")
    await hard_is({"cpu": "1", "memory": "1Gi"})
    # a status patch may set hard; the spec stays as it was
    code, patched = await call(client, "PATCH", f"{QUOTAS}/status-quota/status",
                               {"status": {"hard": {"cpu": "1", "memory": "1Gi"}},
                                "spec": {"hard": {"cpu": "9"}}}, MERGE)
    assert code == 200 and patched["spec"]["hard"] == {"cpu": "1", "memory": "1Gi"}
    await hard_is({"cpu": "1", "memory": "1Gi"})


async def test_concurrent_creates_cannot_both_take_the_last_unit(client, quota_controller):
    await make_quota(client, "one-left", {"configmaps": "1"})
    path = collection_path("", "v1", "configmaps", True, QNS)
    results = await asyncio.gather(*(call(client, "POST", path, {"apiVersion": "v1", "kind": "ConfigMap",
                                                                 "metadata": {"name": f"race-{i}"}})
                                     for i in range(5)))
    assert sorted(code for code, _ in results) == [201, 403, 403, 403, 403]
