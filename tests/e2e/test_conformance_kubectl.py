"""Upstream kubectl conformance behaviours (sig-cli) that need no running
container, against a real `k8py server` and the real kubectl."""

from __future__ import annotations

import http.client
import json
import re
import socket
import subprocess

from tests.e2e.conftest import kubectl_binary, wait_for


def test_kubectl_version_prints_client_and_server(server):
    version = json.loads(server.kubectl("version", "-o", "json").stdout)
    for side in ("clientVersion", "serverVersion"):
        info = version[side]
        assert info["major"].isdigit() and info["minor"].rstrip("+").isdigit(), info
        for key in ("gitVersion", "gitCommit", "gitTreeState", "buildDate", "goVersion", "compiler", "platform"):
            assert info.get(key), (side, key, info)
    text = server.kubectl("version").stdout
    assert "Client Version: v1." in text and "Server Version: v1.32." in text


def test_kubectl_api_versions_lists_v1(server):
    assert "v1" in server.kubectl("api-versions").stdout.split()


def test_kubectl_cluster_info_shows_the_control_plane(server):
    out = re.sub(r"\x1b\[[0-9;]*m", "", server.kubectl("cluster-info").stdout)
    assert f"Kubernetes control plane is running at https://127.0.0.1:{server.port}" in out


def test_kubectl_diff_finds_a_changed_deployment_image(server, namespace):
    def deployment(image: str) -> str:
        return json.dumps({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "httpd-deployment"},
                           "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "httpd"}},
                                    "template": {"metadata": {"labels": {"app": "httpd"}},
                                                 "spec": {"containers": [{"name": "httpd", "image": image}]}}}})
    server.kubectl("apply", "-n", namespace, "-f", "-", input=deployment("registry.k8s.io/e2e-test-images/httpd:2.4"))
    diff = server.kubectl("diff", "-n", namespace, "-f", "-", input=deployment("busybox:1.36"), check=False)
    assert diff.returncode == 1, diff.stderr
    removed = [l for l in diff.stdout.splitlines() if l.startswith("-") and "image:" in l]
    added = [l for l in diff.stdout.splitlines() if l.startswith("+") and "image:" in l]
    assert [l.split("image:")[1].strip() for l in removed] == ["registry.k8s.io/e2e-test-images/httpd:2.4"]
    assert [l.split("image:")[1].strip() for l in added] == ["busybox:1.36"]


def test_kubectl_server_side_dry_run_patch_changes_nothing(server, namespace):
    server.kubectl("run", "e2e-test-httpd-pod", "-n", namespace, "--image=registry.k8s.io/e2e-test-images/httpd:2.4",
                   "--restart=Never", "--labels=run=e2e-test-httpd-pod")
    patched = server.kubectl_json("patch", "pod", "e2e-test-httpd-pod", "-n", namespace, "--dry-run=server", "-p",
                                  '{"spec":{"containers":[{"name":"e2e-test-httpd-pod","image":"busybox:1.36"}]}}')
    assert patched["spec"]["containers"][0]["image"] == "busybox:1.36"
    got = server.kubectl_json("get", "pod", "e2e-test-httpd-pod", "-n", namespace)
    assert got["spec"]["containers"][0]["image"] == "registry.k8s.io/e2e-test-images/httpd:2.4"


def _start_proxy(server, *args) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([kubectl_binary(), f"--kubeconfig={server.kubeconfig}", "proxy", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = proc.stdout.readline()
    assert "Starting to serve on" in line, line
    return proc, line.strip()


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_kubectl_proxy_on_port_zero_serves_api_versions(server):
    proc, line = _start_proxy(server, "--port=0")
    try:
        port = int(line.rsplit(":", 1)[1])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/api/")
        resp = conn.getresponse()
        assert resp.status == 200
        assert json.loads(resp.read())["versions"] == ["v1"]
    finally:
        _stop(proc)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str):
        super().__init__("localhost", timeout=10)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(self.unix_path)


def test_kubectl_proxy_on_a_unix_socket_serves_api_versions(server, tmp_path):
    path = str(tmp_path / "kubectl-proxy.sock")
    proc, _ = _start_proxy(server, f"--unix-socket={path}")
    try:
        wait_for(lambda: (tmp_path / "kubectl-proxy.sock").exists(), what="the proxy socket")
        conn = _UnixConnection(path)
        conn.request("GET", "/api/")
        resp = conn.getresponse()
        assert resp.status == 200
        assert "v1" in json.loads(resp.read())["versions"]
    finally:
        _stop(proc)
