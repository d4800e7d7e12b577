"""Node registration, heartbeat Lease and status, against the in-process API server."""

from __future__ import annotations


from k8py.kubelet import node as node_mod
from k8py.kubelet.node import NodeConfig, NodeManager, node_conditions, pick_pod_cidr


def test_conditions_keep_transition_time_while_status_is_unchanged():
    first = node_conditions(True, "", {}, [], "2026-01-01T00:00:00Z")
    ready = next(c for c in first if c["type"] == "Ready")
    assert (ready["status"], ready["reason"], ready["message"]) == \
        ("True", "KubeletReady", "kubelet is posting ready status")
    mem = next(c for c in first if c["type"] == "MemoryPressure")
    assert (mem["status"], mem["reason"]) == ("False", "KubeletHasSufficientMemory")
    later = node_conditions(True, "", {"DiskPressure": True}, first, "2026-01-01T00:01:00Z")
    ready2 = next(c for c in later if c["type"] == "Ready")
    assert ready2["lastTransitionTime"] == "2026-01-01T00:00:00Z"
    assert ready2["lastHeartbeatTime"] == "2026-01-01T00:01:00Z"
    disk = next(c for c in later if c["type"] == "DiskPressure")
    assert (disk["status"], disk["reason"], disk["lastTransitionTime"]) == \
        ("True", "KubeletHasDiskPressure", "2026-01-01T00:01:00Z")


def test_pick_pod_cidr_skips_used_ranges():
    assert pick_pod_cidr("10.42.0.0/16", set()) == "10.42.0.0/24"
    assert pick_pod_cidr("10.42.0.0/16", {"10.42.0.0/24", "10.42.1.0/24"}) == "10.42.2.0/24"
    assert pick_pod_cidr("10.42.0.0/24", {"10.42.0.0/24"}) is None


async def test_register_reports_status_and_lease(api, tmp_path):
    config = NodeConfig(name="kc-node-a", data_dir=tmp_path, control_plane=True, node_ip="127.0.0.1",
                        runtime_version="runc://1.1.5")
    manager = NodeManager(api, config)
    await manager.register()
    node = await api.resource("v1", "nodes").get("kc-node-a")
    ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "KubeletNotReady")
    manager.set_ready(True)
    await manager.report_status()
    node = await api.resource("v1", "nodes").get("kc-node-a")
    labels = node["metadata"]["labels"]
    assert labels["kubernetes.io/hostname"] == "kc-node-a"
    assert labels["kubernetes.io/os"] == "linux"
    assert labels["node-role.kubernetes.io/control-plane"] == "true"
    assert labels["node-role.kubernetes.io/master"] == "true"
    status = node["status"]
    assert status["capacity"]["pods"] == "110"
    assert int(status["capacity"]["cpu"]) >= 1
    assert status["capacity"]["memory"].endswith("Ki")
    assert {"cpu", "memory", "pods", "ephemeral-storage"} <= set(status["allocatable"])
    assert {c["type"] for c in status["conditions"]} == {"Ready", "MemoryPressure", "DiskPressure",
                                                         "PIDPressure"}
    assert {"type": "InternalIP", "address": "127.0.0.1"} in status["addresses"]
    assert {"type": "Hostname", "address": "kc-node-a"} in status["addresses"]
    info = status["nodeInfo"]
    assert info["containerRuntimeVersion"] == "runc://1.1.5"
    assert info["kubeletVersion"].startswith("v1.32")
    assert info["kernelVersion"] and info["osImage"] and info["operatingSystem"] == "linux"
    lease = await api.resource("coordination.k8s.io/v1", "leases", namespace="kube-node-lease").get("kc-node-a")
    assert lease["spec"]["holderIdentity"] == "kc-node-a"
    assert lease["spec"]["leaseDurationSeconds"] == 40
    assert lease["metadata"]["ownerReferences"][0]["uid"] == node["metadata"]["uid"]
    first_renew = lease["spec"]["renewTime"]

    # Renewal moves renewTime forward; re-registration (a restarted kubelet) adopts the node.
    import asyncio
    await asyncio.sleep(0.01)
    await manager.renew_lease()
    lease = await api.resource("coordination.k8s.io/v1", "leases", namespace="kube-node-lease").get("kc-node-a")
    assert lease["spec"]["renewTime"] > first_renew
    again = NodeManager(api, config)
    await again.register()
    assert again.node["metadata"]["uid"] == node["metadata"]["uid"]


async def test_status_is_written_only_on_change(api, tmp_path, monkeypatch):
    config = NodeConfig(name="kc-node-b", data_dir=tmp_path, fixed_capacity={"cpu": "4", "memory": "8Gi",
                                                                             "pods": "110"})
    manager = NodeManager(api, config)
    await manager.register()
    manager.set_ready(True)
    await manager.report_status()
    rv = manager.node["metadata"]["resourceVersion"]
    await manager.report_status()
    assert manager.node["metadata"]["resourceVersion"] == rv      # nothing changed: no write
    manager.set_ready(False, "container runtime is down")
    await manager.report_status()
    ready = next(c for c in manager.node["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"], ready["message"]) == \
        ("False", "KubeletNotReady", "container runtime is down")
    monkeypatch.setattr(node_mod, "STATUS_REPORT_SECONDS", 0.0)
    before = manager._last_report_time
    await manager.report_status()                                # due: a heartbeat report
    assert manager._last_report_time > before
