"""End-to-end fixtures: a real `k8py server` on a free port, the real kubectl (`kubectl_binary`,
from tests/kubectl.py, is imported from here by the e2e modules)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.kubectl import kubectl_binary

REPO = Path(__file__).resolve().parents[2]
# The seed manifests, as copied into the repository (test_repo_data.py checks the copies
# match ../shared/manifests/seed, which CI and the project machines have beside the clone).
SEED = REPO / "tests" / "data" / "seed"
# The servers' join token (k3s-style --token): agents join with it. It is no API credential
# beyond requesting node certificates; tests act as the admin with admin_ssl_context().
TOKEN = "e2e-join-token"


def admin_ssl_context(data_dir: Path) -> ssl.SSLContext:
    """TLS to a server of ours as the cluster admin: the admin kubeconfig's client certificate."""
    tls = Path(data_dir) / "server" / "tls"
    ctx = ssl.create_default_context(cafile=str(tls / "server-ca.crt"))
    ctx.check_hostname = False
    ctx.load_cert_chain(str(tls / "client-admin.crt"), str(tls / "client-admin.key"))
    return ctx



def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, timeout: float = 10.0, interval: float = 0.05, what: str = "condition"):
    """Poll `condition` until it returns something truthy; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


@dataclass
class Server:
    process: subprocess.Popen
    data_dir: Path
    port: int
    kubeconfig: Path
    cache_dir: Path
    log_path: Path
    etcd: object = None  # the etcd this server stores in, under K8PY_TEST_DATASTORE=etcd

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def ready(self) -> bool:
        ctx = ssl.create_default_context(cafile=str(self.data_dir / "server" / "tls" / "server-ca.crt")) \
            if (self.data_dir / "server" / "tls" / "server-ca.crt").exists() else ssl._create_unverified_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        try:
            with urllib.request.urlopen(self.url + "/readyz", context=ctx, timeout=1) as r:
                return r.status == 200
        except Exception:
            return False

    def kubectl(self, *args, version: str | None = None, input: str | None = None, check: bool = True,
                env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
        cmd = [kubectl_binary(version), f"--kubeconfig={self.kubeconfig}",
               f"--cache-dir={self.cache_dir}", *args]
        result = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout,
                                env={**os.environ, **(env or {})})
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    def kubectl_json(self, *args, **kw):
        return json.loads(self.kubectl(*args, "-o", "json", **kw).stdout)

    def stop(self, sig=signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.etcd is not None:
            self.etcd.stop()


def start_server(data_dir: Path, port: int | None = None, extra: list[str] = ()) -> Server:
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    kubeconfig = data_dir / "kubeconfig.yaml"
    log_path = data_dir / "server.log"
    etcd = None
    if os.environ.get("K8PY_TEST_DATASTORE") == "etcd" and not {"--datastore-endpoint", "--cluster-init"} & set(extra):
        # The whole e2e suite on etcd: every server gets an etcd of its own (docs/etcd.md).
        from tests.etcd_server import start_etcd
        etcd = start_etcd(data_dir / "etcd")
        extra = [*extra, "--datastore-endpoint", etcd.endpoint]
    log = open(log_path, "ab")
    if "--node-monitor-grace-period" not in extra:
        # Most e2e nodes are plain API objects (fake_nodes.py) with no kubelet renewing a Lease: keep
        # the node lifecycle controller from declaring them Unknown in the middle of a test.
        extra = [*extra, "--node-monitor-grace-period", "1h", "--node-startup-grace-period", "1h"]
    process = subprocess.Popen(
        [sys.executable, "-m", "k8py", "server", "--data-dir", str(data_dir), "--https-listen-port", str(port),
         "--write-kubeconfig", str(kubeconfig), "--token", TOKEN, "--disable-agent", *extra],
        stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    server = Server(process, data_dir, port, kubeconfig, data_dir / "kube-cache", log_path, etcd)
    try:
        wait_for(lambda: process.poll() is not None or (server.ready() and kubeconfig.exists()), timeout=30,
                 what="server /readyz")
    except AssertionError:
        server.stop()
        raise
    if process.poll() is not None:
        server.stop()  # its etcd, if any
        raise AssertionError(f"server exited: {log_path.read_text()[-3000:]}")
    if "controller-manager" not in [b for a, b in zip(extra, extra[1:]) if a == "--disable"]:
        wait_for_default_service_account(server, "default")
    return server


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    srv = start_server(tmp_path_factory.mktemp("k8py-server"))
    yield srv
    srv.stop()


class HollowAgent:
    """A simulated agent of `count` nodes (`k8py agent --runtime simulated`) for a test server,
    stopped by PID: `with HollowAgent(srv, tmp, "name", 2, "--simulated-usage", "cpu=20m"):`."""

    def __init__(self, server: Server, data_dir: Path, node_name: str, count: int, *extra: str):
        data_dir.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "k8py", "agent", "--server", server.url, "--token", TOKEN,
             "--runtime", "simulated", "--count", str(count), "--node-name", node_name,
             "--data-dir", str(data_dir / "agent"), *extra],
            stdout=open(data_dir / "agent.log", "wb"), stderr=subprocess.STDOUT, cwd=REPO)
        wait_for(lambda: server.kubectl("get", "nodes", check=False).stdout.count(" Ready") == count,
                 timeout=60, what=f"{count} hollow nodes Ready")

    def __enter__(self) -> "HollowAgent":
        return self

    def __exit__(self, *exc) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def wait_for_default_service_account(cluster, namespace: str, timeout: float = 30) -> None:
    """Pods are admitted only once their namespace's `default` ServiceAccount exists (the
    serviceaccount controller makes it): wait for it, as upstream's e2e framework does."""
    wait_for(lambda: cluster.kubectl("get", "serviceaccount", "default", "-n", namespace, check=False).returncode == 0,
             timeout=timeout, interval=0.2, what=f"the default ServiceAccount in {namespace}")


@pytest.fixture
def namespace(server, request):
    """A fresh namespace per test, deleted afterwards."""
    # Parametrized tests share a prefix: a digest of the full test id keeps their namespaces apart.
    digest = hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:6]
    name = "t-" + request.node.name.lower().replace("_", "-")[:40].strip("-") + f"-{digest}-{os.getpid() % 1000}"
    name = "".join(c for c in name if c.isalnum() or c == "-")[:60].strip("-")
    server.kubectl("create", "-f", "-", input=f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n")
    wait_for_default_service_account(server, name)
    yield name
    server.kubectl("delete", "namespace", name, "--wait=false", check=False)
