"""kube-proxy's iptables mode, for real, inside network namespaces this test creates.

The proxier programs the namespaced "node"; requests go through the kernel's
DNAT to tiny HTTP servers in "pod" namespaces. Nothing touches the host's tables.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from k8py.proxy.iptables import Iptables
from k8py.proxy.proxier import Proxier, cleanup
from k8py.proxy.rules import ProxyConfig
from tests.netns import NetnsNode

pytestmark = [pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root"), pytest.mark.host_network]


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


DNS_CLIENT = """
import socket, sys
from dnslib import DNSRecord
host, name, tcp = sys.argv[1], sys.argv[2], sys.argv[3] == "tcp"
q = DNSRecord.question(name).pack()
if tcp:
    s = socket.create_connection((host, 53), timeout=3)
    s.sendall(len(q).to_bytes(2, "big") + q)
    data = s.recv(2)
    data = s.recv(int.from_bytes(data, "big"))
else:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    s.sendto(q, (host, 53))
    data = s.recv(4096)
print(" ".join(str(rr.rdata) for rr in DNSRecord.parse(data).rr))
"""


async def test_pods_reach_cluster_dns_through_the_kube_dns_cluster_ip(node, proxier, tmp_path):
    """k3s style: kube-dns's ClusterIP is DNATed to the DNS server on the node's bridge address."""
    import json
    import subprocess
    import sys

    from k8py.dns.service import kube_dns_service
    records = tmp_path / "records.json"
    records.write_text(json.dumps({"services": [service("web", "10.43.0.60")]}))
    serve = Path(__file__).resolve().parents[1] / "dnsserve.py"
    server = subprocess.Popen(["ip", "netns", "exec", node.node, sys.executable, str(serve),
                               "10.42.0.1:53", str(records)], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().strip() == "ready"
        kube_dns = kube_dns_service("10.43.0.10")
        kube_dns["metadata"]["namespace"] = "kube-system"
        proxier.on_service(kube_dns)
        proxier.on_slice({"metadata": {"name": "kube-dns-x", "namespace": "kube-system",
                                       "labels": {"kubernetes.io/service-name": "kube-dns"}},
                          "addressType": "IPv4",
                          "ports": [{"name": "dns", "port": 53, "protocol": "UDP"},
                                    {"name": "dns-tcp", "port": 53, "protocol": "TCP"}],
                          "endpoints": [{"addresses": ["10.42.0.1"], "conditions": {"ready": True}}]})
        await proxier.sync()
        client = tmp_path / "dnsclient.py"
        client.write_text(DNS_CLIENT)
        for transport in ("udp", "tcp"):
            out = await in_thread(node.exec, node.pod_names[0], sys.executable, str(client), "10.43.0.10",
                                  "web.default.svc.cluster.local", transport)
            assert out.strip() == "10.43.0.60", transport
    finally:
        server.terminate()
        server.wait(timeout=5)


async def test_two_nodes_pods_reach_pods_and_services_on_the_other(node):
    """A second node (its own namespaces, pod subnet 10.42.1.0/24) linked to the first by a routed veth."""
    other = NetnsNode(pods=1, tag="svcq", subnet=1, answer_prefix="b-pod").up()
    proxies = [Proxier(ProxyConfig(node_name=name, cluster_cidr="10.42.0.0/16"), Iptables(n.node))
               for name, n in (("node-a", node), ("node-b", other))]
    try:
        node.link(other)
        for p in proxies:
            p.on_service(service("spread", "10.43.0.70"))
            p.on_slice(eslice("spread", node.pod_ips + other.pod_ips,
                              {**{ip: "node-a" for ip in node.pod_ips}, other.pod_ips[0]: "node-b"}))
            await p.sync()
        direct = await in_thread(node.requests, other.pod_names[0], node.pod_ips[0], 8080, 3)
        assert direct["answers"] == {"pod1": 3}, direct
        assert direct["clients"] == [other.pod_ips[0]], direct  # pod-to-pod keeps its address
        via_service = await in_thread(node.requests, other.pod_names[0], "10.43.0.70", 80, 200)
        assert via_service["error_count"] == 0, via_service
        assert set(via_service["answers"]) == {"pod1", "pod2", "pod3", "b-pod1"}, via_service
        from_a = await in_thread(node.requests, node.pod_names[0], "10.43.0.70", 80, 100)
        assert "b-pod1" in from_a["answers"] and from_a["error_count"] == 0, from_a
    finally:
        for p in proxies:
            await cleanup(p.iptables)
        other.down()


async def test_k8py_proxy_cleanup_command(node):
    """`k8py proxy --cleanup` (run inside the node namespace) removes what a proxier wrote."""
    import subprocess
    import sys
    p = Proxier(ProxyConfig(node_name="node-a", cluster_cidr="10.42.0.0/16"), Iptables(node.node))
    p.on_service(service("web", "10.43.0.56", node_port=30093))
    p.on_slice(eslice("web", node.pod_ips))
    await p.sync()
    assert "KUBE-SVC-" in await p.iptables.save("nat")
    done = subprocess.run(["ip", "netns", "exec", node.node, sys.executable, "-m", "k8py", "proxy", "--cleanup"],
                          capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    for table in ("nat", "filter"):
        assert "KUBE-" not in await p.iptables.save(table)


async def test_flushed_tables_are_noticed_and_rebuilt(node):
    """A firewall reload that flushes every table removes the canary; the proxier resyncs everything."""
    p = Proxier(ProxyConfig(node_name="node-a", cluster_cidr="10.42.0.0/16"), Iptables(node.node),
                canary_period=0.1)
    p.on_service(service("web", "10.43.0.57"))
    p.on_slice(eslice("web", node.pod_ips))
    task = asyncio.create_task(p.run())
    try:
        await asyncio.wait_for(p.synced.wait(), 30)
        syncs = p.syncs
        for table in ("nat", "filter", "mangle"):
            await p.iptables.run("iptables", "-w", "5", "-t", table, "-F")
            await p.iptables.run("iptables", "-w", "5", "-t", table, "-X")
        deadline = asyncio.get_running_loop().time() + 30
        while p.syncs == syncs:  # nothing changed in the API: only the canary can trigger this sync
            assert asyncio.get_running_loop().time() < deadline, "flushed tables were not noticed"
            await asyncio.sleep(0.05)
        result = await in_thread(node.requests, node.node, "10.43.0.57", 80, 3, 2.0)
        assert result["error_count"] == 0, result
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await cleanup(p.iptables)
        for table in ("nat", "filter", "mangle"):
            assert "KUBE-" not in await p.iptables.save(table)
