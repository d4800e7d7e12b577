"""`k8py agent --cleanup` leaves no k8py chains, routes or interfaces behind.

Everything happens inside a network namespace this test makes: the pod network
is set up by the agent's own code there, kube-proxy's chains as kube-proxy
lays them out, then the real `k8py agent --cleanup` runs in it.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys

import pytest

from tests.e2e.conftest import REPO

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")

SETUP = """
import asyncio
from k8py.kubelet.network.commands import HostCommands
from k8py.kubelet.network.host import HostNetworking
asyncio.run(HostNetworking(HostCommands(), bridge="{bridge}", pod_cidr="10.42.7.0/24",
                           cluster_cidr="10.42.0.0/16", service_cidr="10.43.0.0/16").ensure())
"""
PROXY_RULES = """*nat
:KUBE-SERVICES - [0:0]
:KUBE-NODEPORTS - [0:0]
:KUBE-POSTROUTING - [0:0]
:KUBE-MARK-MASQ - [0:0]
:KUBE-SVC-XPGD46QRK7WJZT7O - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING
-A KUBE-SERVICES -d 10.43.0.10/32 -p udp --dport 53 -j KUBE-SVC-XPGD46QRK7WJZT7O
COMMIT
"""
# What the portmap plugin leaves once a hostPort pod has come and gone (its shared chains),
# plus a per-pod chain whose DEL never ran.
PORTMAP_RULES = """*nat
:CNI-HOSTPORT-DNAT - [0:0]
:CNI-HOSTPORT-MASQ - [0:0]
:CNI-HOSTPORT-SETMARK - [0:0]
:CNI-DN-0123456789abcdef01234 - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT
-A OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT
-A POSTROUTING -m comment --comment "CNI portfwd requiring masquerade" -j CNI-HOSTPORT-MASQ
-A CNI-HOSTPORT-MASQ -m mark --mark 0x2000/0x2000 -j MASQUERADE
-A CNI-HOSTPORT-SETMARK -m comment --comment "CNI portfwd masquerade mark" -j MARK --set-xmark 0x2000/0x2000
-A CNI-DN-0123456789abcdef01234 -s 10.42.7.0/24 -p tcp --dport 18080 -j CNI-HOSTPORT-SETMARK
-A CNI-DN-0123456789abcdef01234 -p tcp --dport 18080 -j DNAT --to-destination 10.42.7.5:8080
COMMIT
"""


def in_ns(ns: str, *argv: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, check=True, **kw)


def k8py_state(ns: str, bridge: str) -> dict:
    links = in_ns(ns, "ip", "-o", "link", "show").stdout
    routes = in_ns(ns, "ip", "route", "show", "proto", "175").stdout.strip()
    rules = in_ns(ns, "iptables-save").stdout
    ours = ("KUBE-", "K8PY-", "CNI-")
    chains = sorted({line.split()[0][1:] for line in rules.splitlines()
                     if line.startswith(":") and line[1:].startswith(ours)})
    jumps = [line for line in rules.splitlines() if line.startswith("-A ") and any(f"-j {o}" in line for o in ours)]
    return {"bridge": f" {bridge}:" in links, "routes": routes, "chains": chains, "jumps": jumps}


def test_agent_cleanup_removes_chains_routes_and_the_bridge(tmp_path):
    ns = f"k8pyclean-{secrets.token_hex(3)}"
    bridge = f"kc{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        in_ns(ns, "ip", "link", "set", "lo", "up")
        in_ns(ns, sys.executable, "-c", SETUP.format(bridge=bridge), cwd=REPO)
        in_ns(ns, "iptables-restore", "--noflush", input=PROXY_RULES)
        in_ns(ns, "iptables-restore", "--noflush", input=PORTMAP_RULES)
        before = k8py_state(ns, bridge)
        assert before["bridge"] and before["routes"]
        assert {"K8PY-POSTROUTING", "KUBE-SERVICES", "KUBE-SVC-XPGD46QRK7WJZT7O", "CNI-HOSTPORT-DNAT",
                "CNI-DN-0123456789abcdef01234"} <= set(before["chains"])

        out = in_ns(ns, sys.executable, "-m", "k8py", "agent", "--cleanup", "--data-dir", str(tmp_path / "agent"),
                    "--cni-bridge", bridge, cwd=REPO).stdout
        assert "cleaned up" in out
        assert k8py_state(ns, bridge) == {"bridge": False, "routes": "", "chains": [], "jumps": []}
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)


KEEP = """
import asyncio
from k8py.kubelet.network.commands import HostCommands
from k8py.kubelet.network.host import HostNetworking
net = HostNetworking(HostCommands(), bridge="{bridge}", pod_cidr="10.42.7.0/24", cluster_cidr="10.42.0.0/16",
                     service_cidr="10.43.0.0/16")
print(asyncio.run(net.remove_idle_portmap_chains()))
"""


def test_hostport_chains_another_cni_user_still_needs_are_kept():
    ns = f"k8pyclean-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        busy = PORTMAP_RULES.replace("COMMIT", "-A CNI-HOSTPORT-DNAT -p tcp -j CNI-DN-0123456789abcdef01234\nCOMMIT")
        in_ns(ns, "iptables-restore", "--noflush", input=busy)
        before = k8py_state(ns, "none")
        assert in_ns(ns, sys.executable, "-c", KEEP.format(bridge="none"), cwd=REPO).stdout.strip() == "False"
        assert k8py_state(ns, "none") == before and len(before["jumps"]) == 5, before
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
