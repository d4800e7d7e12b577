"""PodNetwork against the real CNI plugins, inside network namespaces the
test makes (a private "host" namespace and one per pod): the machine's own
network is never touched."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from k8py.kubelet.network.cni import NetworkError, PodNetwork
from k8py.kubelet.runtime.interface import Sandbox

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not Path("/usr/lib/cni/bridge").exists(),
                                reason="needs root and the CNI plugins")

POD_CIDR, CLUSTER_CIDR, SERVICE_CIDR = "10.77.1.0/24", "10.77.0.0/16", "10.78.0.0/16"


def sh(*argv, check=True) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, check=check)


def in_ns(ns: str, *argv, check=True) -> subprocess.CompletedProcess:
    return sh("ip", "netns", "exec", ns, *argv, check=check)


@pytest.fixture
def namespaces():
    suffix = secrets.token_hex(3)
    made = []

    def make(role: str) -> str:
        name = f"knet-{role}-{suffix}"
        sh("ip", "netns", "add", name)
        made.append(name)
        in_ns(name, "ip", "link", "set", "lo", "up")
        return name

    yield make
    for name in reversed(made):
        sh("ip", "netns", "del", name, check=False)


@pytest.fixture
async def network(tmp_path, namespaces):
    host = namespaces("host")
    net = PodNetwork(tmp_path / "agent" / "etc" / "cni" / "net.d", pod_cidr=POD_CIDR,
                     cluster_cidr=CLUSTER_CIDR, service_cidr=SERVICE_CIDR, host_netns=host)
    await net.ensure_host_networking()
    yield net, host
    await net.cleanup()


def sandbox_in(ns: str, sandbox_id: str | None = None) -> Sandbox:
    sid = sandbox_id or secrets.token_hex(8)
    return Sandbox(id=sid, pod_uid="uid-" + sid, netns_path=f"/var/run/netns/{ns}", ipc_ns_path=None,
                   uts_ns_path=None, pid_ns_path=None, cgroup_parent="")


def pod(name: str, host_port: int | None = None) -> dict:
    container = {"name": "c", "image": "busybox"}
    if host_port:
        container["ports"] = [{"containerPort": 8080, "hostPort": host_port, "protocol": "TCP"}]
    return {"metadata": {"name": name, "namespace": "default", "uid": "uid-" + name},
            "spec": {"containers": [container]}}


def ping(ns: str, ip: str) -> bool:
    return in_ns(ns, "busybox", "ping", "-c", "1", "-W", "2", ip, check=False).returncode == 0


async def test_conflist_is_a_normal_cni_config(network):
    net, _ = network
    conf = orjson.loads(net.conflist_path.read_bytes())
    assert net.conflist_path.name == "10-k8py.conflist"
    bridge, portmap = conf["plugins"]
    assert (bridge["type"], bridge["bridge"], bridge["isGateway"], bridge["ipMasq"], bridge["hairpinMode"]) == \
        ("bridge", "k8py0", True, False, True)
    assert bridge["ipam"]["type"] == "host-local"
    assert bridge["ipam"]["ranges"] == [[{"subnet": POD_CIDR, "gateway": "10.77.1.1"}]]
    assert portmap == {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True}


async def test_host_networking_keeps_pod_and_service_ranges_local(network):
    net, host = network
    assert in_ns(host, "cat", "/proc/sys/net/ipv4/ip_forward").stdout.strip() == "1"
    assert in_ns(host, "cat", "/proc/sys/net/bridge/bridge-nf-call-iptables").stdout.strip() == "1"
    # the whole service range goes to the bridge, even before any Service exists
    assert "dev k8py0" in in_ns(host, "ip", "route", "get", "10.78.200.9").stdout
    # other nodes' slices of the cluster range are unreachable until a peer route exists
    assert in_ns(host, "ip", "route", "get", "10.77.9.9", check=False).returncode != 0
    assert "dev k8py0" in in_ns(host, "ip", "route", "get", "10.77.1.50").stdout
    nat = in_ns(host, "iptables", "-t", "nat", "-S", "K8PY-POSTROUTING").stdout
    assert "-s 10.77.1.0/24" in nat and "MASQUERADE" in nat and "-d 10.77.0.0/16 -m comment --comment \"k8py pod network\" -j RETURN" in nat
    assert "-j K8PY-POSTROUTING" in in_ns(host, "iptables", "-t", "nat", "-S", "POSTROUTING").stdout
    # idempotent: running it again changes nothing and duplicates no jump
    await net.ensure_host_networking()
    assert in_ns(host, "iptables", "-t", "nat", "-S", "POSTROUTING").stdout.count("K8PY-POSTROUTING") == 1


async def test_peer_routes_replace_unreachable_for_known_nodes(network):
    net, host = network
    in_ns(host, "ip", "link", "add", "knv0", "type", "veth", "peer", "name", "knv1")
    in_ns(host, "ip", "addr", "add", "192.168.77.1/24", "dev", "knv0")
    in_ns(host, "ip", "link", "set", "knv0", "up")
    await net.set_peer_routes({"10.77.2.0/24": "192.168.77.2", POD_CIDR: "192.168.77.1"})
    assert "via 192.168.77.2" in in_ns(host, "ip", "route", "get", "10.77.2.7").stdout
    assert "dev k8py0" in in_ns(host, "ip", "route", "get", "10.77.1.7").stdout  # own range never re-routed
    await net.set_peer_routes({})
    assert in_ns(host, "ip", "route", "get", "10.77.2.7", check=False).returncode != 0


async def test_two_pods_reach_each_other_and_the_gateway(network, namespaces):
    net, host = network
    a_ns, b_ns = namespaces("a"), namespaces("b")
    a, b = sandbox_in(a_ns), sandbox_in(b_ns)
    ip_a, ip_b = await asyncio.gather(net.setup(a, pod("a")), net.setup(b, pod("b")))
    assert ip_a != ip_b and ip_a.startswith("10.77.1.") and ip_b.startswith("10.77.1.")
    assert a.ip == ip_a
    assert f"inet {ip_a}/24" in in_ns(a_ns, "ip", "-4", "addr", "show", "eth0").stdout
    assert "default via 10.77.1.1" in in_ns(a_ns, "ip", "route").stdout
    assert await asyncio.to_thread(ping, a_ns, ip_b)
    assert await asyncio.to_thread(ping, b_ns, "10.77.1.1")
    assert await asyncio.to_thread(ping, host, ip_a)
    # loopback is up inside the pod
    assert await asyncio.to_thread(ping, a_ns, "127.0.0.1")
    # hairpin mode on the pod's bridge port
    ports = in_ns(host, "bridge", "-d", "link", "show").stdout
    assert "hairpin on" in ports
    await net.check(a, pod("a"))
    await net.teardown(a, pod("a"))
    await net.teardown(b, pod("b"))


async def test_teardown_releases_the_ip_and_is_idempotent(network, namespaces):
    net, host = network
    ns = namespaces("c")
    box = sandbox_in(ns)
    ip = await net.setup(box, pod("c"))
    lease = net.ipam_dir / "k8py" / ip
    assert lease.exists() and lease.read_text().startswith(box.id)
    await net.teardown(box, pod("c"))
    assert not lease.exists()
    assert in_ns(ns, "ip", "link", "show", "eth0", check=False).returncode != 0
    await net.teardown(box, pod("c"))   # a second DEL is fine
    # the namespace gone before teardown, and the agent restarted in between
    # (a new PodNetwork over the same folders): the IP and the hostPort rules are still released
    ns2 = namespaces("d")
    box2 = sandbox_in(ns2)
    ip2 = await net.setup(box2, pod("d", host_port=18181))
    assert "--dport 18181" in in_ns(host, "iptables", "-t", "nat", "-S").stdout
    sh("ip", "netns", "del", ns2)
    restarted = PodNetwork(net.config_dir, pod_cidr=POD_CIDR, cluster_cidr=CLUSTER_CIDR,
                           service_cidr=SERVICE_CIDR, host_netns=host)
    await restarted.teardown(box2, pod("d"))
    assert not (net.ipam_dir / "k8py" / ip2).exists()
    assert "--dport 18181" not in in_ns(host, "iptables", "-t", "nat", "-S").stdout


async def test_host_port_reaches_the_pod_through_portmap(network, namespaces):
    net, host = network
    ns = namespaces("web")
    box = sandbox_in(ns)
    await net.setup(box, pod("web", host_port=18080))
    server = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c",
                               "import socket\n"
                               "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                               "s.bind(('0.0.0.0', 8080)); s.listen()\n"
                               "while True:\n c,_=s.accept(); c.sendall(b'hello from pod'); c.close()\n"])
    try:
        def fetch(target):
            out = in_ns(host, sys.executable, "-c",
                        f"import socket; s=socket.create_connection(('{target}', 18080), 2); print(s.recv(100).decode())",
                        check=False)
            return out.stdout.strip()
        deadline = time.monotonic() + 10
        while fetch("10.77.1.1") != "hello from pod" and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert fetch("10.77.1.1") == "hello from pod"    # host address : hostPort -> pod:8080
        nat = in_ns(host, "iptables", "-t", "nat", "-S").stdout
        assert "--dport 18080" in nat
        await net.teardown(box, pod("web", host_port=18080))
        assert "--dport 18080" not in in_ns(host, "iptables", "-t", "nat", "-S").stdout
    finally:
        server.kill()
        server.wait()


async def test_cleanup_removes_bridge_routes_and_chains(tmp_path, namespaces):
    host = namespaces("h2")
    net = PodNetwork(tmp_path / "net.d", pod_cidr=POD_CIDR, cluster_cidr=CLUSTER_CIDR,
                     service_cidr=SERVICE_CIDR, host_netns=host, bridge="knbr1")
    await net.ensure_host_networking()
    assert in_ns(host, "ip", "link", "show", "knbr1", check=False).returncode == 0
    await net.cleanup()
    assert in_ns(host, "ip", "link", "show", "knbr1", check=False).returncode != 0
    assert "proto 175" not in in_ns(host, "ip", "route", "show", "table", "all").stdout
    assert "K8PY" not in in_ns(host, "iptables", "-t", "nat", "-S").stdout
    assert "K8PY" not in in_ns(host, "iptables", "-S").stdout


async def test_plugin_failure_is_a_network_error(tmp_path, namespaces):
    host, ns = namespaces("h3"), namespaces("e")
    net = PodNetwork(tmp_path / "net.d", bin_dir=tmp_path / "nobin", pod_cidr=POD_CIDR,
                     cluster_cidr=CLUSTER_CIDR, service_cidr=SERVICE_CIDR, host_netns=host)
    with pytest.raises(NetworkError, match="failed to find plugin"):
        await net.setup(sandbox_in(ns), pod("e"))
