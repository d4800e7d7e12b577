"""`k8py server` with its own node agent running real pods (runc, CNI, local registry), seen
with the real kubectl: seed pods, OOMKilled with back-off, static pods, agent restarts.

Host resources get names unique to this run (node, bridge, pod/service ranges, kubelet port)
and are removed afterwards, since other suites share the machine.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO, SEED, TOKEN, Server, free_port, wait_for
from tests.iptables_sweep import sweep

pytest_plugins = ["tests.e2e.registry"]

if os.geteuid() != 0:
    pytest.skip("real pods need root (runc, network namespaces)", allow_module_level=True)

pytestmark = pytest.mark.host_network  # the node's bridge, routes and kube-proxy chains are in the root namespace


class AgentServer:
    """A k8py server with its agent, restartable on the same data dir and port."""

    def __init__(self, data_dir: Path, registry):
        self.data_dir = data_dir
        self.port = free_port()
        suffix = f"{random.randrange(16**4):04x}"
        self.node = f"kc-e2e-{suffix}"
        self.bridge = f"kc{suffix}"
        octet = random.randrange(100, 200, 2)
        self.cluster_cidr, self.service_cidr = f"10.{octet}.0.0/16", f"10.{octet + 1}.0.0/16"
        self.kubelet_port = free_port()
        (data_dir / "agent").mkdir(parents=True, exist_ok=True)
        (data_dir / "agent" / "registries.yaml").write_text(registry.mirrors_config.read_text())
        self.server: Server | None = None

    def start(self) -> Server:
        log = open(self.data_dir / "server.log", "ab")
        env = {**os.environ, "K8PY_CNI_BRIDGE": self.bridge, "K8PY_KUBELET_PORT": str(self.kubelet_port)}
        process = subprocess.Popen(
            [sys.executable, "-m", "k8py", "server", "--data-dir", str(self.data_dir), "--https-listen-port",
             str(self.port), "--token", TOKEN, "--node-name", self.node, "--cluster-cidr", self.cluster_cidr,
             "--service-cidr", self.service_cidr, "--cluster-dns", self.service_cidr.replace(".0.0/16", ".0.10")],
            stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env)
        kubeconfig = self.data_dir / "kubeconfig.yaml"
        self.server = Server(process, self.data_dir, self.port, kubeconfig, self.data_dir / "kube-cache",
                             self.data_dir / "server.log")
        wait_for(lambda: process.poll() is not None or (self.server.ready() and kubeconfig.exists()), 30,
                 what="server ready")
        assert process.poll() is None, (self.data_dir / "server.log").read_text()[-3000:]
        wait_for(lambda: self.node_ready(), 120, what="node Ready")   # its CNI setup is slow on a loaded node
        return self.server

    def node_ready(self) -> bool:
        out = self.server.kubectl("get", "node", self.node, "-o", "json", check=False)
        if out.returncode != 0:
            return False
        return any(c["type"] == "Ready" and c["status"] == "True"
                   for c in json.loads(out.stdout)["status"].get("conditions", []))

    @property
    def runc_root(self) -> Path:
        return self.data_dir / "agent" / "runc" / "runc"

    def runc_list(self) -> dict[str, tuple[int, str]]:
        out = subprocess.run(["runc", "--root", str(self.runc_root), "list", "--format", "json"],
                             capture_output=True, text=True)
        return {c["id"]: (c["pid"], c["status"]) for c in json.loads(out.stdout or "null") or []}

    def wait_or_log(self, condition, timeout: float, what: str):
        """wait_for, failing with the end of the server's log (which holds the agent's)."""
        try:
            return wait_for(condition, timeout, what=what)
        except AssertionError as e:
            raise AssertionError(f"{e}\n--- server log ---\n"
                                 f"{(self.data_dir / 'server.log').read_text()[-4000:]}") from None

    def cleanup(self) -> None:
        try:
            self._remove_pods_and_stop()
        finally:   # even when kubectl timed out on a loaded node: no server or container is left
            self._remove_leftovers()

    def _remove_pods_and_stop(self) -> None:
        if self.server is None or self.server.process.poll() is not None:
            return
        try:
            for manifest in (self.data_dir / "agent" / "manifests").glob("*.yaml"):
                manifest.unlink()
            self.server.kubectl("delete", "pods", "--all", "-A", "--grace-period=1", "--wait=false", check=False)
            # The agent removes containers and sandboxes before it lets the pods go.
            wait_for(lambda: not self.runc_list() and not self.server.kubectl(
                "get", "pods", "-A", "-o", "name", check=False).stdout.strip(), 60, what="pods removed")
        finally:
            self.server.stop()

    def _remove_leftovers(self) -> None:
        for cid in self.runc_list():        # anything left behind
            subprocess.run(["runc", "--root", str(self.runc_root), "delete", "--force", cid], capture_output=True)
        mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()
                  if line.split()[1].startswith(str(self.data_dir))]
        for mount in sorted(mounts, reverse=True):
            subprocess.run(["umount", "-l", mount], capture_output=True)
        subprocess.run(["ip", "link", "del", self.bridge], capture_output=True)
        for cidr in (self.cluster_cidr, self.service_cidr):
            subprocess.run(["ip", "route", "del", cidr], capture_output=True)
        # The pod network's rules for our ranges and bridge, then its K8PY-* chains once no
        # other cluster's rules are in them (the sweep reads quoted comments as one argument).
        sweep(tuple(cidr.rsplit(".", 2)[0] + "." for cidr in (self.cluster_cidr, self.service_cidr))
              + (self.bridge,))
        # kube-proxy ran in this (the root) namespace: its chains go as `kube-proxy --cleanup` removes them.
        subprocess.run([sys.executable, "-m", "k8py", "proxy", "--cleanup"], capture_output=True, cwd=REPO)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, image_registry):
    agent_server = AgentServer(tmp_path_factory.mktemp("kc-node-agent"), image_registry)
    try:
        agent_server.start()
        yield agent_server
    finally:
        agent_server.cleanup()


def bound(manifest: str, node: str) -> str:
    """Seed manifests, with each Pod bound to our node (no scheduler needed)."""
    import yaml
    docs = [d for d in yaml.safe_load_all(manifest) if d]
    for d in docs:
        if d.get("kind") == "Pod":
            d["spec"]["nodeName"] = node
    return yaml.safe_dump_all(docs)


def liveness_window(pod: dict) -> float:
    """Seconds in which a container whose liveness probe always fails is restarted: its
    failureThreshold consecutive failures, one period apart, plus a period of slack."""
    windows = [(probe.get("failureThreshold", 3) + 1) * probe.get("periodSeconds", 10) + probe.get("timeoutSeconds", 1)
               for c in pod["spec"]["containers"] if (probe := c.get("livenessProbe"))]
    return max(windows)


def pod_json(server: Server, name: str) -> dict:
    return server.kubectl_json("get", "pod", name)


def seed(name: str) -> str:
    return (SEED / name).read_text()


def test_seed_pods_reach_their_state(cluster):
    server, node = cluster.server, cluster.node
    for name in ("06-probes.yaml", "05-lifecycle-hooks.yaml", "11-secret-configmap-env.yaml",
                 "07-init-containers.yaml", "04-emptydir-hostpath.yaml", "03-configmap-subpath.yaml"):
        server.kubectl("apply", "-f", "-", input=bound(seed(name), node))

    def ready(name):
        return lambda: any(c["type"] == "Ready" and c["status"] == "True"
                           for c in pod_json(server, name)["status"].get("conditions", []))
    wait_for(ready("probe-demo"), 60, what="probe-demo Ready")
    wait_for(ready("hook-demo"), 60, what="hook-demo Ready")
    wait_for(ready("volumes-demo"), 60, what="volumes-demo Ready")
    wait_for(ready("nginx"), 60, what="nginx Ready")
    wait_for(lambda: pod_json(server, "env-demo")["status"].get("phase") == "Succeeded", 60,
             what="env-demo Succeeded")

    # probe-demo: its liveness probes keep passing, so nothing restarts. Checked at the end of
    # the test, once a failing probe would have had the time to restart its container.
    probe = pod_json(server, "probe-demo")
    probe_window_ends = time.monotonic() + liveness_window(probe)

    # hook-demo: the postStart hook wrote its file.
    assert server.kubectl("exec", "hook-demo", "--", "cat", "/usr/share/message").stdout.strip() == \
        "Hello from the postStart handler"
    # exec passes exit codes through.
    failed = server.kubectl("exec", "probe-demo", "-c", "checker", "--", "sh", "-c", "exit 7", check=False)
    assert failed.returncode == 7

    # env-demo printed the secret, the configmap and the downward values.
    env_pod = pod_json(server, "env-demo")
    output = server.kubectl("logs", "env-demo").stdout
    for expected in ("TOKEN=secret-pass", "LANGUAGE=English", "POD_NAME=env-demo", "POD_NAMESPACE=default",
                     f"POD_IP={env_pod['status']['podIP']}", "HOSTNAME=env-demo", 'tier="demo"',
                     'note="downward"', "secret-pass"):
        assert expected in output
    assert env_pod["status"]["containerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"
    assert "Completed" in server.kubectl("get", "pod", "env-demo").stdout

    # init-demo: the app container waits for the init container (which loops until DNS knows
    # myservice: while cluster DNS isn't there it keeps waiting, once it is it completes).
    init = pod_json(server, "init-demo")
    init_state = init["status"]["initContainerStatuses"][0]["state"]
    app_state = init["status"]["containerStatuses"][0]["state"]
    if "running" in init_state:
        assert init["status"]["phase"] == "Pending"
        assert app_state["waiting"]["reason"] == "PodInitializing"
        assert "Init:0/1" in server.kubectl("get", "pod", "init-demo").stdout
    else:
        assert init_state["terminated"]["reason"] == "Completed"
        if "running" in app_state:
            assert app_state["running"]["startedAt"] >= init_state["terminated"]["finishedAt"]

    # volumes-demo wrote into its emptyDir and the hostPath folder.
    assert server.kubectl("exec", "volumes-demo", "--", "cat", "/data/hello").stdout.strip() == "hi"
    assert Path("/tmp/k8py-hostpath-demo/kept").read_text().strip() == "kept"

    # Pods get distinct IPs from the node's range and reach each other.
    import ipaddress
    ips = {pod_json(server, n)["status"]["podIP"] for n in ("probe-demo", "hook-demo", "volumes-demo")}
    assert len(ips) == 3 and all(ipaddress.ip_address(ip) in ipaddress.ip_network(cluster.cluster_cidr)
                                 for ip in ips)
    probe_ip = probe["status"]["podIP"]
    assert "ok" in server.kubectl("exec", "volumes-demo", "--", "wget", "-qO-",
                                  f"http://{probe_ip}:8080/healthz").stdout
    # nginx runs with its nginx.conf from a ConfigMap key mounted by subPath.
    nginx_ip = pod_json(server, "nginx")["status"]["podIP"]
    assert server.kubectl("exec", "volumes-demo", "--", "wget", "-qO-", f"http://{nginx_ip}/").stdout == \
        "from-configmap\n"
    resolv = server.kubectl("exec", "volumes-demo", "--", "cat", "/etc/resolv.conf").stdout
    assert "search default.svc.cluster.local svc.cluster.local cluster.local" in resolv and "ndots:5" in resolv

    events = server.kubectl("get", "events", "--field-selector", "involvedObject.name=probe-demo").stdout
    assert "Pulled" in events and "Created container: web" in events and "Started container web" in events

    time.sleep(max(0.0, probe_window_ends - time.monotonic()))   # the rest of the liveness window
    probe = pod_json(server, "probe-demo")
    assert [s["restartCount"] for s in probe["status"]["containerStatuses"]] == [0, 0]
    assert all(s["ready"] for s in probe["status"]["containerStatuses"])
    assert "2/2" in server.kubectl("get", "pod", "probe-demo").stdout
    # Not one liveness probe failed in the window (the kubelet records each failure as an event).
    events = server.kubectl_json("get", "events", "--field-selector", "involvedObject.name=probe-demo")["items"]
    assert [(e["reason"], e["message"]) for e in events
            if e["reason"] == "Killing" or e.get("message", "").startswith("Liveness probe failed")] == []


def test_oom_killed_container_restarts_with_back_off(cluster):
    server = cluster.server
    server.kubectl("apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "oom-demo"},
        "spec": {"nodeName": cluster.node, "containers": [{
            "name": "hog", "image": "busybox",
            "command": ["sh", "-c", "echo filling memory; x=aaaaaaaaaaaaaaaaaaaaaaaa; while true; do x=$x$x; done"],
            "resources": {"limits": {"memory": "20Mi"}}}]}}))

    def backing_off():
        s = pod_json(server, "oom-demo")["status"].get("containerStatuses", [{}])[0]
        return s.get("restartCount", 0) >= 2 and \
            (s.get("state", {}).get("waiting") or {}).get("reason") == "CrashLoopBackOff" and s
    status = wait_for(backing_off, 60, what="oom-demo in CrashLoopBackOff")
    assert status["lastState"]["terminated"]["reason"] == "OOMKilled"
    assert status["lastState"]["terminated"]["exitCode"] == 137
    assert "CrashLoopBackOff" in server.kubectl("get", "pod", "oom-demo").stdout
    assert "filling memory" in server.kubectl("logs", "oom-demo", "--previous").stdout
    described = server.kubectl("describe", "pod", "oom-demo").stdout
    assert "OOMKilled" in described and "Back-off restarting failed container hog" in described
    server.kubectl("delete", "pod", "oom-demo", "--grace-period=1", timeout=60)


def test_static_pod_gets_a_mirror(cluster):
    server = cluster.server
    manifests = cluster.data_dir / "agent" / "manifests"
    (manifests / "static-web.yaml").write_text(seed("17-static-pod.yaml"))
    name = f"static-web-{cluster.node}"
    cluster.wait_or_log(lambda: server.kubectl("get", "pod", name, check=False).returncode == 0 and
             pod_json(server, name)["status"].get("phase") == "Running", 60, what="mirror pod Running")
    mirror = pod_json(server, name)
    assert mirror["metadata"]["annotations"]["kubernetes.io/config.mirror"]
    assert mirror["metadata"]["annotations"]["kubernetes.io/config.source"] == "file"
    # as upstream: the delete completes (kubectl waits for that UID to go), and the kubelet
    # makes a new mirror (new UID) for the static pod, which keeps running all along
    containers = {cid for cid, (_pid, state) in cluster.runc_list().items() if state == "running"}
    started = time.monotonic()
    deleted = server.kubectl("delete", "pod", name, "--timeout=60s", timeout=90)
    assert f'pod "{name}" deleted' in deleted.stdout
    assert time.monotonic() - started < 20, "deleting the mirror pod took as long as a graceful stop"

    def replaced() -> dict | None:
        got = server.kubectl("get", "pod", name, "-o", "json", check=False)   # gone for a moment
        pod = json.loads(got.stdout) if got.returncode == 0 else None
        if pod and pod["metadata"]["uid"] != mirror["metadata"]["uid"] and not pod["metadata"].get("deletionTimestamp"):
            return pod
        return None
    recreated = cluster.wait_or_log(replaced, 30, what="mirror pod recreated")
    assert recreated["metadata"]["creationTimestamp"] > mirror["metadata"]["creationTimestamp"]
    assert recreated["metadata"]["annotations"]["kubernetes.io/config.mirror"] == \
        mirror["metadata"]["annotations"]["kubernetes.io/config.mirror"]
    cluster.wait_or_log(lambda: pod_json(server, name)["status"].get("phase") == "Running", 30,
                        what="the new mirror showing the static pod Running")
    assert containers <= set(cluster.runc_list()), "the static pod's containers were restarted"


def test_agent_restart_keeps_containers(cluster):
    server = cluster.server
    before = {cid: pid for cid, (pid, state) in cluster.runc_list().items() if state == "running"}
    probe_before = pod_json(server, "probe-demo")
    cluster.server.stop()
    cluster.start()
    after = {cid: pid for cid, (pid, state) in cluster.runc_list().items() if state == "running"}
    assert before and after == before           # the same containers, the same processes
    probe_after = pod_json(cluster.server, "probe-demo")
    assert [s["containerID"] for s in probe_after["status"]["containerStatuses"]] == \
        [s["containerID"] for s in probe_before["status"]["containerStatuses"]]
    assert [s["restartCount"] for s in probe_after["status"]["containerStatuses"]] == [0, 0]
