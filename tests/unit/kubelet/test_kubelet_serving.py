"""The kubelet API's certificate and the factory the agent uses."""

from __future__ import annotations

import ssl
from types import SimpleNamespace

import aiohttp
from cryptography import x509

from k8py.apiserver import pki as pki_mod
from k8py.kubelet.serving import ensure_serving_cert, server_factory

from .fake_runtime import FakeRuntime


def test_serving_cert_is_signed_by_the_cluster_ca_when_available(tmp_path):
    pki = pki_mod.ensure_pki(tmp_path / "tls")
    cert_path, key_path = ensure_serving_cert(tmp_path / "agent", "node-a", ["10.0.0.5"], tmp_path / "tls")
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    assert cert.issuer == ca.subject
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "node-a" in sans.get_values_for_type(x509.DNSName)
    assert {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)} == {"10.0.0.5", "127.0.0.1"}
    before = cert_path.read_bytes()
    assert ensure_serving_cert(tmp_path / "agent", "node-a", ["10.0.0.5"], tmp_path / "tls")[0].read_bytes() == before
    ensure_serving_cert(tmp_path / "agent", "node-a", ["10.0.0.6"], tmp_path / "tls")
    assert cert_path.read_bytes() != before      # a new address means a new certificate


def test_without_the_ca_key_the_cert_is_self_signed(tmp_path):
    cert_path, _ = ensure_serving_cert(tmp_path / "agent", "node-b", [], None)
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    assert cert.issuer == cert.subject


async def test_factory_builds_a_server_answering_for_the_agents_pods(tmp_path):
    pki = pki_mod.ensure_pki(tmp_path / "tls")
    pod = {"metadata": {"name": "p", "namespace": "default", "uid": "u"}, "spec": {"containers": [{"name": "c"}]}}
    informer = SimpleNamespace(get=lambda key: pod if key == "default/p" else None, list=lambda: [pod])
    reviews = []

    class Reviews:      # the API server's SubjectAccessReview: masters may do anything, metrics readers metrics
        async def create(self, review):
            reviews.append(review["spec"])
            attrs, groups = review["spec"]["resourceAttributes"], review["spec"]["groups"]
            return {"status": {"allowed": "system:masters" in groups or (
                review["spec"]["user"] == "system:metrics-server" and attrs["subresource"] == "metrics")}}
    client = SimpleNamespace(resource=lambda group_version, plural: Reviews())
    agent = SimpleNamespace(config=SimpleNamespace(node_name="node-a", node_ip="127.0.0.1", kubelet_port=10250,
                                                   data_dir=tmp_path / "agent"),
                            runtime=FakeRuntime(), informer=informer, client=client)
    server = server_factory(tmp_path / "agent", ca_dir=tmp_path / "tls", client_ca_file=pki.ca_cert,
                            port=0)(agent)
    await server.start()
    try:
        ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
        ctx.load_cert_chain(str(pki.admin_cert), str(pki.admin_key))
        async with aiohttp.ClientSession() as s:
            async with s.get(f"https://127.0.0.1:{server.port}/pods", ssl=ctx) as r:
                assert (await r.json())["items"] == [pod]
            async with s.get(f"https://127.0.0.1:{server.port}/containerLogs/default/p/c", ssl=ctx) as r:
                assert r.status == 400   # known pod, container not started: a Status, not a crash
            async with s.get(f"https://127.0.0.1:{server.port}/containerLogs/default/q/c", ssl=ctx) as r:
                assert r.status == 404
        # webhook authorization: each caller's certificate is put to RBAC as nodes/<subresource>
        cert, key = pki_mod.ensure_client_cert(pki, "client-metrics", "system:metrics-server")
        ctx = ssl.create_default_context(cafile=str(pki.ca_cert))
        ctx.load_cert_chain(str(cert), str(key))
        async with aiohttp.ClientSession() as s:
            async with s.get(f"https://127.0.0.1:{server.port}/metrics/resource", ssl=ctx) as r:
                assert r.status == 200 and "resource_scrape_error 0" in await r.text()
            async with s.get(f"https://127.0.0.1:{server.port}/stats/summary", ssl=ctx) as r:
                assert r.status == 403 and await r.text() == \
                    "Forbidden (user=system:metrics-server, verb=get, resource=nodes, subresource=stats)"
            async with s.get(f"https://127.0.0.1:{server.port}/metrics/resource", ssl=ctx) as r:
                assert r.status == 200
        asked = [(r["user"], r["resourceAttributes"]["subresource"], r["resourceAttributes"]["name"]) for r in reviews]
        assert asked.count(("system:metrics-server", "metrics", "node-a")) == 1      # the answer is cached
        assert ("system:metrics-server", "stats", "node-a") in asked
    finally:
        await server.stop()
