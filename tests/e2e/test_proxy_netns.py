"""kube-proxy's iptables mode, for real, inside network namespaces this test creates.

The proxier programs the namespaced "node"; requests go through the kernel's
DNAT to tiny HTTP servers in "pod" namespaces. Nothing touches the host's tables.
"""

from __future__ import annotations

import asyncio
import os

import pytest

from k8py.proxy.iptables import Iptables
from k8py.proxy.proxier import Proxier, cleanup
from k8py.proxy.rules import ProxyConfig
from tests.netns import NetnsNode

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")


@pytest.fixture(scope="module")
def node():
    n = NetnsNode(pods=3, tag="svcp").up()
    yield n
    n.down()


@pytest.fixture
async def proxier(node):
    p = Proxier(ProxyConfig(node_name="node-a", cluster_cidr="10.42.0.0/16"), Iptables(node.node))
    yield p
    await cleanup(p.iptables)


def service(name, cluster_ip, node_port=None, **spec):
    port = {"name": "http", "port": 80, "targetPort": 8080, "protocol": "TCP"}
    if node_port:
        port["nodePort"] = node_port
    return {"metadata": {"name": name, "namespace": "default"},
            "spec": {"clusterIP": cluster_ip, "clusterIPs": [cluster_ip], "ports": [port],
                     "type": "NodePort" if node_port else "ClusterIP", **spec}}


def eslice(name, ips, node_names=None):
    return {"metadata": {"name": f"{name}-abc", "namespace": "default",
                         "labels": {"kubernetes.io/service-name": name}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True},
                           "nodeName": (node_names or {}).get(ip, "node-a")} for ip in ips]}


async def in_thread(fn, *args):
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


async def test_cluster_ip_spreads_nodeport_answers_and_hairpin_works(node, proxier):
    proxier.on_service(service("web", "10.43.0.50", node_port=30080))
    proxier.on_slice(eslice("web", node.pod_ips))
    await proxier.sync()
    result = await in_thread(node.requests, node.node, "10.43.0.50", 80, 300)
    assert result["error_count"] == 0, result
    assert set(result["answers"]) == {"pod1", "pod2", "pod3"}, result  # every endpoint gets some of 300
    assert min(result["answers"].values()) > 40, result  # and roughly a third each (p < 1e-9 to fail by chance)
    # NodePort on the node's address from outside, and on 127.0.0.1 from the node itself.
    outside = await in_thread(node.requests, node.ext, node.node_ip, 30080, 30)
    assert outside["error_count"] == 0 and sum(outside["answers"].values()) == 30, outside
    assert outside["clients"] == ["10.42.0.1"] or all(c.startswith("10.42.0.") for c in outside["clients"])
    local = await in_thread(node.requests, node.node, "127.0.0.1", 30080, 10)
    assert local["error_count"] == 0, local
    # A pod reaching itself through its Service (hairpin) gets answers from every pod, itself included.
    hairpin = await in_thread(node.requests, node.pod_names[0], "10.43.0.50", 80, 60)
    assert hairpin["error_count"] == 0 and "pod1" in hairpin["answers"], hairpin
    # Chain names are upstream's hashes.
    nat = await proxier.iptables.save("nat")
    assert "KUBE-SVC-" in nat and "-A KUBE-NODEPORTS" in nat and "--probability 0.33333333349" in nat


async def test_endpoint_changes_sync_incrementally(node, proxier):
    proxier.on_service(service("web", "10.43.0.51"))
    proxier.on_slice(eslice("web", node.pod_ips))
    await proxier.sync()
    proxier.on_slice(eslice("web", node.pod_ips[:1]))
    await proxier.sync()
    result = await in_thread(node.requests, node.node, "10.43.0.51", 80, 30)
    assert result["answers"] == {"pod1": 30}, result
    nat = await proxier.iptables.save("nat")
    assert nat.count("-j DNAT") == 1  # the two removed endpoints' chains are gone
    assert sum(line.startswith(":KUBE-SEP-") for line in nat.splitlines()) == 1
    assert proxier.syncs == 2 and proxier.last_sync_seconds < 1.0


async def test_client_ip_affinity_sticks(node, proxier):
    proxier.on_service(service("sticky", "10.43.0.52", sessionAffinity="ClientIP",
                               sessionAffinityConfig={"clientIP": {"timeoutSeconds": 60}}))
    proxier.on_slice(eslice("sticky", node.pod_ips))
    await proxier.sync()
    result = await in_thread(node.requests, node.node, "10.43.0.52", 80, 40)
    assert result["error_count"] == 0 and len(result["answers"]) == 1, result


async def test_service_without_endpoints_is_rejected(node, proxier):
    proxier.on_service(service("empty", "10.43.0.53", node_port=30090))
    await proxier.sync()
    result = await in_thread(node.requests, node.node, "10.43.0.53", 80, 1, 5.0)
    assert result["error_count"] == 1 and "ConnectionRefused" in result["errors"][0], result
    assert result["seconds"] < 2, result  # refused at once, not left to time out
    outside = await in_thread(node.requests, node.ext, node.node_ip, 30090, 1, 5.0)
    assert "ConnectionRefused" in outside["errors"][0], outside


async def test_external_traffic_policy_local_keeps_client_ip_and_uses_local_endpoints(node, proxier):
    other = {node.pod_ips[1]: "node-b", node.pod_ips[2]: "node-b"}
    proxier.on_service(service("local", "10.43.0.54", node_port=30091, externalTrafficPolicy="Local"))
    proxier.on_slice(eslice("local", node.pod_ips, other))
    await proxier.sync()
    outside = await in_thread(node.requests, node.ext, node.node_ip, 30091, 20)
    assert outside["answers"] == {"pod1": 20}, outside  # only this node's endpoint
    assert outside["clients"] == [node.ext_ip], outside  # the client's address is kept
    inside = await in_thread(node.requests, node.node, "10.43.0.54", 80, 60)
    assert len(inside["answers"]) == 3, inside  # cluster IP traffic still uses every endpoint


async def test_cleanup_leaves_nothing(node):
    p = Proxier(ProxyConfig(node_name="node-a", cluster_cidr="10.42.0.0/16"), Iptables(node.node))
    p.on_service(service("web", "10.43.0.55", node_port=30092))
    p.on_slice(eslice("web", node.pod_ips))
    await p.sync()
    await cleanup(p.iptables)
    for table in ("nat", "filter"):
        saved = await p.iptables.save(table)
        assert "KUBE-" not in saved, saved
