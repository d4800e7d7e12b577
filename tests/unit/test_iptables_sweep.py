"""The iptables sweep tests use to remove a cluster's rules from a shared namespace."""

from __future__ import annotations

import os
import secrets
import subprocess

import pytest

from tests.iptables_sweep import empty_chains, jumps_to, rules_mentioning, sweep

# What `iptables -t nat -S` prints once the pod network of a 10.144.0.0/16 cluster is set up,
# beside another cluster's (10.150.0.0/16) and a rule nobody of ours made.
NAT = """-P PREROUTING ACCEPT
-P POSTROUTING ACCEPT
-N K8PY-POSTROUTING
-N OTHER
-A POSTROUTING -m comment --comment "k8py pod network" -j K8PY-POSTROUTING
-A POSTROUTING -s 192.0.2.0/24 -j OTHER
-A K8PY-POSTROUTING -s 10.144.0.0/16 ! -d 10.144.0.0/16 -m comment --comment "k8py pod network: masquerade" -j MASQUERADE
-A K8PY-POSTROUTING -s 10.150.0.0/16 ! -d 10.150.0.0/16 -j MASQUERADE
"""


def test_quoted_comments_stay_one_argument():
    rules = rules_mentioning(NAT, ("10.144.",))
    assert rules == [["K8PY-POSTROUTING", "-s", "10.144.0.0/16", "!", "-d", "10.144.0.0/16", "-m", "comment",
                      "--comment", "k8py pod network: masquerade", "-j", "MASQUERADE"]]


def test_chains_in_use_by_another_cluster_are_not_empty():
    assert empty_chains(NAT, "K8PY-") == []
    mine_gone = "\n".join(line for line in NAT.splitlines() if "10.150." not in line and "10.144." not in line)
    assert empty_chains(mine_gone, "K8PY-") == ["K8PY-POSTROUTING"]
    assert jumps_to(mine_gone, ["K8PY-POSTROUTING"]) == [
        ["POSTROUTING", "-m", "comment", "--comment", "k8py pod network", "-j", "K8PY-POSTROUTING"]]


@pytest.mark.skipif(os.geteuid() != 0, reason="a network namespace needs root")
def test_sweep_removes_quoted_comment_rules_and_the_emptied_chain():
    ns = f"ksweep-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    enter = ("ip", "netns", "exec", ns)
    try:
        rules = ("*nat\n:K8PY-POSTROUTING - [0:0]\n"
                 '-A POSTROUTING -m comment --comment "k8py pod network" -j K8PY-POSTROUTING\n'
                 '-A K8PY-POSTROUTING -s 10.144.0.0/16 ! -d 10.144.0.0/16 -m comment --comment "k8py pod network"'
                 " -j MASQUERADE\nCOMMIT\n"
                 "*filter\n:K8PY-FORWARD - [0:0]\n"
                 '-A FORWARD -m comment --comment "k8py pod network" -j K8PY-FORWARD\n'
                 '-A K8PY-FORWARD -s 10.144.0.0/16 -m comment --comment "k8py pod network" -j ACCEPT\n'
                 '-A K8PY-FORWARD -d 10.144.0.0/16 -m comment --comment "k8py pod network" -j ACCEPT\nCOMMIT\n')
        subprocess.run([*enter, "iptables-restore", "--noflush"], input=rules, text=True, check=True)
        sweep(("10.144.",), enter=enter)
        left = subprocess.run([*enter, "iptables-save"], capture_output=True, text=True, check=True).stdout
        assert "K8PY" not in left and "10.144." not in left, left
    finally:
        subprocess.run(["ip", "netns", "del", ns], check=True)
