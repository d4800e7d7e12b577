"""The controller-manager as its own process: health, metrics, leader election, crash safety;
and the namespace lifecycle controllers it runs inside `k8py server`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request

import pytest

from tests.e2e.conftest import REPO, free_port, start_server, wait_for
from tests.e2e.controller_fixtures import PodCensus, deployment_yaml
from tests.e2e.pod_runner import PodRunner


@pytest.fixture(scope="module")
def bare_server(tmp_path_factory):
    """A server without its own controller-manager: the tests run theirs."""
    srv = start_server(tmp_path_factory.mktemp("k8py-bare"), extra=["--disable", "controller-manager"])
    yield srv
    srv.stop()


class ManagerProcess:
    def __init__(self, server, *flags):
        self.port = free_port()
        self.log = open(server.data_dir / f"cm-{self.port}.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "k8py", "controller-manager", "--kubeconfig", str(server.kubeconfig),
             "--port", str(self.port), *flags], stdout=self.log, stderr=subprocess.STDOUT, cwd=REPO)
        wait_for(lambda: self.proc.poll() is not None or self.get("/healthz") == "ok", timeout=20,
                 what="controller-manager /healthz")
        assert self.proc.poll() is None, "controller-manager exited"

    def get(self, path: str) -> str | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=2) as r:
                return r.read().decode()
        except OSError:
            return None

    def metric(self, line_prefix: str) -> str | None:
        text = self.get("/metrics") or ""
        return next((line.split()[-1] for line in text.splitlines() if line.startswith(line_prefix)), None)

    def kill(self, sig=signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)
            self.proc.wait(timeout=15)
        self.log.close()


def test_killing_the_controller_manager_mid_rollout_loses_and_duplicates_nothing(bare_server):
    server = bare_server
    namespace = "cm-crash"
    server.kubectl("create", "namespace", namespace)
    runner = PodRunner(server.kubeconfig, namespace, delay=0.5).start()
    # serviceaccount too: pods are admitted only once the namespace's default account exists.
    manager = ManagerProcess(server, "--controllers", "replicaset,deployment,garbage-collector,serviceaccount",
                             "--no-leader-elect")
    census = None
    try:
        server.kubectl("apply", "-n", namespace, "-f", "-",
                       input=deployment_yaml("crash", replicas=6, surge=2, unavailable=1, min_ready=1))
        server.kubectl("rollout", "status", "deploy/crash", "-n", namespace, "--timeout=60s")
        census = PodCensus(server, namespace)
        wait_for(lambda: len(census.samples) >= 6, what="the pod watch")
        server.kubectl("set", "image", "deploy/crash", "main=nginx:2", "-n", namespace)

        def rollout_started():
            sets = server.kubectl_json("get", "rs", "-n", namespace)["items"]
            return len(sets) == 2 and all(rs["spec"]["replicas"] > 0 for rs in sets)
        wait_for(rollout_started, what="the rollout to be under way")
        manager.kill()
        manager = ManagerProcess(server, "--controllers", "replicaset,deployment,garbage-collector,serviceaccount",
                                 "--no-leader-elect")
        server.kubectl("rollout", "status", "deploy/crash", "-n", namespace, "--timeout=90s")
    finally:
        manager.kill(signal.SIGTERM)
        runner.stop()
        if census:
            census.stop()
    assert census.most_pods <= 8  # replicas + maxSurge, even across the crash
    pods = server.kubectl_json("get", "pods", "-n", namespace)["items"]
    assert len(pods) == 6
    assert {p["spec"]["containers"][0]["image"] for p in pods} == {"nginx:2"}
    assert len({p["metadata"]["labels"]["pod-template-hash"] for p in pods}) == 1
    sets = server.kubectl_json("get", "rs", "-n", namespace)["items"]
    assert sorted(rs["spec"]["replicas"] for rs in sets) == [0, 6]


def test_health_metrics_and_leader_election(bare_server):
    server = bare_server
    first = ManagerProcess(server, "--controllers", "serviceaccount", "--leader-elect")
    second = None
    try:
        wait_for(lambda: first.metric('leader_election_master_status{name="kube-controller-manager"}') == "1",
                 what="the first manager to lead")
        second = ManagerProcess(server, "--controllers", "serviceaccount", "--leader-elect")
        lease = server.kubectl_json("get", "lease", "kube-controller-manager", "-n", "kube-system")
        holder = lease["spec"]["holderIdentity"]
        assert second.metric('leader_election_master_status{name="kube-controller-manager"}') == "0"
        server.kubectl("create", "namespace", "cm-metrics")
        wait_for(lambda: server.kubectl("get", "sa", "default", "-n", "cm-metrics", check=False).returncode == 0,
                 what="the leader's serviceaccount controller")
        text = first.get("/metrics")
        assert "# TYPE workqueue_adds_total counter" in text
        assert 'controller_syncs_total{controller="serviceaccount",result="success"}' in text
        first.kill(signal.SIGTERM)  # a clean stop hands the lease over at once
        wait_for(lambda: second.metric('leader_election_master_status{name="kube-controller-manager"}') == "1",
                 timeout=15, what="the second manager to take over")
        lease = server.kubectl_json("get", "lease", "kube-controller-manager", "-n", "kube-system")
        assert lease["spec"]["holderIdentity"] != holder and lease["spec"]["leaseTransitions"] >= 1
    finally:
        first.kill(signal.SIGTERM)
        if second:
            second.kill(signal.SIGTERM)


def test_unknown_controller_names_are_refused(bare_server):
    result = subprocess.run([sys.executable, "-m", "k8py", "controller-manager", "--kubeconfig",
                             str(bare_server.kubeconfig), "--controllers", "deployment,nonsense"],
                            capture_output=True, text=True, cwd=REPO, timeout=30)
    assert result.returncode == 2 and '"nonsense" is not in the list of known controllers' in result.stderr


def test_namespaces_get_their_service_account_and_ca_and_are_emptied_on_delete(server):
    server.kubectl("create", "namespace", "cm-lifecycle")
    wait_for(lambda: server.kubectl("get", "sa", "default", "-n", "cm-lifecycle", check=False).returncode == 0,
             what="the default service account")
    ca = wait_for(lambda: server.kubectl("get", "cm", "kube-root-ca.crt", "-n", "cm-lifecycle", "-o", "json",
                                         check=False).stdout, what="kube-root-ca.crt")
    assert (server.data_dir / "server" / "tls" / "server-ca.crt").read_text() == json.loads(ca)["data"]["ca.crt"]
    server.kubectl("delete", "sa", "default", "-n", "cm-lifecycle")
    wait_for(lambda: server.kubectl("get", "sa", "default", "-n", "cm-lifecycle", check=False).returncode == 0,
             what="the default service account to come back")
    server.kubectl("create", "configmap", "content", "-n", "cm-lifecycle")
    server.kubectl("delete", "namespace", "cm-lifecycle", "--timeout=30s")
    assert server.kubectl("get", "namespace", "cm-lifecycle", check=False).returncode == 1


def test_pod_gc_collects_finished_pods_over_threshold_and_pods_of_vanished_or_dead_nodes(bare_server):
    server = bare_server
    namespace = "cm-podgc"
    server.kubectl("create", "namespace", namespace)
    # No serviceaccount controller runs here: make the account pods are admitted with.
    server.kubectl("create", "serviceaccount", "default", "-n", namespace)
    node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "podgc-ghost-node"}}
    server.kubectl("create", "-f", "-", input=json.dumps(node))
    for i in range(3):
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"done-{i}"},
               "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
        server.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(pod))
        server.kubectl("patch", "pod", f"done-{i}", "-n", namespace, "--subresource=status", "--type=merge",
                       "-p", json.dumps({"status": {"phase": "Succeeded"}}))
    bound = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "on-ghost"},
             "spec": {"nodeName": "podgc-ghost-node", "containers": [{"name": "c", "image": "busybox"}]}}
    server.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(bound))
    server.kubectl("delete", "node", "podgc-ghost-node")
    # A node declared dead by its operator: terminating pods on it are force-deleted.
    dead = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "podgc-dead-node"},
            "spec": {"taints": [{"key": "node.kubernetes.io/out-of-service", "effect": "NoExecute"}]}}
    server.kubectl("create", "-f", "-", input=json.dumps(dead))
    stuck = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "on-dead"},
             "spec": {"nodeName": "podgc-dead-node", "containers": [{"name": "c", "image": "busybox"}]}}
    server.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(stuck))
    server.kubectl("delete", "pod", "on-dead", "-n", namespace, "--wait=false")
    assert server.kubectl_json("get", "pod", "on-dead", "-n", namespace)["metadata"]["deletionTimestamp"]
    manager = ManagerProcess(server, "--controllers", "podgc", "--no-leader-elect",
                             "--terminated-pod-gc-threshold", "1", "--pod-gc-period", "0.5")
    try:
        def remaining():
            return {p["metadata"]["name"] for p in server.kubectl_json("get", "pods", "-n", namespace)["items"]}
        wait_for(lambda: remaining() == {"done-2"}, timeout=20,
                 what="the two oldest finished pods, the ghost node's pod and the dead node's pod to go")
    finally:
        manager.kill(signal.SIGTERM)
        server.kubectl("delete", "node", "podgc-dead-node", check=False)
