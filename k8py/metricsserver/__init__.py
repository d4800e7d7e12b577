"""The built-in metrics-server (as k3s bundles one): metrics.k8s.io/v1beta1
NodeMetrics and PodMetrics, behind the APIService v1beta1.metrics.k8s.io
through the API server's aggregation layer, so `kubectl top` and the HPA read
them as upstream.

Every `--metric-resolution` (15 s) it scrapes each node's kubelet
/metrics/resource (scrape.py) with its own client certificate
(system:metrics-server, RBAC role system:metrics-server), keeps the last two
readings (storage.py) and serves usage from them (api.py) on 127.0.0.1 over
TLS to the aggregator only. Registration (registration.py) is what k3s's
manifests do: the kube-system/metrics-server Service and the APIService,
written with the server's admin client as k3s's deploy controller would.
`--disable metrics-server` leaves all of it out.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import ssl
import time
from pathlib import Path

import aiohttp
from aiohttp import web

from k8py.apimachinery.certs import issue_serving_cert, pki_paths, write_atomic
from k8py.client import Client
from k8py.client.informer import Informer
from k8py.client.paths import default_data_dir
from k8py.metricsserver.api import MetricsAPI
from k8py.metricsserver.registration import register
from k8py.metricsserver.scrape import ScrapeError, kubelet_url, scrape
from k8py.metricsserver.storage import Storage

log = logging.getLogger("k8py.metricsserver")

DEFAULT_RESOLUTION = 15.0
CONCURRENT_SCRAPES = 64


def parse_duration(text: str) -> float:
    """Go-style duration ("15s", "1m30s", "500ms") or plain seconds, as metrics-server's flag takes."""
    text = text.strip()
    try:
        value = float(text)
    except ValueError:
        parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", text)
        if not parts or "".join(n + u for n, u in parts) != text:
            raise argparse.ArgumentTypeError(f"invalid duration {text!r}")
        value = sum(float(n) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001}[u] for n, u in parts)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}: must be positive")
    return value


def add_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--metric-resolution", type=parse_duration, default=DEFAULT_RESOLUTION,
                        help="metrics-server: how often kubelets are scraped (default 15s)")


def _trim(obj: dict) -> dict:
    """Only what metrics-server needs of nodes and pods stays in its caches."""
    meta = obj.get("metadata") or {}
    kept = {"metadata": {k: meta[k] for k in ("name", "namespace", "labels", "uid", "resourceVersion")
                              if k in meta}}
    if obj.get("kind") == "Node" or "addresses" in (obj.get("status") or {}):
        status = obj.get("status") or {}
        kept["status"] = {k: status[k] for k in ("addresses", "daemonEndpoints") if k in status}
    return kept


class MetricsServer:
    def __init__(self, client: Client, tls_dir: Path, resolution: float):
        self.client, self.tls_dir, self.resolution = client, Path(tls_dir), resolution
        self.storage = Storage()
        self.nodes = Informer(client, "v1", "nodes", transform=_trim)
        self.pods = Informer(client, "v1", "pods", transform=_trim)
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self.last_scrape_seconds = 0.0

    def _serving_tls(self) -> ssl.SSLContext:
        pki = pki_paths(self.tls_dir)
        cert_path, key_path = self.tls_dir / "serving-metrics-server.crt", self.tls_dir / "serving-metrics-server.key"
        cert, key = issue_serving_cert(pki, "metrics-server", ["metrics-server.kube-system.svc", "localhost",
                                                               "127.0.0.1"])
        write_atomic(key_path, key, 0o600)
        write_atomic(cert_path, cert, 0o644)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(str(cert_path), str(key_path))
        ctx.load_verify_locations(cafile=str(pki.ca_cert))      # the aggregator's front-proxy certificate
        ctx.verify_mode = ssl.CERT_REQUIRED
        return ctx

    def _kubelet_tls(self) -> ssl.SSLContext:
        """Our client certificate for kubelets; their serving certificates are not checked (k3s runs
        metrics-server with --kubelet-insecure-tls: agents outside the server sign their own)."""
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.load_cert_chain(str(self.tls_dir / "client-metrics-server.crt"),
                            str(self.tls_dir / "client-metrics-server.key"))
        return ctx

    async def start(self) -> None:
        await asyncio.gather(self.nodes.start(), self.pods.start())
        self._runner = web.AppRunner(MetricsAPI(self.storage, self.nodes, self.pods).app(), access_log=None,
                                     handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self._serving_tls())
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        log.info("metrics-server serving metrics.k8s.io on 127.0.0.1:%d, scraping every %gs", self.port,
                 self.resolution)

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()
        await asyncio.gather(self.nodes.stop(), self.pods.stop(), return_exceptions=True)

    async def scrape_all(self) -> None:
        """One round: every node's kubelet at once (bounded), each result stored as it comes."""
        if self._session is None:
            self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENT_SCRAPES))
        tls = self._kubelet_tls()
        started = time.monotonic()
        nodes = self.nodes.list()
        names = {n["metadata"]["name"] for n in nodes}

        async def one(node: dict) -> None:
            name = node["metadata"]["name"]
            url = kubelet_url(node)
            if url is None:
                log.warning("Failed to scrape node %s: no address", name)
                return
            try:
                sample = await scrape(self._session, url, tls, min(10.0, self.resolution), time.time())
            except ScrapeError as e:
                log.warning("Failed to scrape node %s: %s", name, e)
                return
            self.storage.store(name, sample)

        await asyncio.gather(*(one(n) for n in nodes))
        for gone in self.storage.node_names() - names:
            self.storage.forget_node(gone)
        self.last_scrape_seconds = time.monotonic() - started

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            began = loop.time()
            try:
                await self.scrape_all()
            except Exception:
                log.exception("metrics scrape failed")
            await asyncio.sleep(max(0.0, self.resolution - (loop.time() - began)))


async def run_in_server(args, client: Client) -> None:
    data_dir = (getattr(args, "data_dir", None) or default_data_dir()).resolve()
    server = MetricsServer(client, data_dir / "server" / "tls",
                           getattr(args, "metric_resolution", None) or DEFAULT_RESOLUTION)
    await server.start()
    try:
        admin = Client.for_local_server(data_dir, client.server, user_agent="k8py-deploy")
        try:
            await register(admin, server.port)
        finally:
            await admin.close()
        await server.run()
    finally:
        await server.stop()
