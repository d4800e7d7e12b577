"""Upstream scheduling conformance behaviours on a real `k8py server` whose
nodes are plain API objects (no kubelet: nothing runs, pods only get bound;
deletions of bound pods are finished by hand, as a kubelet would)."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from tests.e2e.conftest import wait_for
from tests.e2e.controller_fixtures import PodCensus
from tests.e2e.fake_nodes import scratch_namespace, server_with_nodes

pytestmark = pytest.mark.simulated_kubelet  # the nodes are API objects the tests keep Ready; no pod runs

NODES = ("conf-sched-a", "conf-sched-b")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    yield from server_with_nodes(tmp_path_factory, "k8py-conf-sched", NODES)


@pytest.fixture
def ns(cluster):
    yield from scratch_namespace(cluster, "conf-sched")


def make_pod(cluster, ns: str, name: str, cpu: str = "100m", **spec) -> None:
    container = {"name": "c", "image": "busybox", "resources": {"requests": {"cpu": cpu}}}
    container.update(spec.pop("container", {}))
    cluster.kubectl("create", "-n", ns, "-f", "-", input=json.dumps(
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {"containers": [container], **spec}}))


def get_pod(cluster, ns: str, name: str) -> dict:
    return cluster.kubectl_json("get", "pod", name, "-n", ns)


def node_of(cluster, ns: str, name: str) -> str:
    return get_pod(cluster, ns, name)["spec"].get("nodeName", "")


def unschedulable(cluster, ns: str, name: str):
    conds = get_pod(cluster, ns, name)["status"].get("conditions") or []
    return next((c for c in conds if c["type"] == "PodScheduled" and c["reason"] == "Unschedulable"), None)


def on_node_a() -> dict:
    return {"nodeSelector": {"kubernetes.io/hostname": NODES[0]}}


def test_pod_whose_node_selector_matches_no_node_is_not_scheduled(cluster, ns):
    make_pod(cluster, ns, "restricted-pod", nodeSelector={"label": "nonempty"})
    cond = wait_for(lambda: unschedulable(cluster, ns, "restricted-pod"), what="FailedScheduling")
    assert "didn't match Pod's node affinity/selector" in cond["message"]
    assert not node_of(cluster, ns, "restricted-pod")


def test_pod_requesting_an_existing_runtime_class_is_scheduled(cluster, ns):
    name = f"{ns}-rc"
    cluster.kubectl("create", "-f", "-", input=json.dumps(
        {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": name}, "handler": "runc"}))
    try:
        make_pod(cluster, ns, "with-runtime-class", runtimeClassName=name)
        assert wait_for(lambda: node_of(cluster, ns, "with-runtime-class"), what="binding") in NODES
    finally:
        cluster.kubectl("delete", "runtimeclass", name, check=False)


def test_runtime_class_overhead_is_set_on_the_pod_and_it_is_scheduled(cluster, ns):
    name = f"{ns}-overhead"
    cluster.kubectl("create", "-f", "-", input=json.dumps(
        {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": name}, "handler": "runc",
         "overhead": {"podFixed": {"cpu": "10m", "memory": "1Mi"}}}))
    try:
        make_pod(cluster, ns, "with-overhead", runtimeClassName=name)
        assert get_pod(cluster, ns, "with-overhead")["spec"]["overhead"] == {"cpu": "10m", "memory": "1Mi"}
        assert wait_for(lambda: node_of(cluster, ns, "with-overhead"), what="binding") in NODES
    finally:
        cluster.kubectl("delete", "runtimeclass", name, check=False)


def test_same_host_port_with_other_host_ip_or_protocol_shares_a_node(cluster, ns):
    for name, ip, protocol in (("pod1", "127.0.0.1", "TCP"), ("pod2", "127.0.0.2", "TCP"),
                               ("pod3", "127.0.0.2", "UDP")):
        port = {"containerPort": 8080, "hostPort": 54321, "hostIP": ip, "protocol": protocol}
        make_pod(cluster, ns, name, container={"ports": [port]}, **on_node_a())
    for name in ("pod1", "pod2", "pod3"):
        assert wait_for(lambda: node_of(cluster, ns, name), what=f"{name} bound") == NODES[0]


def test_host_port_on_all_addresses_conflicts_with_any_host_ip(cluster, ns):
    make_pod(cluster, ns, "pod4", container={"ports": [{"containerPort": 8080, "hostPort": 54322,
                                                         "hostIP": "0.0.0.0", "protocol": "TCP"}]}, **on_node_a())
    assert wait_for(lambda: node_of(cluster, ns, "pod4"), what="pod4 bound") == NODES[0]
    make_pod(cluster, ns, "pod5", container={"ports": [{"containerPort": 8080, "hostPort": 54322,
                                                         "hostIP": "127.0.0.1", "protocol": "TCP"}]}, **on_node_a())
    cond = wait_for(lambda: unschedulable(cluster, ns, "pod5"), what="pod5 refused")
    assert "didn't have free ports for the requested pod ports" in cond["message"]
    assert not node_of(cluster, ns, "pod5")


def test_removing_the_taint_cancels_the_pending_eviction(cluster, ns):
    node = NODES[1]
    toleration_seconds = 4
    tolerate = [{"key": "kubernetes.io/e2e-evict-taint-key", "operator": "Exists", "effect": "NoExecute",
                 "tolerationSeconds": toleration_seconds}]
    make_pod(cluster, ns, "taint-eviction", nodeName=node, tolerations=tolerate)
    # Every change to the pod, from before the taint to past the time its eviction was due.
    census = PodCensus(cluster, ns)
    try:
        wait_for(lambda: "taint-eviction" in census.pods, what="the watch to see the pod")
        cluster.kubectl("taint", "nodes", node, "kubernetes.io/e2e-evict-taint-key=evictTaintVal:NoExecute")
        tainted = time.monotonic()
        try:
            time.sleep(toleration_seconds / 4)   # the eviction is counting down when the taint goes
        finally:
            cluster.kubectl("taint", "nodes", node, "kubernetes.io/e2e-evict-taint-key:NoExecute-")
        assert time.monotonic() - tainted < toleration_seconds, "the taint was not removed before the eviction"
        # A pending eviction fires at tolerationSeconds after the taint; watch that long and
        # as long again (upstream waits a few seconds more than the toleration too).
        time.sleep(max(0.0, tainted + 2 * toleration_seconds - time.monotonic()))
        assert census.proc.poll() is None, "the watch ended early: it saw nothing of the window"
        evicted = [e for e in census.events if e[1] == "taint-eviction" and (e[3] or e[0] == "DELETED")]
        assert evicted == [], "the pod was evicted although the taint was removed in time"
    finally:
        census.stop()
    assert not get_pod(cluster, ns, "taint-eviction")["metadata"].get("deletionTimestamp")


def test_critical_pod_preempts_a_lower_priority_pod(cluster, ns):
    low = f"{ns}-low"
    cluster.kubectl("create", "priorityclass", low, "--value=1")
    critical = f"critical-{uuid.uuid4().hex[:6]}"
    try:
        make_pod(cluster, ns, "victim", cpu="1500m", priorityClassName=low, **on_node_a())
        assert wait_for(lambda: node_of(cluster, ns, "victim")) == NODES[0]
        make_pod(cluster, "kube-system", critical, cpu="1500m", priorityClassName="system-cluster-critical",
                 **on_node_a())
        victim = wait_for(lambda: (v := get_pod(cluster, ns, "victim"))["metadata"].get("deletionTimestamp") and v,
                          what="the victim preempted")
        assert any(c["type"] == "DisruptionTarget" for c in victim["status"]["conditions"])
        cluster.kubectl("delete", "pod", "victim", "-n", ns, "--force", "--grace-period=0")
        assert wait_for(lambda: node_of(cluster, "kube-system", critical), timeout=20,
                        what="the critical pod bound") == NODES[0]
    finally:
        cluster.kubectl("delete", "pod", critical, "-n", "kube-system", "--force", "--grace-period=0", check=False)
        cluster.kubectl("delete", "priorityclass", low, check=False)
