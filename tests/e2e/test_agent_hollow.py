"""`k8py agent --runtime simulated --count N`: hollow nodes run bound pods, seen with the real kubectl."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.e2e.conftest import REPO, TOKEN, wait_for


@pytest.fixture
def hollow_agent(server, tmp_path):
    prefix = f"kc-hollow-{tmp_path.name[-6:].lower().replace('_', '')}"
    log = open(tmp_path / "agent.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "k8py", "agent", "--server", server.url, "--token", TOKEN,
                             "--runtime", "simulated", "--count", "3", "--node-name", prefix,
                             "--data-dir", str(tmp_path / "agent")],
                            stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        yield prefix
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for i in range(3):
            server.kubectl("delete", "node", f"{prefix}-{i}", "--wait=false", check=False)


def test_hollow_nodes_register_and_run_pods(server, namespace, hollow_agent):
    names = [f"{hollow_agent}-{i}" for i in range(3)]

    def nodes_ready():
        out = server.kubectl("get", "nodes", "-o", "json").stdout
        ready = {n["metadata"]["name"] for n in json.loads(out)["items"]
                 if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions", []))}
        return set(names) <= ready
    wait_for(nodes_ready, timeout=30, what="hollow nodes Ready")
    table = server.kubectl("get", "nodes", names[0]).stdout
    assert "Ready" in table and "v1.32" in table
    for i, node in enumerate(names):
        server.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p{i}"},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}]}}))

    def all_running():
        out = json.loads(server.kubectl("get", "pods", "-n", namespace, "-o", "json").stdout)
        return len(out["items"]) == 3 and all(p["status"].get("phase") == "Running" for p in out["items"])
    wait_for(all_running, timeout=30, what="pods Running on hollow nodes")
    wide = server.kubectl("get", "pods", "-n", namespace, "-o", "wide").stdout
    assert "1/1" in wide and names[0] in wide
    # Each hollow pod gets its own IP from its node's podCIDR.
    import ipaddress
    pods = json.loads(server.kubectl("get", "pods", "-n", namespace, "-o", "json").stdout)["items"]
    cidrs = {n["metadata"]["name"]: n["spec"]["podCIDR"] for n in
             json.loads(server.kubectl("get", "nodes", "-o", "json").stdout)["items"] if n["metadata"]["name"] in names}
    ips = [p["status"]["podIP"] for p in pods]
    assert len(set(ips)) == 3
    for p in pods:
        assert ipaddress.ip_address(p["status"]["podIP"]) in ipaddress.ip_network(cidrs[p["spec"]["nodeName"]])

    # Deleting with the default grace period: the kubelet finishes the deletion.
    server.kubectl("delete", "pod", "p0", "-n", namespace, "--wait=true", timeout=30)
    assert "p0" not in server.kubectl("get", "pods", "-n", namespace).stdout
