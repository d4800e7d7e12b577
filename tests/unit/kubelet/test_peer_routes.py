"""Routes to other nodes' pods follow the Node objects."""

from __future__ import annotations

import asyncio

from k8py.client import Client
from k8py.kubelet.network.peers import PeerRoutes, peer_routes

from ..conftest import HEADERS, TOKEN


def node(name, cidr=None, ip=None):
    obj = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}, "spec": {}, "status": {}}
    if cidr:
        obj["spec"]["podCIDR"] = cidr
        obj["spec"]["podCIDRs"] = [cidr]
    if ip:
        obj["status"]["addresses"] = [{"type": "Hostname", "address": name}, {"type": "InternalIP", "address": ip}]
    return obj


def test_peer_routes_from_nodes():
    nodes = [node("me", "10.42.0.0/24", "192.168.1.1"), node("b", "10.42.1.0/24", "192.168.1.2"),
             node("no-ip", "10.42.2.0/24"), node("no-cidr", ip="192.168.1.4"),
             node("elsewhere", "10.99.0.0/24", "192.168.1.5")]
    assert peer_routes(nodes, "me", "10.42.0.0/16") == {"10.42.1.0/24": "192.168.1.2"}


def test_no_routes_via_loopback_or_our_own_address():
    # hollow nodes (127.0.0.1) and other nodes registered from this machine
    nodes = [node("me", "10.42.0.0/24", "192.168.1.1"), node("hollow-0", "10.42.1.0/24", "127.0.0.1"),
             node("same-host", "10.42.2.0/24", "192.168.1.1"), node("real", "10.42.3.0/24", "192.168.1.3")]
    assert peer_routes(nodes, "me", "10.42.0.0/16", own_ip="192.168.1.1") == {"10.42.3.0/24": "192.168.1.3"}


class RecordingNetwork:
    def __init__(self):
        self.calls: list[dict] = []

    async def set_peer_routes(self, peers):
        self.calls.append(dict(peers))


async def wait_until(predicate, timeout=5.0):
    for _ in range(int(timeout / 0.02)):
        if predicate():
            return True
        await asyncio.sleep(0.02)
    raise AssertionError("condition never held")


async def test_peer_routes_follow_node_changes(client):
    base = str(client.make_url(""))
    api_client = Client(base, token=TOKEN)
    network = RecordingNetwork()
    routes = PeerRoutes(api_client, network, "me", "10.42.0.0/16")
    await client.post("/api/v1/nodes", json=node("me", "10.42.0.0/24", "192.168.1.1"), headers=HEADERS)
    await routes.start()
    try:
        assert network.calls[-1] == {}
        created = await (await client.post("/api/v1/nodes", json=node("b"), headers=HEADERS)).json()
        created["spec"] = {"podCIDR": "10.42.1.0/24", "podCIDRs": ["10.42.1.0/24"]}
        await client.put("/api/v1/nodes/b", json=created, headers=HEADERS)
        status = {"status": {"addresses": [{"type": "InternalIP", "address": "192.168.1.2"}]}}
        await client.patch("/api/v1/nodes/b/status", json=status,
                           headers={**HEADERS, "Content-Type": "application/merge-patch+json"})
        await wait_until(lambda: network.calls[-1] == {"10.42.1.0/24": "192.168.1.2"})
        await client.delete("/api/v1/nodes/b", headers=HEADERS)
        await wait_until(lambda: network.calls[-1] == {})
    finally:
        await routes.stop()
        await api_client.close()


class RecordingPodNetwork(RecordingNetwork):
    """The parts of PodNetwork the kubelet calls at start."""

    def __init__(self, pod_cidr):
        super().__init__()
        self.pod_cidr = pod_cidr

    async def ensure_host_networking(self):
        return None


async def test_the_kubelet_keeps_routes_to_other_nodes_pods(client, tmp_path):
    from k8py.kubelet.agent import AgentConfig, Kubelet
    from tests.unit.kubelet.memory_runtime import FakeRuntime

    api_client = Client(str(client.make_url("")), token=TOKEN)
    networks = []

    def network_factory(pod_cidr):
        networks.append(RecordingPodNetwork(pod_cidr))
        return networks[-1]
    await client.post("/api/v1/nodes", json=node("other", "10.42.5.0/24", "192.168.1.9"), headers=HEADERS)
    kubelet = Kubelet(api_client, AgentConfig(node_name="me", data_dir=tmp_path / "agent", node_ip="192.168.1.1",
                                              cluster_cidr="10.42.0.0/16", pod_manifest_path=None),
                      FakeRuntime(), network_factory=network_factory)
    kubelet.pod_cidr_wait = 0
    await kubelet.start()
    try:
        assert networks and networks[0].pod_cidr != "10.42.5.0/24"
        assert networks[0].calls[-1] == {"10.42.5.0/24": "192.168.1.9"}
        await client.delete("/api/v1/nodes/other", headers=HEADERS)
        await wait_until(lambda: networks[0].calls[-1] == {})
    finally:
        await kubelet.stop()
        await api_client.close()


async def test_a_podcidr_outside_the_agents_cluster_range_is_called_out(client, tmp_path, caplog):
    from k8py.kubelet.agent import AgentConfig, Kubelet
    from tests.unit.kubelet.memory_runtime import FakeRuntime

    api_client = Client(str(client.make_url("")), token=TOKEN)
    await client.post("/api/v1/nodes", json=node("me", "10.99.0.0/24"), headers=HEADERS)
    kubelet = Kubelet(api_client, AgentConfig(node_name="me", data_dir=tmp_path / "agent", node_ip="192.168.1.1",
                                              cluster_cidr="10.42.0.0/16", pod_manifest_path=None),
                      FakeRuntime(), network_factory=RecordingPodNetwork)
    await kubelet.start()
    try:
        assert kubelet.ctx.network.pod_cidr == "10.99.0.0/24"      # the Node's slice is what pods use
        assert "podCIDR 10.99.0.0/24 outside this agent's --cluster-cidr 10.42.0.0/16" in caplog.text
    finally:
        await kubelet.stop()
        await api_client.close()
