"""Endpoints, EndpointSlice and mirroring controllers: pure rules, then against the in-process API server."""

from __future__ import annotations

import asyncio

import pytest

from k8py.client import Client
from k8py.controllers import endpoints as ep
from k8py.controllers import endpointslice as eps
from k8py.controllers import endpointslice_mirroring as mirror
from tests.unit.conftest import TOKEN


def pod(name, ip, ready=True, labels=None, ports=None, deleting=False, phase="Running", hostname=None,
        subdomain=None, node="node-a"):
    p = {"metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}",
                      "labels": labels if labels is not None else {"app": "web"}},
         "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox",
                                                    "ports": ports or [{"name": "http", "containerPort": 8080}]}]},
         "status": {"phase": phase, "podIP": ip, "podIPs": [{"ip": ip}] if ip else [],
                    "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}
    if deleting:
        p["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    if hostname:
        p["spec"]["hostname"] = hostname
    if subdomain:
        p["spec"]["subdomain"] = subdomain
    return p


def service(name="web", ports=None, selector=None, **spec):
    return {"metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}", "labels": {"team": "a"}},
            "spec": {"selector": selector if selector is not None else {"app": "web"},
                     "ports": ports if ports is not None else [{"name": "http", "port": 80, "targetPort": "http"}],
                     **spec}}


# -- pure rules

def test_ready_and_not_ready_addresses_with_named_target_port():
    pods = [pod("a", "10.42.0.3"), pod("b", "10.42.0.2", ready=False), pod("c", "10.42.0.4", labels={"app": "x"}),
            pod("d", None), pod("e", "10.42.0.5", phase="Succeeded"), pod("f", "10.42.0.6", deleting=True)]
    subsets = ep.desired_subsets(service(), pods)
    assert subsets == [{"addresses": [{"ip": "10.42.0.3", "nodeName": "node-a",
                                       "targetRef": {"kind": "Pod", "namespace": "default", "name": "a",
                                                     "uid": "uid-a"}}],
                        "notReadyAddresses": [{"ip": "10.42.0.2", "nodeName": "node-a",
                                               "targetRef": {"kind": "Pod", "namespace": "default", "name": "b",
                                                             "uid": "uid-b"}}],
                        "ports": [{"port": 8080, "protocol": "TCP", "name": "http"}]}]


def test_named_port_resolving_differently_splits_subsets_and_missing_port_drops_pod():
    pods = [pod("a", "10.42.0.1"), pod("b", "10.42.0.2", ports=[{"name": "http", "containerPort": 9090}]),
            pod("c", "10.42.0.3", ports=[{"name": "other", "containerPort": 1}])]
    subsets = ep.desired_subsets(service(), pods)
    assert [(s["addresses"][0]["ip"], s["ports"][0]["port"]) for s in subsets] == [
        ("10.42.0.1", 8080), ("10.42.0.2", 9090)]


def test_publish_not_ready_includes_unready_and_terminating_as_ready():
    pods = [pod("a", "10.42.0.1", ready=False), pod("b", "10.42.0.2", deleting=True)]
    subsets = ep.desired_subsets(service(publishNotReadyAddresses=True), pods)
    assert [a["ip"] for a in subsets[0]["addresses"]] == ["10.42.0.1", "10.42.0.2"]
    assert "notReadyAddresses" not in subsets[0]


def test_headless_hostname_and_portless_subset():
    svc = service("db", ports=[], clusterIP="None")
    pods = [pod("db-0", "10.42.0.9", hostname="db-0", subdomain="db"), pod("x", "10.42.0.8", hostname="x")]
    subsets = ep.desired_subsets(svc, pods)
    assert len(subsets) == 1 and "ports" not in subsets[0]
    assert [(a["ip"], a.get("hostname")) for a in subsets[0]["addresses"]] == [
        ("10.42.0.8", None), ("10.42.0.9", "db-0")]
    endpoints = ep.desired_endpoints(svc, pods, None, "2026-01-01T00:00:00Z")
    assert endpoints["metadata"]["labels"] == {"team": "a", "service.kubernetes.io/headless": ""}
    assert endpoints["metadata"]["annotations"]["endpoints.kubernetes.io/last-change-trigger-time"]


def test_endpoints_over_capacity_truncates_ready_first():
    pods = [pod(f"p{i}", f"10.42.{i // 250}.{i % 250 + 1}", ready=i % 2 == 0) for i in range(1200)]
    endpoints = ep.desired_endpoints(service(), pods, None, None)
    assert endpoints["metadata"]["annotations"] == {"endpoints.kubernetes.io/over-capacity": "truncated"}
    total = sum(len(s.get("addresses", [])) + len(s.get("notReadyAddresses", [])) for s in endpoints["subsets"])
    assert total == 1000
    assert sum(len(s.get("addresses", [])) for s in endpoints["subsets"]) == 600


def test_slice_conditions_for_terminating_pods():
    svc = service()
    groups = eps.desired_groups(svc, [pod("a", "10.42.0.1"), pod("b", "10.42.0.2", deleting=True),
                                      pod("c", "10.42.0.3", ready=False, deleting=True)])
    conditions = {e["targetRef"]["name"]: e["conditions"] for e in groups[0].endpoints}
    assert conditions == {"a": {"ready": True, "serving": True, "terminating": False},
                          "b": {"ready": False, "serving": True, "terminating": True},
                          "c": {"ready": False, "serving": False, "terminating": True}}
    published = eps.desired_groups(service(publishNotReadyAddresses=True),
                                   [pod("c", "10.42.0.3", ready=False, deleting=True)])
    assert published[0].endpoints[0]["conditions"] == {"ready": True, "serving": True, "terminating": True}


def test_slices_hold_at_most_100_and_keep_endpoints_in_place():
    svc = service()
    pods = [pod(f"p{i}", f"10.42.{i // 200}.{i % 200 + 1}") for i in range(250)]
    first = eps.plan_for(svc, pods, [])
    assert [len(s["endpoints"]) for s in first.create] == [100, 100, 50]
    s0 = first.create[0]
    assert s0["metadata"]["labels"] == {"team": "a", "kubernetes.io/service-name": "web",
                                        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}
    assert s0["metadata"]["ownerReferences"][0]["kind"] == "Service"
    existing = []
    for i, s in enumerate(first.create):
        s = {**s, "metadata": {**s["metadata"], "name": f"web-{i}", "resourceVersion": "1"}}
        existing.append(s)
    assert eps.plan_for(svc, pods, existing).empty
    # One pod goes away and one arrives: only one slice changes, the newcomer fills the gap.
    moved = pods[1:] + [pod("new", "10.42.9.9")]
    step = eps.plan_for(svc, moved, existing)
    assert not step.create and not step.delete and len(step.update) == 1
    assert step.update[0]["metadata"]["name"] == "web-0"
    ips = {e["addresses"][0] for e in step.update[0]["endpoints"]}
    assert "10.42.9.9" in ips and "10.42.0.1" not in ips


def test_service_without_endpoints_gets_a_placeholder_slice():
    result = eps.plan_for(service(), [], [])
    assert len(result.create) == 1 and result.create[0]["endpoints"] == []


def test_mirroring_copies_user_endpoints():
    endpoints = {"metadata": {"name": "ext", "namespace": "default", "labels": {"a": "b"}},
                 "subsets": [{"addresses": [{"ip": "192.0.2.1"}], "notReadyAddresses": [{"ip": "192.0.2.2"}],
                              "ports": [{"name": "db", "port": 5432}]}]}
    assert mirror.should_mirror(endpoints, service("ext", selector={}))
    assert not mirror.should_mirror(endpoints, service("ext"))
    result = mirror.plan_for(endpoints, [])
    (created,) = result.create
    assert created["metadata"]["labels"] == {"a": "b", "kubernetes.io/service-name": "ext",
                                             "endpointslice.kubernetes.io/managed-by":
                                                 "endpointslicemirroring-controller.k8s.io"}
    assert created["ports"] == [{"name": "db", "port": 5432, "protocol": "TCP"}]
    assert [(e["addresses"], e["conditions"]["ready"]) for e in created["endpoints"]] == [
        (["192.0.2.1"], True), (["192.0.2.2"], False)]


# -- against the API server

@pytest.fixture
async def api(client):
    c = Client(str(client.make_url("")), token=TOKEN)
    yield c
    await c.close()


async def wait_until(fetch, condition, timeout=5.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await fetch()
        if condition(value):
            return value
        assert asyncio.get_running_loop().time() < deadline, f"condition not met; last {value!r}"
        await asyncio.sleep(0.02)


async def make_pod(api, name, ip, ready=True, labels=None):
    pods = api.resource("v1", "pods", "default")
    body = pod(name, ip, ready=ready, labels=labels)
    status = body.pop("status")
    body["metadata"].pop("uid")
    body["spec"]["nodeName"] = "node-a"
    created = await pods.create({"apiVersion": "v1", "kind": "Pod", **body})
    created["status"] = {**created.get("status", {}), **status}
    return await pods.update_status(created)


@pytest.mark.simulated_kubelet  # the pods' IPs and readiness are written by the test
async def test_controllers_follow_pods_and_services(api):
    tasks = [asyncio.create_task(ep.run(api, c)) for c in
             (ep.EndpointsController, eps.EndpointSliceController, mirror.EndpointSliceMirroringController)]
    try:
        services = api.resource("v1", "services", "default")
        endpoints = api.resource("v1", "endpoints", "default")
        slices = api.resource("discovery.k8s.io/v1", "endpointslices", "default")
        await services.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                               "spec": {"selector": {"app": "web"},
                                        "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}})
        await make_pod(api, "web-1", "10.42.0.11")
        await make_pod(api, "web-2", "10.42.0.12", ready=False)

        def addresses(e):
            subsets = e.get("subsets") or []
            return ([a["ip"] for s in subsets for a in s.get("addresses", [])],
                    [a["ip"] for s in subsets for a in s.get("notReadyAddresses", [])])

        async def get_ep():
            try:
                return await endpoints.get("web")
            except Exception:
                return {}
        got = await wait_until(get_ep, lambda e: addresses(e) == (["10.42.0.11"], ["10.42.0.12"]))
        assert got["subsets"][0]["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
        assert "endpoints.kubernetes.io/last-change-trigger-time" in got["metadata"]["annotations"]

        async def web_slices():
            return (await slices.list(label_selector="kubernetes.io/service-name=web"))["items"]
        found = await wait_until(web_slices, lambda items: len(items) == 1 and len(items[0].get("endpoints") or []) == 2)
        assert found[0]["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == eps.MANAGED_BY

        # Readiness flips: web-2 becomes ready; web-1's pod goes away.
        pods = api.resource("v1", "pods", "default")
        p2 = await pods.get("web-2")
        p2["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
        await pods.update_status(p2)
        await pods.delete("web-1", grace_period_seconds=0)
        await wait_until(get_ep, lambda e: addresses(e) == (["10.42.0.12"], []))
        await wait_until(web_slices, lambda items: [e["addresses"] for s in items for e in s.get("endpoints") or []]
                         == [["10.42.0.12"]])

        # A Service without a selector: the user's Endpoints are mirrored into a slice.
        await services.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ext"},
                               "spec": {"ports": [{"port": 5432}]}})
        await endpoints.create({"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "ext"},
                                "subsets": [{"addresses": [{"ip": "192.0.2.7"}], "ports": [{"port": 5432}]}]})

        async def ext_slices():
            return (await slices.list(label_selector="kubernetes.io/service-name=ext"))["items"]
        mirrored = await wait_until(ext_slices, lambda items: len(items) == 1)
        assert mirrored[0]["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == mirror.MANAGED_BY
        assert mirrored[0]["endpoints"][0]["addresses"] == ["192.0.2.7"]

        # Deleting the Service removes what the controllers made for it.
        await services.delete("web")
        await wait_until(web_slices, lambda items: items == [])
        await wait_until(get_ep, lambda e: e == {})
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# -- ServiceLB

def node_obj(name, ip, ready="True"):
    return {"metadata": {"name": name}, "spec": {},
            "status": {"addresses": [{"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": name}],
                       "conditions": [{"type": "Ready", "status": ready}]}}


def test_servicelb_ingress_is_node_addresses_and_honours_load_balancer_ip():
    from k8py.proxy.servicelb import wanted_ingress
    nodes = [node_obj("b", "192.168.1.20"), node_obj("a", "192.168.1.3"), node_obj("c", "192.168.1.9", "False")]
    lb = {"spec": {"type": "LoadBalancer"}}
    assert wanted_ingress(lb, nodes) == [{"ip": "192.168.1.3", "ipMode": "VIP"}, {"ip": "192.168.1.20", "ipMode": "VIP"}]
    assert wanted_ingress({"spec": {"type": "LoadBalancer", "loadBalancerIP": "192.168.1.20"}}, nodes) == [
        {"ip": "192.168.1.20", "ipMode": "VIP"}]
    assert wanted_ingress({"spec": {"type": "LoadBalancer", "loadBalancerIP": "10.9.9.9"}}, nodes) is None


async def test_servicelb_publishes_ingress(api):
    from k8py.proxy.servicelb import ServiceLBController
    await api.resource("v1", "nodes").create({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "lb-node"}})
    node = await api.resource("v1", "nodes").get("lb-node")
    node["status"] = node_obj("lb-node", "192.168.5.5")["status"]
    await api.resource("v1", "nodes").update_status(node)
    task = asyncio.create_task(ep.run(api, ServiceLBController))
    try:
        services = api.resource("v1", "services", "default")
        await services.create({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "lb"},
                               "spec": {"type": "LoadBalancer", "selector": {"a": "b"}, "ports": [{"port": 8088}]}})
        got = await wait_until(lambda: services.get("lb"),
                               lambda s: (s.get("status") or {}).get("loadBalancer", {}).get("ingress"))
        assert got["status"]["loadBalancer"]["ingress"] == [{"ip": "192.168.5.5", "ipMode": "VIP"}]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def test_slice_for_pod_without_the_named_port_has_no_ports():
    groups = eps.desired_groups(service(), [pod("a", "10.42.0.1"),
                                            pod("b", "10.42.0.2", ports=[{"name": "other", "containerPort": 1}])])
    assert [(g.ports, [e["addresses"][0] for e in g.endpoints]) for g in groups] == [
        ([], ["10.42.0.2"]), ([{"port": 8080, "protocol": "TCP", "name": "http"}], ["10.42.0.1"])]


async def test_failed_endpoint_writes_are_reported_as_events(api):
    """An address the API refuses (loopback) leaves a Warning event on the Service, as upstream."""
    task = asyncio.create_task(ep.run(api, ep.EndpointsController))
    try:
        await api.resource("v1", "services", "default").create({
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "loop"},
            "spec": {"selector": {"app": "loop"}, "ports": [{"port": 80}]}})
        await make_pod(api, "loop-1", "127.0.0.5", labels={"app": "loop"})
        events = api.resource("v1", "events", "default")
        found = await wait_until(lambda: events.list(),
                                 lambda got: any(e["reason"] == "FailedToUpdateEndpoint" for e in got["items"]))
        # The empty Endpoints was created before the pod had its IP; adding the address is what fails.
        event = next(e for e in found["items"] if e["reason"] == "FailedToUpdateEndpoint")
        assert event["type"] == "Warning" and "loopback" in event["message"]
        assert event["involvedObject"]["kind"] == "Service" and event["source"]["component"] == "endpoint-controller"
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
