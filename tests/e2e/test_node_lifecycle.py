"""Nodes that die and nodes that are drained, on two hollow (simulated-runtime) agents, with the real kubectl.

- A stopped agent: its node's conditions go Unknown, it is tainted unreachable
  (NoSchedule and NoExecute), its pods go not Ready and leave the Service's
  endpoints, the taint eviction controller deletes them after their
  tolerationSeconds, the Deployment replaces them on the healthy node, and the
  restarted agent brings the node back Ready and untainted.
- `kubectl drain --ignore-daemonsets` moves a Deployment's pods to the other
  node, waits on a PodDisruptionBudget (429, retried by kubectl) and leaves the
  DaemonSet's pod; `kubectl uncordon` returns the node.

The server runs with short node-lifecycle settings (flags) so this takes seconds.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import uuid

import pytest

from tests.e2e.conftest import REPO, TOKEN, start_server, wait_for, wait_for_default_service_account

GRACE = "4s"
TOLERATION = "3"
NODES = ("nl-a", "nl-b")


class Agents:
    """One hollow agent process per node, stopped (kill -9, as a crash) and started again at will."""

    def __init__(self, server, tmp_path):
        self.server = server
        self.tmp_path = tmp_path
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str) -> None:
        if name in self.procs and self.procs[name].poll() is None:
            return
        log = open(self.tmp_path / f"{name}.log", "ab")
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "k8py", "agent", "--server", self.server.url, "--token", TOKEN,
             "--runtime", "simulated", "--node-name", name, "--data-dir", str(self.tmp_path / name),
             "--node-lease-duration-seconds", "2"], stdout=log, stderr=subprocess.STDOUT, cwd=REPO)

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def pause(self, name: str, paused: bool = True) -> None:
        """SIGSTOP: the agent is alive but silent, as behind a network partition."""
        self.procs[name].send_signal(signal.SIGSTOP if paused else signal.SIGCONT)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            proc.send_signal(signal.SIGCONT)
            proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nodelife")
    server = start_server(tmp / "server", extra=[
        "--node-monitor-grace-period", GRACE, "--node-monitor-period", "500ms",
        "--default-unreachable-toleration-seconds", TOLERATION,
        "--default-not-ready-toleration-seconds", TOLERATION])
    agents = Agents(server, tmp)
    try:
        yield server, agents
    finally:
        agents.stop_all()
        server.stop()


def node(server, name: str) -> dict:
    return server.kubectl_json("get", "node", name)


def condition(obj: dict, ctype: str) -> dict:
    return next((c for c in obj["status"].get("conditions") or [] if c["type"] == ctype), {})


def taints(server, name: str) -> set[tuple[str, str]]:
    return {(t["key"], t["effect"]) for t in node(server, name)["spec"].get("taints") or []}


def healthy(server, name: str) -> bool:
    n = node(server, name)
    return condition(n, "Ready").get("status") == "True" and not n["spec"].get("taints") \
        and not n["spec"].get("unschedulable")


@pytest.fixture
def both_up(cluster):
    """Both agents running and their nodes Ready, untainted, schedulable (whatever a test left)."""
    server, agents = cluster
    for name in NODES:
        agents.start(name)
        server.kubectl("uncordon", name, check=False)
    for name in NODES:
        wait_for(lambda: server.kubectl("get", "node", name, check=False).returncode == 0 and healthy(server, name),
                 timeout=60, interval=0.2, what=f"node {name} Ready and untainted")
    return server, agents


@pytest.fixture
def ns(cluster):
    server, _ = cluster
    name = f"nl-{uuid.uuid4().hex[:6]}"
    server.kubectl("create", "namespace", name)
    wait_for_default_service_account(server, name)
    yield name
    server.kubectl("delete", "namespace", name, "--wait=false", check=False)


def pods(server, ns: str, selector: str) -> list[dict]:
    return server.kubectl_json("get", "pods", "-n", ns, "-l", selector)["items"]


def is_ready(pod: dict) -> bool:
    return condition(pod, "Ready").get("status") == "True"


def deployment_on(server, ns: str, name: str, node_name: str, other: str, replicas: int = 2) -> list[dict]:
    """A Deployment whose pods all run on `node_name` (the other node cordoned meanwhile)."""
    server.kubectl("cordon", other)
    server.kubectl("create", "deployment", name, "-n", ns, "--image=busybox", f"--replicas={replicas}",
                   "--", "sleep", "3600")

    def running():
        items = pods(server, ns, f"app={name}")
        return len(items) == replicas and all(is_ready(p) and p["spec"].get("nodeName") == node_name for p in items)
    wait_for(running, timeout=30, interval=0.2, what=f"{name} pods Ready on {node_name}")
    server.kubectl("uncordon", other)
    return pods(server, ns, f"app={name}")


def test_stopped_agent_node_goes_unknown_pods_move_and_node_comes_back(both_up, ns):
    server, agents = both_up
    dead, alive = NODES
    first = deployment_on(server, ns, "web", dead, alive)
    server.kubectl("expose", "deployment", "web", "-n", ns, "--port=80")
    old_ips = {p["status"]["podIP"] for p in first}
    old_names = {p["metadata"]["name"] for p in first}

    def endpoint_ips(field: str) -> set[str]:
        subsets = server.kubectl_json("get", "endpoints", "web", "-n", ns).get("subsets") or []
        return {a["ip"] for s in subsets for a in s.get(field) or []}
    wait_for(lambda: endpoint_ips("addresses") == old_ips, timeout=20, interval=0.2, what="endpoints ready")
    # DefaultTolerationSeconds, with the server's --default-*-toleration-seconds
    tolerations = {(t["key"], t.get("tolerationSeconds")) for t in first[0]["spec"]["tolerations"]}
    assert ("node.kubernetes.io/unreachable", int(TOLERATION)) in tolerations
    assert ("node.kubernetes.io/not-ready", int(TOLERATION)) in tolerations

    agents.kill(dead)

    wait_for(lambda: condition(node(server, dead), "Ready").get("status") == "Unknown", timeout=30, interval=0.2,
             what="the dead node's Ready condition Unknown")
    n = node(server, dead)
    for ctype in ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure"):
        c = condition(n, ctype)
        assert (c["status"], c["reason"], c["message"]) == \
            ("Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status."), c
    assert condition(node(server, alive), "Ready")["status"] == "True"
    wait_for(lambda: {("node.kubernetes.io/unreachable", "NoSchedule"),
                      ("node.kubernetes.io/unreachable", "NoExecute")} <= taints(server, dead),
             timeout=20, interval=0.2, what="unreachable taints on the dead node")
    no_execute = next(t for t in node(server, dead)["spec"]["taints"] if t["effect"] == "NoExecute")
    assert no_execute.get("timeAdded")
    assert server.kubectl("get", "node", dead).stdout.splitlines()[1].split()[1] == "NotReady"

    # Its pods are not Ready (they stay listed, Terminating, while no kubelet finishes them) and
    # leave the Service's ready addresses.
    wait_for(lambda: all(not is_ready(p) for p in server.kubectl_json("get", "pods", "-n", ns)["items"]
                         if p["metadata"]["name"] in old_names), timeout=20, interval=0.2,
             what="the dead node's pods not Ready")
    wait_for(lambda: not (endpoint_ips("addresses") & old_ips), timeout=20, interval=0.2,
             what="the dead node's pods out of the endpoints")
    events = server.kubectl_json("get", "events", "-n", ns)["items"]
    assert any(e["reason"] == "NodeNotReady" and e["type"] == "Warning" and e["message"] == "Node is not ready"
               and e["involvedObject"]["name"] in old_names for e in events)
    node_events = server.kubectl_json("get", "events", "-n", "default",
                                      "--field-selector", f"involvedObject.name={dead}")["items"]
    assert any(e["reason"] == "NodeNotReady" and e["source"].get("component") == "node-controller"
               and e["message"] == f"Node {dead} status is now: NodeNotReady" for e in node_events)
    assert any(e["reason"] == "RegisteredNode" for e in node_events)

    # After tolerationSeconds the taint eviction controller deletes them; replacements run on the live node.
    def replaced():
        items = pods(server, ns, "app=web")
        live = [p for p in items if not p["metadata"].get("deletionTimestamp")]
        return len(live) == 2 and all(p["spec"].get("nodeName") == alive and is_ready(p) for p in live) \
            and all(p["metadata"].get("deletionTimestamp") for p in items if p["metadata"]["name"] in old_names)
    wait_for(replaced, timeout=40, interval=0.3, what="pods evicted and replaced on the live node")
    evicted = [p for p in pods(server, ns, "app=web") if p["metadata"]["name"] in old_names]
    assert all(condition(p, "DisruptionTarget").get("reason") == "DeletionByTaintManager" for p in evicted)
    new_ips = {p["status"]["podIP"] for p in pods(server, ns, "app=web") if p["metadata"]["name"] not in old_names}
    wait_for(lambda: endpoint_ips("addresses") == new_ips, timeout=20, interval=0.2, what="endpoints on new pods")

    # The agent comes back: Ready, untainted, and it finishes the evicted pods.
    agents.start(dead)
    wait_for(lambda: healthy(server, dead), timeout=40, interval=0.2, what="the node Ready and untainted again")
    wait_for(lambda: not ({p["metadata"]["name"] for p in pods(server, ns, "app=web")} & old_names),
             timeout=30, interval=0.3, what="the evicted pods gone")


def test_silent_agent_that_comes_back_in_time_gets_its_node_and_pods_ready_again(both_up, ns):
    server, agents = both_up
    silent = NODES[0]
    server.kubectl("create", "-n", ns, "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "patient", "labels": {"app": "patient"}},
        "spec": {"nodeName": silent, "containers": [{"name": "c", "image": "busybox"}],
                 "tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                                  "effect": "NoExecute", "tolerationSeconds": 600}]}}))
    server.kubectl("expose", "pod", "patient", "-n", ns, "--port=80")

    def endpoints(field: str) -> list[str]:
        subsets = server.kubectl_json("get", "endpoints", "patient", "-n", ns).get("subsets") or []
        return [a["targetRef"]["name"] for s in subsets for a in s.get(field) or []]
    wait_for(lambda: endpoints("addresses") == ["patient"], timeout=20, interval=0.2, what="the pod's endpoint")

    agents.pause(silent)
    try:
        wait_for(lambda: condition(node(server, silent), "Ready").get("status") == "Unknown", timeout=30,
                 interval=0.2, what="the silent node Unknown")
        wait_for(lambda: endpoints("notReadyAddresses") == ["patient"] and not endpoints("addresses"), timeout=20,
                 interval=0.2, what="the pod's endpoint not ready")
        assert not is_ready(server.kubectl_json("get", "pod", "patient", "-n", ns))
        wait_for(lambda: ("node.kubernetes.io/unreachable", "NoExecute") in taints(server, silent), timeout=20,
                 interval=0.2, what="the NoExecute taint")
    finally:
        agents.pause(silent, False)
    # The kubelet sees what was changed behind its back and puts it right: node and pod Ready again.
    wait_for(lambda: healthy(server, silent), timeout=30, interval=0.2, what="the node Ready and untainted")
    wait_for(lambda: endpoints("addresses") == ["patient"], timeout=30, interval=0.2, what="the pod ready again")
    pod = server.kubectl_json("get", "pod", "patient", "-n", ns)
    assert is_ready(pod) and not pod["metadata"].get("deletionTimestamp")


def test_drain_moves_pods_waits_on_budget_skips_daemonsets_and_uncordon(both_up, ns):
    server, _ = both_up
    drained, other = NODES
    server.kubectl("create", "-n", ns, "-f", "-", input=json.dumps({
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
        "spec": {"selector": {"matchLabels": {"app": "agent"}},
                 "template": {"metadata": {"labels": {"app": "agent"}},
                              "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}))
    wait_for(lambda: len([p for p in pods(server, ns, "app=agent") if is_ready(p)]) == 2, timeout=30,
             interval=0.2, what="a daemon pod Ready on each node")
    # (two untainted, schedulable nodes, pods running on each: what conformance asks of a cluster)
    assert {p["spec"]["nodeName"] for p in pods(server, ns, "app=agent")} == set(NODES)
    first = deployment_on(server, ns, "web", drained, other)
    server.kubectl("create", "poddisruptionbudget", "web", "-n", ns, "--selector=app=web", "--min-available=1")
    wait_for(lambda: (server.kubectl_json("get", "pdb", "web", "-n", ns).get("status") or {})
             .get("disruptionsAllowed") == 1, timeout=20, interval=0.2, what="the budget allowing one disruption")

    out = server.kubectl("drain", drained, "--ignore-daemonsets", "--timeout=90s", timeout=120)
    text = out.stdout + out.stderr
    daemon_pod = next(p for p in pods(server, ns, "app=agent") if p["spec"]["nodeName"] == drained)
    assert f"Warning: ignoring DaemonSet-managed Pods: {ns}/{daemon_pod['metadata']['name']}" in text
    # Both pods were asked for at once: one fit the budget, the other was refused (429) and retried.
    assert "Cannot evict pod as it would violate the pod's disruption budget." in text
    assert "will retry after 5s" in text
    for p in first:
        assert f"pod/{p['metadata']['name']} evicted" in text
    assert f"node/{drained} drained" in text

    n = node(server, drained)
    assert n["spec"].get("unschedulable") is True
    assert ("node.kubernetes.io/unschedulable", "NoSchedule") in taints(server, drained)
    web = pods(server, ns, "app=web")
    assert len(web) == 2 and all(p["spec"]["nodeName"] == other for p in web)
    assert not {p["metadata"]["name"] for p in web} & {p["metadata"]["name"] for p in first}
    # the DaemonSet's pod stays
    assert any(p["spec"]["nodeName"] == drained for p in pods(server, ns, "app=agent"))
    assert "SchedulingDisabled" in server.kubectl("get", "node", drained).stdout

    assert f"node/{drained} uncordoned" in server.kubectl("uncordon", drained).stdout
    wait_for(lambda: healthy(server, drained), timeout=20, interval=0.2, what="the node schedulable, untainted")
