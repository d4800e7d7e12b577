"""kubectl and the Python client -> API server -> kubelet HTTPS API.

The kubelet here is the real KubeletServer with the fake runtime whose
"containers" are local processes (tests/unit/kubelet/fake_runtime.py); the
pod's network namespace is a real one this test makes. Everything on the wire
(kubectl's WebSocket v5 exec, its SPDY-over-WebSocket port-forward, the API
server's TLS proxying) is the real thing.
"""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import os
import json
import secrets
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from k8py.apimachinery import certs as pki_mod
from k8py.kubelet.runtime.interface import Sandbox
from k8py.kubelet.server import KubeletServer
from tests.unit.kubelet.fake_runtime import FakeRuntime

from .conftest import free_port, kubectl_binary, wait_for


def cri(text: str) -> str:
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"
    return f"{stamp} stdout F {text}\n"


class FakeNode:
    """A kubelet API on a thread of its own, registered as a Node."""

    def __init__(self, server, tmp: Path):
        self.server, self.tmp = server, tmp
        self.name = f"kn-{secrets.token_hex(3)}"
        self.runtime = FakeRuntime()
        self.pods: dict[tuple[str, str], dict] = {}
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.netns = f"kne2e-{secrets.token_hex(3)}"
        self.port = free_port()

    def start(self) -> None:
        pki = pki_mod.pki_paths(self.server.data_dir / "server" / "tls")
        cert, key = pki_mod.issue_serving_cert(pki, self.name, ["127.0.0.1", self.name])
        (self.tmp / "kubelet.crt").write_bytes(cert)
        (self.tmp / "kubelet.key").write_bytes(key)
        self.kubelet = KubeletServer(self.runtime, lambda ns, n: self.pods.get((ns, n)), self.tmp / "kubelet.crt",
                                     self.tmp / "kubelet.key", self.port, client_ca_file=pki.ca_cert,
                                     node_name=self.name)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.kubelet.start(), self.loop).result(10)
        self.server.kubectl("create", "-f", "-", input=json.dumps(
            {"apiVersion": "v1", "kind": "Node", "metadata": {"name": self.name}}))
        self.server.kubectl("patch", "node", self.name, "--subresource=status", "--type=merge", "-p", json.dumps(
            {"status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                                      {"type": "Hostname", "address": self.name}],
                        "daemonEndpoints": {"kubeletEndpoint": {"Port": self.port}}}}))
        subprocess.run(["ip", "netns", "add", self.netns], check=True)
        subprocess.run(["ip", "netns", "exec", self.netns, "ip", "link", "set", "lo", "up"], check=True)

    def stop(self) -> None:
        try:
            asyncio.run_coroutine_threadsafe(self.kubelet.stop(), self.loop).result(30)
        finally:   # whatever happened above, nothing of ours may outlive the test
            asyncio.run_coroutine_threadsafe(self.runtime.cleanup(), self.loop).result(30)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
            subprocess.run(["ip", "netns", "del", self.netns], check=False)
            self.server.kubectl("delete", "node", self.name, "--wait=false", check=False)

    def run_pod(self, namespace: str, name: str, containers=("app",), stdin=False, attach_argv=None) -> dict:
        manifest = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
                    "spec": {"nodeName": self.name, "containers": [
                        {"name": c, "image": "busybox", "stdin": stdin} for c in containers]}}
        self.server.kubectl("create", "-f", "-", input=json.dumps(manifest))
        pod = self.server.kubectl_json("get", "pod", name, "-n", namespace)
        now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        status = {"phase": "Running", "podIP": "10.42.0.9", "containerStatuses": [
            {"name": c, "ready": True, "restartCount": 0, "image": "busybox", "imageID": "",
             "state": {"running": {"startedAt": now}}} for c in containers]}
        self.server.kubectl("patch", "pod", name, "-n", namespace, "--subresource=status", "--type=merge",
                            "-p", json.dumps({"status": status}))
        pod["status"] = status
        self.pods[(namespace, name)] = pod
        logs = {}
        for c in containers:
            logs[c] = self.tmp / f"{name}-{c}.log"
            logs[c].write_text("")
            self.runtime.add_container(pod, c, str(logs[c]), attach_argv=attach_argv)
        self.runtime.sandboxes.append(Sandbox(id="sb-" + name, pod_uid=pod["metadata"]["uid"],
                                              netns_path=f"/var/run/netns/{self.netns}", ipc_ns_path=None,
                                              uts_ns_path=None, pid_ns_path=None, cgroup_parent=""))
        pod["logs"] = logs
        return pod


@pytest.fixture
def node(server, tmp_path):
    n = FakeNode(server, tmp_path)
    n.start()
    yield n
    n.stop()


def test_logs_tail_timestamps_and_follow(server, namespace, node):
    pod = node.run_pod(namespace, "logger")
    log = pod["logs"]["app"]
    log.write_text(cri("one") + cri("two") + cri("three"))
    assert server.kubectl("logs", "logger", "-n", namespace).stdout == "one\ntwo\nthree\n"
    assert server.kubectl("logs", "logger", "-n", namespace, "--tail=1").stdout == "three\n"
    stamped = server.kubectl("logs", "logger", "-n", namespace, "--tail=1", "--timestamps").stdout
    assert stamped.endswith("Z three\n") and stamped[:2] == "20"
    follow = subprocess.Popen([*kubectl_cmd(server), "logs", "-f", "logger", "-n", namespace],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert [follow.stdout.readline() for _ in range(3)] == ["one\n", "two\n", "three\n"]
        with open(log, "a") as f:
            f.write(cri("four"))
        assert follow.stdout.readline() == "four\n"     # streamed through the API server as written
        node.runtime.containers["logger-app-0"].state = "exited"
        assert follow.wait(timeout=15) == 0
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait()


def _connections_to(port: int) -> int:
    out = subprocess.run(["ss", "-Htn", "state", "established", f"( dport = :{port} )"], capture_output=True,
                         text=True, check=True).stdout
    return len(out.splitlines())


def test_client_hanging_up_on_followed_logs_is_not_an_error(server, namespace, node):
    """A client closing `kubectl logs -f` is normal: the API server drops its
    kubelet stream and logs no `Error handling request` traceback."""
    pod = node.run_pod(namespace, "hangup")
    log = pod["logs"]["app"]
    log.write_text(cri("first"))
    log_start = server.log_path.stat().st_size
    follow = subprocess.Popen([*kubectl_cmd(server), "logs", "-f", "hangup", "-n", namespace],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert follow.stdout.readline() == "first\n"
        # this node's kubelet was made for this test: its one connection is the relayed stream
        assert _connections_to(node.port) == 1
    finally:
        follow.kill()
        follow.wait()

    def relay_ended() -> bool:
        with open(log, "a") as f:      # the relay learns of the hang-up when it next writes
            f.write(cri("after the client left"))
        return _connections_to(node.port) == 0
    wait_for(relay_ended, timeout=30, interval=0.3, what="the API server to drop the kubelet stream")
    server_log = server.log_path.read_bytes()[log_start:].decode(errors="replace")
    assert "Traceback" not in server_log and "Error handling request" not in server_log, server_log


def test_logs_errors_are_statuses(server, namespace, node):
    node.run_pod(namespace, "two", containers=("a", "b"))
    out = server.kubectl("logs", "two", "-n", namespace, "-c", "nope", check=False)
    assert out.returncode != 0 and "container nope is not valid for pod two" in out.stderr
    out = server.kubectl("logs", "two", "-n", namespace, "-c", "a", "--previous", check=False)
    assert out.returncode != 0 and 'previous terminated container "a" in pod "two" not found' in out.stderr


def kubectl_cmd(server) -> list[str]:
    return [kubectl_binary(), f"--kubeconfig={server.kubeconfig}", f"--cache-dir={server.cache_dir}"]


def test_exec_output_stdin_and_exit_code(server, namespace, node):
    node.run_pod(namespace, "ex")
    out = server.kubectl("exec", "ex", "-n", namespace, "--", "sh", "-c", "echo hello; echo oops >&2")
    assert out.stdout == "hello\n" and "oops" in out.stderr
    failed = server.kubectl("exec", "ex", "-n", namespace, "--", "sh", "-c", "exit 3", check=False)
    assert failed.returncode == 3
    piped = server.kubectl("exec", "-i", "ex", "-n", namespace, "--", "tr", "a-z", "A-Z", input="shout\n")
    assert piped.stdout == "SHOUT\n"


def test_cp_both_ways(server, namespace, node, tmp_path):
    node.run_pod(namespace, "cp")
    pod_dir = tmp_path / "inside"          # the fake container's files are this machine's
    pod_dir.mkdir()
    (pod_dir / "from-pod.txt").write_text("pod data\n")
    server.kubectl("cp", "-n", namespace, f"cp:{pod_dir}/from-pod.txt", str(tmp_path / "copied.txt"))
    assert (tmp_path / "copied.txt").read_text() == "pod data\n"
    (tmp_path / "to-pod.txt").write_text("local data\n")
    server.kubectl("cp", "-n", namespace, str(tmp_path / "to-pod.txt"), f"cp:{pod_dir}/arrived.txt")
    assert (pod_dir / "arrived.txt").read_text() == "local data\n"


def test_attach(server, namespace, node):
    node.run_pod(namespace, "att", stdin=True, attach_argv=["sh", "-c", "read line; echo got $line"])
    out = server.kubectl("attach", "-i", "att", "-n", namespace, "-c", "app", input="hello\n", timeout=30)
    assert "got hello" in out.stdout


def serve_http_in(netns: str) -> subprocess.Popen:
    proc = subprocess.Popen(["ip", "netns", "exec", netns, sys.executable, "-c",
                             "import http.server, socketserver\n"
                             "class H(http.server.BaseHTTPRequestHandler):\n"
                             "    def do_GET(self):\n"
                             "        body = b'served from the pod netns\\n'\n"
                             "        self.send_response(200); self.send_header('Content-Length', str(len(body)))\n"
                             "        self.end_headers(); self.wfile.write(body)\n"
                             "    def do_POST(self):\n"
                             "        body = self.rfile.read(int(self.headers['Content-Length']))\n"
                             "        self.send_response(200); self.send_header('Content-Length', str(len(body)))\n"
                             "        self.end_headers(); self.wfile.write(body)\n"
                             "    def log_message(self, *a): pass\n"
                             "s = http.server.ThreadingHTTPServer(('127.0.0.1', 8080), H)\n"
                             "print('ready', flush=True)\n"
                             "s.serve_forever()\n"], stdout=subprocess.PIPE)
    assert proc.stdout.readline() == b"ready\n"
    return proc


def test_port_forward_serves_a_curl(server, namespace, node):
    node.run_pod(namespace, "pf")
    web = serve_http_in(node.netns)
    local = free_port()
    forward = subprocess.Popen([*kubectl_cmd(server), "port-forward", "-n", namespace, "pod/pf", f"{local}:8080"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "Forwarding from 127.0.0.1" in forward.stdout.readline()
        for _ in range(2):   # two connections through one tunnel
            out = subprocess.run(["curl", "-s", "--max-time", "10", f"http://127.0.0.1:{local}/"],
                                 capture_output=True, text=True)
            assert out.stdout == "served from the pod netns\n", (out, forward.poll())
        # megabytes both ways: nothing stalls on SPDY flow-control windows
        upload = os.urandom(3 << 20)
        out = subprocess.run(["curl", "-s", "--max-time", "30", "--data-binary", "@-",
                              f"http://127.0.0.1:{local}/echo"], input=upload, capture_output=True)
        assert hashlib.sha256(out.stdout).hexdigest() == hashlib.sha256(upload).hexdigest()
    finally:
        forward.kill()
        forward.wait()
        web.kill()
        web.wait()


def test_python_client_exec_and_portforward(server, namespace, node):
    from kubernetes import client, config
    from kubernetes.stream import portforward, stream
    node.run_pod(namespace, "py")
    api_client = config.new_client_from_config(str(server.kubeconfig))
    core = client.CoreV1Api(api_client)
    out = stream(core.connect_get_namespaced_pod_exec, "py", namespace, command=["sh", "-c", "echo from python"],
                 stderr=True, stdin=False, stdout=True, tty=False)
    assert out == "from python\n"
    ws = stream(core.connect_get_namespaced_pod_exec, "py", namespace, command=["sh", "-c", "exit 5"],
                stderr=True, stdin=False, stdout=True, tty=False, _preload_content=False)
    ws.run_forever(timeout=10)
    assert ws.returncode == 5
    web = serve_http_in(node.netns)
    try:
        pf = portforward(core.connect_get_namespaced_pod_portforward, "py", namespace, ports="8080")
        sock = pf.socket(8080)
        sock.setblocking(True)
        sock.settimeout(10)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: pod\r\nConnection: close\r\n\r\n")
        reply = b""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
        sock.close()
        assert reply.startswith(b"HTTP/1.0 200") and reply.endswith(b"served from the pod netns\n")
        assert pf.error(8080) is None
    finally:
        web.kill()
        web.wait()


def test_streams_to_a_node_without_kubelet_are_clear_errors(server, namespace):
    name = f"kn-gone-{secrets.token_hex(2)}"
    server.kubectl("create", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "Node",
                                                         "metadata": {"name": name}}))
    try:
        server.kubectl("create", "-f", "-", input=json.dumps(
            {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "orphan", "namespace": namespace},
             "spec": {"nodeName": name, "containers": [{"name": "c", "image": "busybox"}]}}))
        out = server.kubectl("logs", "orphan", "-n", namespace, check=False)
        assert out.returncode != 0 and f'no kubelet endpoint is known for node "{name}"' in out.stderr
        server.kubectl("patch", "node", name, "--subresource=status", "--type=merge", "-p", json.dumps(
            {"status": {"addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                        "daemonEndpoints": {"kubeletEndpoint": {"Port": free_port()}}}}))
        out = server.kubectl("logs", "orphan", "-n", namespace, check=False)
        assert out.returncode != 0 and "connect" in out.stderr.lower() and "containerLogs" in out.stderr
    finally:
        server.kubectl("delete", "node", name, "--wait=false", check=False)


def test_nodes_proxy_reaches_the_kubelet(server, namespace, node, tmp_path):
    assert server.kubectl("get", "--raw", f"/api/v1/nodes/{node.name}/proxy/healthz").stdout == "ok"
    pod = node.run_pod(namespace, "listed")
    pods = json.loads(server.kubectl("get", "--raw", f"/api/v1/nodes/{node.name}/proxy/pods").stdout)
    assert pods["kind"] == "PodList"
    # the Summary API, as `kubectl get --raw .../proxy/stats/summary` shows it upstream
    from k8py.kubelet.runtime.interface import ContainerStats
    node.runtime.usage["listed-app-0"] = ContainerStats(cpu_usage_ns=2_500_000_000, memory_working_set_bytes=4 << 20)
    summary = json.loads(server.kubectl("get", "--raw", f"/api/v1/nodes/{node.name}/proxy/stats/summary").stdout)
    assert summary["node"]["nodeName"] == node.name
    assert summary["node"]["cpu"]["usageCoreNanoSeconds"] > 0 and summary["node"]["memory"]["workingSetBytes"] > 0
    [listed] = [p for p in summary["pods"] if p["podRef"]["name"] == "listed"]
    assert listed["podRef"] == {"name": "listed", "namespace": namespace, "uid": pod["metadata"]["uid"]}
    assert [(c["name"], c["cpu"]["usageCoreNanoSeconds"], c["memory"]["workingSetBytes"])
            for c in listed["containers"]] == [("app", 2_500_000_000, 4 << 20)]
    # <node>:<port>: the kubelet's own port is the kubelet; another port of the node is dialled plainly
    assert server.kubectl("get", "--raw", f"/api/v1/nodes/{node.name}:{node.port}/proxy/healthz").stdout == "ok"
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "hello.txt").write_text("from a node port\n")
    port = free_port()
    web = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port), "--directory",
                            str(tmp_path / "www")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        path = f"/api/v1/nodes/http:{node.name}:{port}/proxy/hello.txt"
        got = wait_for(lambda: (lambda r: r.returncode == 0 and r)(server.kubectl("get", "--raw", path, check=False)),
                       timeout=20, what="the node port answering")
        assert got.stdout == "from a node port\n"
    finally:
        web.kill()
        web.wait()
    bad = server.kubectl("get", "--raw", f"/api/v1/nodes/ftp:{node.name}:1/proxy/", check=False)
    assert bad.returncode != 0 and f'invalid node request "ftp:{node.name}:1"' in bad.stderr
    # authorized as the nodes/proxy subresource
    for name in (node.name, f"{node.name}:{node.port}"):
        denied = server.kubectl("get", "--raw", f"/api/v1/nodes/{name}/proxy/healthz", "--as", "jane", check=False)
        assert denied.returncode != 0
        assert f'nodes "{name}" is forbidden: User "jane" cannot get resource "nodes/proxy" in API group "" ' \
               'at the cluster scope' in denied.stderr
    role = f"proxy-{node.name}"
    server.kubectl("create", "clusterrole", role, "--verb=get", "--resource=nodes/proxy")
    server.kubectl("create", "clusterrolebinding", role, f"--clusterrole={role}", "--user=jane")
    try:
        wait_for(lambda: server.kubectl("get", "--raw", f"/api/v1/nodes/{node.name}/proxy/healthz", "--as", "jane",
                                        check=False).stdout == "ok", timeout=20, what="jane allowed nodes/proxy")
    finally:
        server.kubectl("delete", "clusterrolebinding,clusterrole", role, check=False)
    logs = server.kubectl("get", "--raw", f"/api/v1/nodes/{node.name}/proxy/containerLogs/{namespace}/nope/app",
                          check=False)
    assert logs.returncode != 0 and 'pod "nope" not found' in logs.stderr


@pytest.mark.parametrize("version", ["1.31", "1.33"])
def test_kubectl_versions(server, namespace, node, version):
    """WebSocket exec is the default from kubectl 1.30, the port-forward tunnel from 1.31."""
    node.run_pod(namespace, "ver")
    out = server.kubectl("exec", "ver", "-n", namespace, "--", "sh", "-c", "echo hi; exit 4", version=version,
                         check=False)
    assert (out.returncode, out.stdout) == (4, "hi\n")
    web = serve_http_in(node.netns)
    local = free_port()
    forward = subprocess.Popen([kubectl_binary(version), f"--kubeconfig={server.kubeconfig}",
                                f"--cache-dir={server.cache_dir}", "port-forward", "-n", namespace, "pod/ver",
                                f"{local}:8080"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "Forwarding from 127.0.0.1" in forward.stdout.readline()
        got = subprocess.run(["curl", "-s", "--max-time", "10", f"http://127.0.0.1:{local}/"],
                             capture_output=True, text=True)
        assert got.stdout == "served from the pod netns\n"
    finally:
        forward.kill()
        forward.wait()
        web.kill()
        web.wait()


async def _websocket_messages(server, path: str, protocols: tuple[str, ...]) -> tuple[str | None, list]:
    import aiohttp

    from .conftest import admin_ssl_context
    ctx = admin_ssl_context(server.data_dir)
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(server.url + path, protocols=protocols, ssl=ctx) as ws:
            messages = [msg async for msg in ws if msg.type in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT)]
            return ws.protocol, [m.data for m in messages]


def test_conformance_exec_and_logs_over_websockets(server, namespace, node):
    """Upstream's "Pods, remote command execution over websocket" (channel.k8s.io)
    and "Pods, logs from websockets" (binary.k8s.io), through the API server."""
    pod = node.run_pod(namespace, "wsconf")
    pod["logs"]["app"].write_text(cri("container is alive"))
    path = (f"/api/v1/namespaces/{namespace}/pods/wsconf/exec?command=echo&command=remote+execution+test"
            "&container=app&stderr=true&stdout=true")
    protocol, messages = asyncio.run(_websocket_messages(server, path, ("channel.k8s.io",)))
    assert protocol == "channel.k8s.io"
    stdout = b"".join(m[1:] for m in messages if m and m[0] == 1)
    assert stdout == b"remote execution test\n"
    path = f"/api/v1/namespaces/{namespace}/pods/wsconf/log?container=app"
    protocol, messages = asyncio.run(_websocket_messages(server, path, ("binary.k8s.io",)))
    assert protocol == "binary.k8s.io" and b"".join(messages) == b"container is alive\n"
    protocol, messages = asyncio.run(_websocket_messages(server, path, ("base64.binary.k8s.io",)))
    import base64
    assert protocol == "base64.binary.k8s.io"
    assert b"".join(base64.b64decode(m) for m in messages) == b"container is alive\n"


async def _channel_session(server, path: str, protocol: str, stdin: bytes = b"") -> tuple[str | None, dict]:
    """One channel.k8s.io WebSocket session through the API server, offering
    `protocol` ("" offers none): what arrived on each channel."""
    import base64

    import aiohttp

    from .conftest import admin_ssl_context
    ctx = admin_ssl_context(server.data_dir)
    as_text = "base64" in protocol
    got: dict[int, bytes] = {}
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(server.url + path, protocols=(protocol,) if protocol else (), ssl=ctx) as ws:
            if stdin:
                if as_text:
                    await ws.send_str("0" + base64.b64encode(stdin).decode())
                else:
                    await ws.send_bytes(b"\x00" + stdin)
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.TEXT:
                    assert as_text, f"a text message under {protocol!r}"
                    channel, data = ord(msg.data[0]) - ord("0"), base64.b64decode(msg.data[1:])
                elif msg.type == aiohttp.WSMsgType.BINARY:
                    assert not as_text, f"a binary message under {protocol!r}"
                    channel, data = msg.data[0], msg.data[1:]
                else:
                    break
                got[channel] = got.get(channel, b"") + data
            return ws.protocol, got


# every WebSocket subprotocol upstream accepts for exec and attach ("": none offered)
EXEC_WEBSOCKET_PROTOCOLS = ["v5.channel.k8s.io", "v4.channel.k8s.io", "v4.base64.channel.k8s.io",
                            "channel.k8s.io", "base64.channel.k8s.io", ""]


@pytest.mark.parametrize("protocol", EXEC_WEBSOCKET_PROTOCOLS)
def test_exec_and_attach_over_every_websocket_protocol(server, namespace, node, protocol):
    """Exec and attach through the API server under each subprotocol upstream
    accepts, no subprotocol at all included (the plain channel protocol)."""
    node.run_pod(namespace, "proto", stdin=True, attach_argv=["sh", "-c", "read line; echo attached $line"])
    base = f"/api/v1/namespaces/{namespace}/pods/proto"
    command = "&".join("command=" + c for c in ("sh", "-c", "read+l%3B+echo+out+%24l%3B+echo+err+>%262%3B+exit+3"))
    negotiated, got = asyncio.run(asyncio.wait_for(_channel_session(
        server, f"{base}/exec?{command}&stdin=true&stdout=true&stderr=true", protocol, stdin=b"in\n"), 30))
    assert negotiated == (protocol or None)
    assert got[1] == b"out in\n" and got[2] == b"err\n"
    if protocol.startswith(("v4.", "v5.")):      # a JSON Status with the exit code
        status = json.loads(got[3])
        assert status["reason"] == "NonZeroExitCode"
        assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    else:                                         # before v4: the error text
        assert got[3].startswith(b"command terminated with non-zero exit code")
    negotiated, got = asyncio.run(asyncio.wait_for(_channel_session(
        server, f"{base}/attach?container=app&stdin=true&stdout=true", protocol, stdin=b"hello\n"), 30))
    assert negotiated == (protocol or None) and got[1] == b"attached hello\n"


@pytest.mark.parametrize("protocol", ["v4.channel.k8s.io", "v4.base64.channel.k8s.io", ""])
def test_port_forward_over_every_channel_protocol(server, namespace, node, protocol):
    """Port-forward's channel protocols (kubectl's SPDY tunnel is tested above):
    v4, its base64 form and, as upstream, no subprotocol at all."""
    node.run_pod(namespace, "pfproto")
    web = serve_http_in(node.netns)
    try:
        negotiated, got = asyncio.run(asyncio.wait_for(_channel_session(
            server, f"/api/v1/namespaces/{namespace}/pods/pfproto/portforward?ports=8080", protocol,
            stdin=b"GET / HTTP/1.0\r\n\r\n"), 30))
    finally:
        web.kill()
        web.wait()
    assert negotiated == (protocol or None)
    # each channel starts with the port (little-endian); the pod's answer follows on the data channel
    assert got[1] == (8080).to_bytes(2, "little")
    assert got[0][:2] == (8080).to_bytes(2, "little") and got[0].endswith(b"served from the pod netns\n")


def test_port_forward_refuses_only_unknown_subprotocols(server, namespace, node):
    import aiohttp
    node.run_pod(namespace, "pfbad")
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        asyncio.run(_channel_session(server, f"/api/v1/namespaces/{namespace}/pods/pfbad/portforward?ports=8080",
                                     "v3.channel.k8s.io"))
    assert refused.value.status == 400


def test_conformance_kubectl_logs_filters(server, namespace, node):
    """Upstream's "Kubectl, logs": --tail, --limit-bytes, --timestamps, --since."""
    pod = node.run_pod(namespace, "filters")
    old = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=2)).strftime(
        "%Y-%m-%dT%H:%M:%S.%f") + "000Z"
    pod["logs"]["app"].write_text(f"{old} stdout F from two hours ago\n" + cri("recent one") + cri("recent two"))
    logs = lambda *flags: server.kubectl("logs", "filters", "-n", namespace, *flags).stdout  # noqa: E731
    assert logs("--tail=1") == "recent two\n"
    assert logs("--limit-bytes=1") == "f"
    stamped = logs("--tail=1", "--timestamps")
    stamp, _, text = stamped.partition(" ")
    assert text == "recent two\n"
    datetime.datetime.fromisoformat(stamp[:26] + "+00:00")      # RFC3339
    assert logs("--since=1h") == "recent one\nrecent two\n"
    assert logs("--since=24h") == "from two hours ago\nrecent one\nrecent two\n"


@pytest.mark.parametrize("version", ["1.29", "1.30"])
def test_spdy_kubectl(server, namespace, node, version, tmp_path):
    """kubectl before WebSockets: plain `Upgrade: SPDY/3.1` for exec (1.29) and port-forward (1.29, 1.30)."""
    node.run_pod(namespace, "spdy")
    out = server.kubectl("exec", "spdy", "-n", namespace, "--", "sh", "-c", "echo old; echo err >&2; exit 5",
                         version=version, check=False)
    assert (out.returncode, out.stdout) == (5, "old\n") and "err" in out.stderr, out.stderr
    piped = server.kubectl("exec", "-i", "spdy", "-n", namespace, "--", "tr", "a-z", "A-Z", input="quiet\n",
                           version=version)
    assert piped.stdout == "QUIET\n"
    (tmp_path / "inside").mkdir()
    (tmp_path / "up.txt").write_text("spdy upload\n")
    server.kubectl("cp", "-n", namespace, str(tmp_path / "up.txt"), f"spdy:{tmp_path}/inside/up.txt", version=version)
    assert (tmp_path / "inside" / "up.txt").read_text() == "spdy upload\n"
    web = serve_http_in(node.netns)
    local = free_port()
    forward = subprocess.Popen([kubectl_binary(version), f"--kubeconfig={server.kubeconfig}",
                                f"--cache-dir={server.cache_dir}", "port-forward", "-n", namespace, "pod/spdy",
                                f"{local}:8080"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "Forwarding from 127.0.0.1" in forward.stdout.readline()
        for _ in range(2):
            got = subprocess.run(["curl", "-s", "--max-time", "10", f"http://127.0.0.1:{local}/"],
                                 capture_output=True, text=True)
            assert got.stdout == "served from the pod netns\n"
    finally:
        forward.kill()
        forward.wait()
        web.kill()
        web.wait()
