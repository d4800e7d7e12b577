"""The product end to end: `k8py server` with its own node agent, run inside a
network namespace this test makes (nsenter --net only, so runc still sees the
machine's cgroups). A busybox pod gets its IP from the CNI bridge; kubectl
logs, exec (exit codes), cp and port-forward reach it through the API server
and the agent's kubelet API; the host side routes stay inside the namespace.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from k8py.kubelet.images.store import ImageStore

from .conftest import REPO, TOKEN, kubectl_binary, wait_for

pytest_plugins = ["tests.e2e.registry"]     # the session's image_registry fixture

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="runc and network namespaces need root")

POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "labels": {"app": "web"}},
       "spec": {"containers": [{
           "name": "app", "image": "busybox", "imagePullPolicy": "IfNotPresent", "ports": [{"containerPort": 8080}],
           "command": ["sh", "-c", "mkdir -p /tmp/www/cgi-bin && echo hello-agent > /tmp/www/index.html && "
                                   # a CGI echoing the request method, for the proxy subresources
                                   "printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\n"
                                   "echo method=$REQUEST_METHOD path=$PATH_INFO\\n' > /tmp/www/cgi-bin/echo && "
                                   "chmod +x /tmp/www/cgi-bin/echo && "
                                   "httpd -p 8080 -h /tmp/www && echo started && "
                                   "trap 'exit 0' TERM; while true; do sleep 0.2; done"]}]}}


class NetnsServer:
    def __init__(self, data_dir: Path, netns: str):
        self.data_dir, self.netns = data_dir, netns
        self.kubeconfig = data_dir / "kubeconfig.yaml"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        log = open(self.data_dir / "server.log", "ab")
        self.process = subprocess.Popen(
            ["nsenter", f"--net=/var/run/netns/{self.netns}", sys.executable, "-m", "k8py", "server",
             "--data-dir", str(self.data_dir), "--https-listen-port", "6443", "--token", TOKEN],
            stdout=log, stderr=subprocess.STDOUT, cwd=REPO)

    def kubectl(self, *args, check=True, input=None, timeout=60) -> subprocess.CompletedProcess:
        out = subprocess.run(["ip", "netns", "exec", self.netns, kubectl_binary(), f"--kubeconfig={self.kubeconfig}",
                              f"--cache-dir={self.data_dir / 'kube-cache'}", *args],
                             capture_output=True, text=True, input=input, timeout=timeout)
        if check and out.returncode != 0:
            raise AssertionError(f"kubectl {args} failed: {out.stdout}{out.stderr}\n"
                                 f"{(self.data_dir / 'server.log').read_text()[-3000:]}")
        return out

    def in_ns(self, *argv) -> subprocess.CompletedProcess:
        return subprocess.run(["ip", "netns", "exec", self.netns, *argv], capture_output=True, text=True)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def netns_server(tmp_path, image_registry):
    netns = f"kagent-{secrets.token_hex(3)}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    subprocess.run(["ip", "netns", "exec", netns, "ip", "link", "set", "lo", "up"], check=True)
    data_dir = tmp_path / "k8py"
    # the image is already on the node: the server's agent reaches no registry from inside the namespace
    asyncio.run(ImageStore(data_dir / "agent" / "images", image_registry.mirrors_config).pull("busybox"))
    server = NetnsServer(data_dir, netns)
    server.start()
    try:
        yield server
    finally:
        server.kubectl("delete", "pod", "--all", "--timeout=60s", check=False)
        server.stop()
        runc_root = data_dir / "agent" / "runc" / "runc"
        left = subprocess.run(["runc", "--root", str(runc_root), "list", "-q"], capture_output=True, text=True)
        subprocess.run(["ip", "netns", "del", netns], check=False)
        assert left.stdout.strip() == "", "containers outlived the test"


def the_node(server: NetnsServer) -> dict:
    return wait_for(lambda: server.kubectl("get", "nodes", "-o", "json", check=False).returncode == 0 and
                    json.loads(server.kubectl("get", "nodes", "-o", "json").stdout)["items"], timeout=60,
                    interval=0.5, what="the server's node")[0]


def test_kubectl_streams_to_a_pod_run_by_the_servers_agent(netns_server):
    server = netns_server
    node = the_node(server)
    assert node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"] == 10250
    pod = json.loads(json.dumps(POD))
    pod["spec"]["nodeName"] = node["metadata"]["name"]    # no scheduler needed
    server.kubectl("create", "-f", "-", input=json.dumps(pod))
    wait_for(lambda: server.kubectl("logs", "web", check=False).stdout == "started\n", timeout=60, interval=0.3,
             what="the pod's first log line")
    ip = server.kubectl("get", "pod", "web", "-o", "jsonpath={.status.podIP}").stdout
    assert ip.startswith("10.42.")

    assert server.kubectl("exec", "web", "--", "hostname").stdout == "web\n"
    # what metrics-server would scrape, through nodes/proxy
    metrics = server.kubectl("get", "--raw", f"/api/v1/nodes/{node['metadata']['name']}/proxy/metrics/resource").stdout
    assert 'container_memory_working_set_bytes{container="app",namespace="default",pod="web"}' in metrics
    assert server.kubectl("exec", "web", "--", "sh", "-c", "exit 3", check=False).returncode == 3

    local = server.data_dir / "up.txt"
    local.write_text("uploaded\n")
    server.kubectl("cp", str(local), "web:/tmp/up.txt")
    assert server.kubectl("exec", "web", "--", "cat", "/tmp/up.txt").stdout == "uploaded\n"

    # the pod answers on its IP from the (namespaced) host, and through port-forward
    assert server.in_ns("curl", "-s", "--max-time", "5", f"http://{ip}:8080/index.html").stdout == "hello-agent\n"
    forward = subprocess.Popen(["ip", "netns", "exec", server.netns, kubectl_binary(),
                                f"--kubeconfig={server.kubeconfig}", f"--cache-dir={server.data_dir / 'kc2'}",
                                "port-forward", "pod/web", "18080:8080"], stdout=subprocess.PIPE, text=True)
    try:
        assert "Forwarding from" in forward.stdout.readline()
        curl = server.in_ns("curl", "-s", "--max-time", "5", "http://127.0.0.1:18080/index.html")
        assert curl.stdout == "hello-agent\n"
    finally:
        forward.kill()
        forward.wait()

    # pods/proxy and services/proxy: the API server dials the pod; every method gets through
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
               "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}
    endpoints = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "web"},
                 "subsets": [{"addresses": [{"ip": ip}], "ports": [{"name": "http", "port": 8080}]}]}
    server.kubectl("create", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                          "items": [service, endpoints]}))
    for target in ("pods/web:8080", "services/web:80", "services/http:web:http"):
        base = f"https://127.0.0.1:6443/api/v1/namespaces/default/{target}/proxy"
        tls = server.data_dir / "server" / "tls"      # as the admin: the admin kubeconfig's certificate
        auth = ["--cert", str(tls / "client-admin.crt"), "--key", str(tls / "client-admin.key")]
        for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
            got = server.in_ns("curl", "-sk", "--max-time", "5", "-X", method, *auth, "-o", "-",
                               "-w", "%{http_code}", f"{base}/cgi-bin/echo/sub").stdout
            assert got == f"method={method} path=/sub\n200", (target, method, got)
        # (HEAD is left to the unit tests: busybox httpd answers HEAD with a body, which HTTP forbids)

    # logs --previous: the instance before the last restart (each run prints its own uuid: busybox date has no %N)
    crash = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "crash"},
             "spec": {"nodeName": node["metadata"]["name"], "containers": [{
                 "name": "c", "image": "busybox", "imagePullPolicy": "IfNotPresent",
                 "command": ["sh", "-c", "echo run $(cat /proc/sys/kernel/random/uuid); sleep 0.5; exit 1"]}]}}
    server.kubectl("create", "-f", "-", input=json.dumps(crash))

    def restarted_with_logs():
        status = json.loads(server.kubectl("get", "pod", "crash", "-o", "json").stdout).get("status") or {}
        restarts = ((status.get("containerStatuses") or [{}])[0]).get("restartCount", 0)
        if restarts < 1:
            return None
        previous = server.kubectl("logs", "crash", "--previous", check=False).stdout
        current = server.kubectl("logs", "crash", check=False).stdout
        return (previous, current) if previous.startswith("run ") and current.startswith("run ") else None
    previous, current = wait_for(restarted_with_logs, timeout=60, interval=0.5, what="a restarted container")
    assert previous != current
    server.kubectl("delete", "pod", "crash", "--timeout=60s")

    # a ClusterIP Service (kube-proxy's DNAT): reached from the host, whose packet needs the
    # service-range route before OUTPUT DNAT, and from the pod itself (hairpin)
    server.kubectl("create", "-f", "-", input=json.dumps(
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "websvc"},
         "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}}))
    cluster_ip = server.kubectl("get", "service", "websvc", "-o", "jsonpath={.spec.clusterIP}").stdout
    assert cluster_ip.startswith("10.43.")
    wait_for(lambda: server.in_ns("curl", "-s", "--max-time", "2",
                                  f"http://{cluster_ip}/index.html").stdout == "hello-agent\n",
             timeout=30, interval=0.3, what="the ClusterIP from the host")
    # (busybox-static's wget crashes in glibc's resolver even on an IP: talk HTTP with nc)
    hairpin = server.kubectl("exec", "web", "--", "sh", "-c",
                             f"printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {cluster_ip} 80",
                             check=False)
    assert hairpin.stdout.endswith("hello-agent\n"), (hairpin.stdout, hairpin.stderr)

    # the agent's host networking, inside the namespace: service range on the bridge, rest unreachable
    routes = server.in_ns("ip", "route").stdout
    assert "10.43.0.0/16 dev k8py0" in routes and "unreachable 10.42.0.0/16" in routes
    assert server.in_ns("cat", "/proc/sys/net/ipv4/ip_forward").stdout.strip() == "1"
    server.kubectl("delete", "pod", "web", "--timeout=60s")


def test_kubectl_debug_runs_ephemeral_containers(netns_server):
    """`kubectl debug` adds ephemeral containers; the kubelet runs them once, in the pod's
    network, IPC and UTS namespaces, in the target's process namespace with --target
    (its own without), attachable, with their status and events, as upstream."""
    server = netns_server
    node = the_node(server)["metadata"]["name"]
    server.kubectl("create", "-f", "-", input=json.dumps(
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "target"},
         "spec": {"nodeName": node, "containers": [{"name": "app", "image": "busybox",
                                                    "imagePullPolicy": "IfNotPresent",
                                                    "command": ["sh", "-c", "echo started; exec sleep 3601"]}]}}))
    wait_for(lambda: server.kubectl("logs", "target", check=False).stdout == "started\n", timeout=60,
             interval=0.3, what="the target pod running")
    debug = ("debug", "target", "--image=busybox", "--image-pull-policy=IfNotPresent")

    def ephemeral(name: str) -> dict:
        pod = json.loads(server.kubectl("get", "pod", "target", "-o", "json").stdout)
        return next((s for s in pod["status"].get("ephemeralContainerStatuses") or [] if s["name"] == name), {})

    def running(name: str) -> dict:
        return wait_for(lambda: "running" in ephemeral(name).get("state", {}) and ephemeral(name), timeout=60,
                        interval=0.3, what=f"ephemeral container {name} running")

    def namespace_of(container: str, kind: str) -> str:
        link = server.kubectl("exec", "target", "-c", container, "--", "readlink", f"/proc/self/ns/{kind}").stdout
        assert link.startswith(f"{kind}:["), link
        return link

    # --target: the target's processes are visible
    server.kubectl(*debug, "--target=app", "-c", "dbg", "--", "sh", "-c", "ps; exec sleep 3600")
    status = running("dbg")
    assert status["ready"] is False and status["restartCount"] == 0 and "started" not in status
    assert status["containerID"].startswith("runc://") and status["image"].endswith("busybox:latest")
    ps = wait_for(lambda: server.kubectl("logs", "target", "-c", "dbg").stdout, timeout=30, what="dbg's ps")
    assert "sleep 3601" in ps, ps
    for kind in ("net", "ipc", "uts", "pid"):
        assert namespace_of("dbg", kind) == namespace_of("app", kind), kind

    def ephemeral_names() -> list[str]:
        pod = json.loads(server.kubectl("get", "pod", "target", "-o", "json").stdout)
        return [c["name"] for c in pod["spec"].get("ephemeralContainers") or []]
    assert ephemeral_names() == ["dbg"]

    # no target, added by an update (PUT) of pods/ephemeralcontainers as upstream's conformance
    # test does: the pod's namespaces, a process namespace of its own
    def add_alone() -> bool:
        """Get and update, again on a 409: the kubelet and the node controller write the pod's
        status meanwhile (client-go's RetryOnConflict)."""
        pod = json.loads(server.kubectl("get", "--raw",
                                        "/api/v1/namespaces/default/pods/target/ephemeralcontainers").stdout)
        pod["spec"]["ephemeralContainers"].append({"name": "alone", "image": "busybox", "imagePullPolicy": "IfNotPresent",
                                                   "command": ["sleep", "3600"], "terminationMessagePolicy": "File"})
        out = server.kubectl("replace", "--raw", "/api/v1/namespaces/default/pods/target/ephemeralcontainers",
                             "-f", "-", input=json.dumps(pod), check=False)
        assert out.returncode == 0 or "(Conflict)" in out.stderr, out.stderr
        return out.returncode == 0
    wait_for(add_alone, timeout=30, what="the ephemeral container added by an update")
    running("alone")
    assert ephemeral_names() == ["dbg", "alone"]
    for kind in ("net", "ipc", "uts"):
        assert namespace_of("alone", kind) == namespace_of("app", kind), kind
    assert namespace_of("alone", "pid") != namespace_of("app", "pid")

    # -i without attaching, then `kubectl attach`; it ends, and is not restarted
    server.kubectl(*debug, "-i", "--attach=false", "--target=app", "-c", "talk", "--",
                   "sh", "-c", "read line; echo got $line; ps")
    running("talk")
    attached = server.kubectl("attach", "target", "-c", "talk", "-i", input="hello\n", timeout=60)
    assert "got hello" in attached.stdout and "sleep 3601" in attached.stdout, attached.stdout
    done = wait_for(lambda: "terminated" in ephemeral("talk").get("state", {}) and ephemeral("talk"), timeout=30,
                    interval=0.3, what="talk terminated")
    assert done["state"]["terminated"]["exitCode"] == 0 and done["state"]["terminated"]["reason"] == "Completed"
    assert done["restartCount"] == 0

    # kubectl debug -i: create, wait for it to run, attach, in one go
    interactive = server.kubectl(*debug, "-i", "--target=app", "-c", "inter", "--", "sh", "-c",
                                 "read line; echo said $line", input="hi\n", timeout=90)
    assert "said hi" in interactive.stdout, (interactive.stdout, interactive.stderr)

    events = json.loads(server.kubectl("get", "events", "--field-selector", "involvedObject.name=target",
                                       "-o", "json").stdout)["items"]
    reasons = {e["reason"] for e in events if e["involvedObject"].get("fieldPath") == "spec.ephemeralContainers{dbg}"}
    assert {"Pulled", "Created", "Started"} <= reasons, reasons
    pod = json.loads(server.kubectl("get", "pod", "target", "-o", "json").stdout)
    assert pod["status"]["phase"] == "Running"
    assert [(s["name"], s["restartCount"], s["ready"]) for s in pod["status"]["containerStatuses"]] == \
        [("app", 0, True)]
    server.kubectl("delete", "pod", "target", "--timeout=60s")
