"""API aggregation: an APIService sends metrics.k8s.io to a backend server, kubectl can't tell."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
import yaml
from aiohttp import web

from k8py.apiserver.pki import ensure_pki, ssl_context
from tests.e2e.conftest import free_port, wait_for

GROUP_VERSION = "metrics.k8s.io/v1beta1"


class MetricsBackend:
    """A tiny aggregated API server on localhost that remembers who it was told the caller is."""

    def __init__(self, tls_dir, cluster_ca):
        self.port = free_port()
        self.callers: list[tuple[str, list[str], str]] = []
        # Its own serving certificate; client certificates checked against the cluster CA, as
        # metrics-server does with requestheader-client-ca-file.
        self.ssl = ssl_context(ensure_pki(tls_dir))
        self.ssl.load_verify_locations(cafile=str(cluster_ca))
        self.loop = asyncio.new_event_loop()
        self.runner = None

    async def discovery(self, request):
        return web.json_response({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": GROUP_VERSION,
                                  "resources": [{"name": "nodes", "singularName": "", "namespaced": False,
                                                 "kind": "NodeMetrics", "verbs": ["get", "list"]},
                                                {"name": "pods", "singularName": "", "namespaced": True,
                                                 "kind": "PodMetrics", "verbs": ["get", "list"]}]})

    async def nodes(self, request):
        peer = request.transport.get_extra_info("peercert") or {}
        proxy = dict(pair[0] for pair in peer.get("subject", ())).get("commonName", "")
        self.callers.append((request.headers.get("X-Remote-User"), request.headers.getall("X-Remote-Group", []),
                             proxy))
        return web.json_response({"kind": "NodeMetricsList", "apiVersion": GROUP_VERSION, "metadata": {},
                                  "items": [{"metadata": {"name": "node-a"}, "timestamp": "2026-01-01T00:00:00Z",
                                             "window": "10s", "usage": {"cpu": "250m", "memory": "64Mi"}}]})

    def start(self):
        app = web.Application()
        app.router.add_get(f"/apis/{GROUP_VERSION}", self.discovery)
        app.router.add_get(f"/apis/{GROUP_VERSION}/nodes", self.nodes)
        self.runner = web.AppRunner(app)
        self.loop.run_until_complete(self.runner.setup())
        self.loop.run_until_complete(web.TCPSite(self.runner, "127.0.0.1", self.port, ssl_context=self.ssl).start())
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

    def stop(self):
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)


@pytest.fixture
def backend(tmp_path, server):
    b = MetricsBackend(tmp_path / "backend-tls", server.data_dir / "server" / "tls" / "server-ca.crt")
    b.start()
    yield b
    b.stop()


def register(server, port: int) -> None:
    documents = [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "metrics-server", "namespace": "kube-system"},
         "spec": {"type": "ExternalName", "externalName": "localhost"}},
        {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
         "metadata": {"name": "v1beta1.metrics.k8s.io"},
         "spec": {"group": "metrics.k8s.io", "version": "v1beta1", "insecureSkipTLSVerify": True,
                  "groupPriorityMinimum": 100, "versionPriority": 100,
                  "service": {"name": "metrics-server", "namespace": "kube-system", "port": port}}}]
    server.kubectl("apply", "-f", "-", input="\n---\n".join(yaml.safe_dump(d) for d in documents))


def available(server) -> str:
    apiservice = server.kubectl_json("get", "apiservice", "v1beta1.metrics.k8s.io")
    return next((c["status"] for c in apiservice.get("status", {}).get("conditions", [])
                 if c["type"] == "Available"), "")


def test_apiservice_proxies_requests_and_joins_discovery(server, backend):
    register(server, backend.port)
    wait_for(lambda: available(server) == "True", timeout=10, what="APIService Available")
    raw = json.loads(server.kubectl("get", "--raw", f"/apis/{GROUP_VERSION}/nodes").stdout)
    assert raw["items"][0]["usage"] == {"cpu": "250m", "memory": "64Mi"}
    assert backend.callers[-1] == ("system:admin", ["system:masters", "system:authenticated"], "system:auth-proxy")
    resources = server.kubectl("api-resources", "--api-group=metrics.k8s.io").stdout
    assert "NodeMetrics" in resources and "PodMetrics" in resources
    table = server.kubectl("get", "nodes.metrics.k8s.io").stdout
    assert "node-a" in table
    assert "metrics.k8s.io/v1beta1" in server.kubectl("api-versions").stdout


def test_apiservice_without_backend_reports_why(server):
    register(server, free_port())
    wait_for(lambda: available(server) == "False", timeout=10, what="APIService unavailable")
    apiservice = server.kubectl_json("get", "apiservice", "v1beta1.metrics.k8s.io")
    condition = apiservice["status"]["conditions"][0]
    assert condition["reason"] == "FailedDiscoveryCheck"
    failed = server.kubectl("get", "--raw", f"/apis/{GROUP_VERSION}/nodes", check=False)
    assert failed.returncode != 0 and "unable to handle the request" in failed.stderr
    server.kubectl("delete", "apiservice", "v1beta1.metrics.k8s.io")
