"""Services with real containers: the seed Deployment behind the seed's 10-services.yaml.

A whole `k8py server` (API, controllers, scheduler, kubelet with runc, kube-proxy,
DNS) runs inside a network namespace this test makes, entered with
`nsenter --net` (not `ip netns exec`, which remounts /sys and hides the cgroup
mounts runc needs), with a local image registry inside the same namespace.
So kube-proxy's chains and the pod bridge live in that namespace, never in
the host's tables. Checks are made from inside a busybox pod (nsenter into
its namespaces) and from the node.

Needs the node agent (k8py.kubelet.runtime.runc) and the image registry script;
skipped with that reason where they are not part of the tree.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import REPO, SEED, wait_for

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="containers and network namespaces need root"),
]


def _sh(*argv, check=True, input=None, timeout=60):
    result = subprocess.run(argv, capture_output=True, text=True, input=input, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed: {result.stdout}\n{result.stderr}")
    return result


class NodeInNamespace:
    def __init__(self, workdir: Path):
        self.ns = f"svcpods{secrets.token_hex(2)}"
        self.nsfile = f"/var/run/netns/{self.ns}"
        self.workdir = workdir
        self.data = workdir / "data"
        self.processes: list[subprocess.Popen] = []

    def enter(self, *argv):
        return ["nsenter", f"--net={self.nsfile}", *argv]

    def up(self):
        _sh("ip", "netns", "add", self.ns)
        run = lambda *a: _sh(*self.enter(*a))  # noqa: E731
        run("ip", "link", "set", "lo", "up")
        # A routed "uplink" inside the namespace gives the node a default route that goes nowhere.
        run("ip", "link", "add", "up0", "type", "veth", "peer", "name", "up1")
        run("ip", "addr", "add", "192.168.90.1/24", "dev", "up0")
        run("ip", "addr", "add", "192.168.90.2/24", "dev", "up1")
        run("ip", "link", "set", "up0", "up")
        run("ip", "link", "set", "up1", "up")
        run("ip", "route", "add", "default", "via", "192.168.90.2", "dev", "up0")
        registry_dir = self.workdir / "registry"
        self.registry = self._start(["python", str(REPO / "scripts" / "test_registry.py"), "--port", "5000",
                                     "--dir", str(registry_dir)], "registry.log")
        wait_for(lambda: (registry_dir / "registries.yaml").exists(), timeout=120, what="test registry")
        (self.data / "agent").mkdir(parents=True, exist_ok=True)
        shutil.copy(registry_dir / "registries.yaml", self.data / "agent" / "registries.yaml")
        self.server = self._start(["python", "-m", "k8py", "server", "--data-dir", str(self.data), "--token", "t",
                                   "--node-name", "svcnode"], "server.log")
        wait_for(lambda: self.kubectl("get", "nodes", check=False).stdout.count(" Ready") == 1, timeout=60,
                 what="node Ready")
        return self

    def _start(self, argv, log):
        argv = [sys.executable if argv[0] == "python" else argv[0], *argv[1:]]
        p = subprocess.Popen(self.enter(*argv), stdout=open(self.workdir / log, "ab"), stderr=subprocess.STDOUT,
                             cwd=REPO)
        self.processes.append(p)
        return p

    def kubectl(self, *args, check=True, input=None):
        return _sh(*self.enter("kubectl", f"--kubeconfig={self.data / 'kubeconfig.yaml'}", *args), check=check,
                   input=input)

    def kubectl_json(self, *args):
        return json.loads(self.kubectl(*args, "-o", "json").stdout)

    def pod_pid(self, name: str) -> int:
        status = self.kubectl_json("get", "pod", name)["status"]["containerStatuses"][0]
        container_id = status["containerID"].split("://", 1)[1]
        state = _sh("runc", "--root", str(self.data / "agent" / "runc" / "runc"), "state", container_id)
        return json.loads(state.stdout)["pid"]

    def in_pod(self, pid: int, *argv, input=None, check=False, timeout=20):
        return _sh("nsenter", "-t", str(pid), "-a", *argv, input=input, check=check, timeout=timeout)

    def down(self):
        self.kubectl("delete", "deployment,replicaset,pod,service", "--all", "--grace-period=1", check=False)
        if getattr(self, "server", None) is not None:
            wait_for(lambda: "Running" not in self.kubectl("get", "pods", check=False).stdout, timeout=30,
                     what="pods gone")
        for p in reversed(self.processes):
            if p.poll() is None:
                # The registry script stops its docker-registry child on Ctrl-C, not on SIGTERM.
                p.send_signal(signal.SIGINT if p is getattr(self, "registry", None) else signal.SIGTERM)
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self._remove_leftover_containers()
        _sh("ip", "netns", "del", self.ns, check=False)

    def _remove_leftover_containers(self):
        """The agent leaves containers running on purpose (a restart adopts them): remove them here."""
        code = ("import asyncio, sys\nfrom pathlib import Path\nfrom k8py.kubelet.runtime.runc import RuncRuntime\n"
                "async def main():\n    rt = RuncRuntime(Path(sys.argv[1]))\n"
                "    for c in await rt.list_containers():\n        await rt.remove_container(c.id)\n"
                "    for s in await rt.list_sandboxes():\n        await rt.remove_sandbox(s.id)\n"
                "asyncio.run(main())\n")
        if (self.data / "agent" / "runc").exists():
            _sh(*self.enter(sys.executable, "-c", code, str(self.data / "agent" / "runc")), check=False)


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    pytest.importorskip("k8py.kubelet.runtime.runc", reason="the runc node agent is not in this tree")
    if not (REPO / "scripts" / "test_registry.py").exists():
        pytest.skip("scripts/test_registry.py (the local image registry) is not in this tree")
    n = NodeInNamespace(tmp_path_factory.mktemp("svcpods"))
    try:
        n.up()
    except BaseException:
        n.down()
        raise
    yield n
    n.down()


HTTP_GET = "GET / HTTP/1.0\r\n\r\n"


def test_seed_services_in_front_of_the_seed_deployment(node):
    node.kubectl("apply", "-f", str(SEED / "09-deployment-rolling.yaml"), "-f", str(SEED / "10-services.yaml"))
    node.kubectl("run", "client", "--image=busybox", "--restart=Never", "--", "sleep", "3600")

    def ready_ips():
        ep = node.kubectl_json("get", "endpoints", "myapp-nodeport")
        return sorted(a["ip"] for s in ep.get("subsets") or [] for a in s.get("addresses") or [])
    wait_for(lambda: len(ready_ips()) == 3, timeout=90, what="three ready nginx endpoints")
    wait_for(lambda: node.kubectl_json("get", "pod", "client")["status"].get("phase") == "Running", timeout=60,
             what="client pod")
    pid = node.pod_pid("client")

    # Names: the ClusterIP service, the ExternalName CNAME, the headless Service's pod IPs.
    cluster_ip = node.kubectl_json("get", "svc", "myapp-nodeport")["spec"]["clusterIP"]
    out = node.in_pod(pid, "nslookup", "myapp-nodeport.default.svc.cluster.local").stdout
    assert f"Address: {cluster_ip}" in out, out
    out = node.in_pod(pid, "nslookup", "my-service").stdout
    assert "canonical name = my.database.example.com" in out, out
    out = node.in_pod(pid, "nslookup", "nginx-headless.default.svc.cluster.local").stdout
    assert sorted(line.split()[-1] for line in out.splitlines() if line.startswith("Address: ")) == ready_ips()

    # The ClusterIP and the Service name reach nginx, and 300 connections spread over every endpoint.
    assert "200 OK" in node.in_pod(pid, "nc", "myapp-nodeport", "80", input=HTTP_GET).stdout
    for _ in range(300):
        node.in_pod(pid, "nc", cluster_ip, "80", input=HTTP_GET, check=True)
    tracked = _sh(*node.enter("conntrack", "-L", "-p", "tcp", "-d", cluster_ip), check=False).stdout
    client_ip = node.kubectl_json("get", "pod", "client")["status"]["podIP"]
    hits = {ip: tracked.count(f"src={ip} dst={client_ip}") for ip in ready_ips()}
    assert all(n > 30 for n in hits.values()), hits

    # NodePort on the node's addresses (and 127.0.0.1), the LoadBalancer ingress answers.
    node_port = node.kubectl_json("get", "svc", "myapp-nodeport")["spec"]["ports"][0]["nodePort"]
    for address in ("192.168.90.1", "127.0.0.1"):
        got = _sh(*node.enter("busybox", "nc", address, str(node_port)), input=HTTP_GET, check=False).stdout
        assert "200 OK" in got, (address, got)
    lb = wait_for(lambda: (node.kubectl_json("get", "svc", "myapp-lb").get("status") or {})
                  .get("loadBalancer", {}).get("ingress"), what="LoadBalancer ingress")
    got = _sh(*node.enter("busybox", "nc", lb[0]["ip"], "8088"), input=HTTP_GET, check=False).stdout
    assert "200 OK" in got, got

    # Scaling changes the endpoints as soon as the new pods are ready.
    node.kubectl("scale", "deployment", "nginx-deploy", "--replicas=5")
    wait_for(lambda: len(ready_ips()) == 5, timeout=60, what="five endpoints after scaling")


READY_DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: ready-web
spec:
  replicas: 2
  selector:
    matchLabels: {app: ready-web}
  template:
    metadata:
      labels: {app: ready-web}
    spec:
      containers:
      - name: web
        image: busybox
        command: ["sh", "-c", "mkdir -p /www && hostname > /www/index.html && touch /tmp/ready && exec httpd -f -p 8080 -h /www"]
        ports:
        - {name: http, containerPort: 8080}
        readinessProbe:
          exec: {command: ["cat", "/tmp/ready"]}
          periodSeconds: 1
          failureThreshold: 1
---
apiVersion: v1
kind: Service
metadata:
  name: ready-web
spec:
  selector: {app: ready-web}
  ports:
  - {name: http, port: 80, targetPort: http}
"""


def test_a_pod_failing_readiness_stops_receiving_traffic(node):
    node.kubectl("apply", "-f", "-", input=READY_DEPLOYMENT)
    if node.kubectl("get", "pod", "client", check=False).returncode != 0:
        node.kubectl("run", "client", "--image=busybox", "--restart=Never", "--", "sleep", "3600")

    def ready_pods():
        pods = node.kubectl_json("get", "pods", "-l", "app=ready-web")["items"]
        return sorted(p["metadata"]["name"] for p in pods
                      if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", [])))
    names = wait_for(lambda: len(ready_pods()) == 2 and ready_pods(), timeout=90, what="two ready web pods")
    wait_for(lambda: node.kubectl_json("get", "pod", "client")["status"].get("phase") == "Running", timeout=60,
             what="client pod")
    client = node.pod_pid("client")

    def answers(count):
        got = {}
        for _ in range(count):
            out = node.in_pod(client, "nc", "ready-web", "80", input=HTTP_GET).stdout
            body = out.replace("\r\n", "\n").rsplit("\n\n", 1)[-1].strip()  # busybox httpd ends lines with \n
            got[body] = got.get(body, 0) + 1
        return got
    wait_for(lambda: set(answers(30)) == set(names), timeout=20, what="traffic to both pods")

    # The first pod's probe starts failing: it leaves the endpoints, and the traffic, within a probe period or two.
    node.in_pod(node.pod_pid(names[0]), "rm", "/tmp/ready", check=True)
    started = time.monotonic()
    wait_for(lambda: ready_pods() == [names[1]], timeout=10, what="the pod turning not ready")
    wait_for(lambda: answers(20) == {names[1]: 20}, timeout=10, what="traffic only to the ready pod")
    assert time.monotonic() - started < 10
    ep = node.kubectl_json("get", "endpoints", "ready-web")
    assert [a["targetRef"]["name"] for s in ep["subsets"] for a in s.get("notReadyAddresses", [])] == [names[0]]
