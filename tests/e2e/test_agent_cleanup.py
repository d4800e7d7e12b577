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


def in_ns(ns: str, *argv: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True, check=True, **kw)


def k8py_state(ns: str, bridge: str) -> dict:
    links = in_ns(ns, "ip", "-o", "link", "show").stdout
    routes = in_ns(ns, "ip", "route", "show", "proto", "175").stdout.strip()
    rules = in_ns(ns, "iptables-save").stdout
    chains = sorted({line.split()[0][1:] for line in rules.splitlines()
                     if line.startswith(":") and line[1:].startswith(("KUBE-", "K8PY-"))})
    return {"bridge": f" {bridge}:" in links, "routes": routes, "chains": chains}


def test_agent_cleanup_removes_chains_routes_and_the_bridge(tmp_path):
    ns = f"k8pyclean-{secrets.token_hex(3)}"
    bridge = f"kc{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        in_ns(ns, "ip", "link", "set", "lo", "up")
        in_ns(ns, sys.executable, "-c", SETUP.format(bridge=bridge), cwd=REPO)
        in_ns(ns, "iptables-restore", "--noflush", input=PROXY_RULES)
        before = k8py_state(ns, bridge)
        assert before["bridge"] and before["routes"]
        assert {"K8PY-POSTROUTING", "KUBE-SERVICES", "KUBE-SVC-XPGD46QRK7WJZT7O"} <= set(before["chains"])

        out = in_ns(ns, sys.executable, "-m", "k8py", "agent", "--cleanup", "--data-dir", str(tmp_path / "agent"),
                    "--cni-bridge", bridge, cwd=REPO).stdout
        assert "cleaned up" in out
        assert k8py_state(ns, bridge) == {"bridge": False, "routes": "", "chains": []}
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=False)
