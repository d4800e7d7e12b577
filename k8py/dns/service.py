"""Cluster DNS as a component: records from informers, listeners, and the kube-dns Service.

As in k3s, the DNS ClusterIP (--cluster-dns, 10.43.0.10) is an ordinary
Service: `kube-system/kube-dns` with that clusterIP and no selector, whose
Endpoints (written here) point at the address this server listens on. The
server listens on the node's pod-bridge gateway (first address of the node's
podCIDR) once the bridge has it, so kube-proxy carries pod traffic for
10.43.0.10:53 there; extra listeners (e.g. 127.0.0.1:<port>) come from
K8PY_DNS_LISTEN ("host:port,host:port").
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import socket

from aiohttp import web

from k8py.client import ApiError, Client, Informer
from k8py.dns.forward import Forwarder, resolv_conf_nameservers
from k8py.dns.records import ClusterRecords
from k8py.dns.server import DNSHandler, DNSServer

log = logging.getLogger("k8py.dns")

SERVICE_NAME = "kube-dns"
NAMESPACE = "kube-system"
DNS_PORT = 53
METRICS_PORT = 9153
LABELS = {"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "CoreDNS"}


def kube_dns_service(cluster_ip: str) -> dict:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": SERVICE_NAME, "namespace": NAMESPACE, "labels": dict(LABELS)},
            "spec": {"clusterIP": cluster_ip, "type": "ClusterIP",
                     "ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": DNS_PORT},
                               {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": DNS_PORT},
                               {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": METRICS_PORT}]}}


def kube_dns_endpoints(ips: list[str], node_name: str | None) -> dict:
    addresses = [{"ip": ip, **({"nodeName": node_name} if node_name else {})} for ip in ips]
    return {"apiVersion": "v1", "kind": "Endpoints",
            "metadata": {"name": SERVICE_NAME, "namespace": NAMESPACE, "labels": dict(LABELS)},
            "subsets": [{"addresses": addresses,
                         "ports": [{"name": "dns", "port": DNS_PORT, "protocol": "UDP"},
                                   {"name": "dns-tcp", "port": DNS_PORT, "protocol": "TCP"},
                                   {"name": "metrics", "port": METRICS_PORT, "protocol": "TCP"}]}] if ips else []}


def parse_listen(spec: str | None) -> list[tuple[str, int]]:
    out = []
    for item in (spec or "").split(","):
        item = item.strip()
        if item:
            host, _, port = item.rpartition(":")
            out.append((host.strip("[]"), int(port)))
    return out


class ClusterDNS:
    def __init__(self, client: Client, domain: str = "cluster.local",
                 reverse_cidrs: tuple[str, ...] = ("10.42.0.0/16", "10.43.0.0/16"),
                 upstreams: list[tuple[str, int]] | None = None):
        self.client = client
        self.records = ClusterRecords(domain, list(reverse_cidrs))
        self.forwarder = Forwarder(upstreams if upstreams is not None else resolv_conf_nameservers())
        self.handler = DNSHandler(self.records, self.forwarder)
        self.server = DNSServer(self.handler)
        self.services = Informer(client, "v1", "services")
        self.slices = Informer(client, "discovery.k8s.io/v1", "endpointslices")
        self.services.add_handler(self.records.set_service, lambda old, new: self.records.set_service(new),
                                  self.records.delete_service)
        self.slices.add_handler(self.records.set_slice, lambda old, new: self.records.set_slice(new),
                                self.records.delete_slice)
        self._metrics_runners: list[web.AppRunner] = []

    async def start(self, listen: list[tuple[str, int]]) -> list[tuple[str, int]]:
        await self.services.start()
        await self.slices.start()
        for host, port in listen:
            await self.server.listen(host, port)
        return list(self.server.addresses)

    async def serve_metrics(self, host: str, port: int) -> None:
        async def metrics(_request):
            body = ("# HELP coredns_dns_requests_total Counter of DNS requests made per zone.\n"
                    "# TYPE coredns_dns_requests_total counter\n"
                    f"coredns_dns_requests_total {self.handler.queries}\n"
                    f"coredns_cache_entries{{type=\"forward\"}} {len(self.forwarder.cache)}\n")
            return web.Response(text=body, content_type="text/plain")
        app = web.Application()
        app.router.add_get("/metrics", metrics)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        self._metrics_runners.append(runner)

    async def stop(self) -> None:
        await self.server.close()
        for runner in self._metrics_runners:
            await runner.cleanup()
        await self.services.stop()
        await self.slices.stop()


async def ensure_kube_dns(client: Client, cluster_ip: str, ips: list[str] | None, node_name: str | None) -> None:
    """Create the kube-dns Service if missing; with `ips`, point its Endpoints there."""
    services = client.resource("v1", "services", NAMESPACE)
    try:
        await services.get(SERVICE_NAME)
    except ApiError as e:
        if not e.not_found:
            raise
        try:
            # Ask first: a second create with the same clusterIP is refused as Invalid, not AlreadyExists.
            await services.create(kube_dns_service(cluster_ip))
        except ApiError as e:
            if not (e.already_exists or e.code == 422):
                raise
    if ips is None:
        return
    endpoints = client.resource("v1", "endpoints", NAMESPACE)
    wanted = kube_dns_endpoints(ips, node_name)
    try:
        current = await endpoints.get(SERVICE_NAME)
    except ApiError as e:
        if not e.not_found:
            raise
        await endpoints.create(wanted)
        return
    if current.get("subsets") != wanted["subsets"]:
        wanted["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        await endpoints.update(wanted)


async def node_gateway(client: Client, node_name: str) -> str | None:
    """The first address of this node's podCIDR: where the pod bridge (and so the DNS server) lives."""
    try:
        node = await client.resource("v1", "nodes").get(node_name)
    except ApiError:
        return None
    cidr = (node.get("spec") or {}).get("podCIDR")
    return str(next(ipaddress.ip_network(cidr, strict=False).hosts())) if cidr else None


async def _bind_gateway(dns: ClusterDNS, client: Client, node_name: str, cluster_ip: str) -> None:
    """Wait for the node's bridge address to exist, then listen there and point kube-dns at it."""
    while True:
        gateway = await node_gateway(client, node_name)
        if gateway:
            try:
                await dns.server.listen(gateway, DNS_PORT)
                await dns.serve_metrics(gateway, METRICS_PORT)
                await ensure_kube_dns(client, cluster_ip, [gateway], node_name)
                log.info("cluster DNS listening on %s:%d (kube-dns %s)", gateway, DNS_PORT, cluster_ip)
                return
            except OSError as e:  # the bridge is not up yet
                log.debug("cannot listen on %s yet: %s", gateway, e)
        await asyncio.sleep(2.0)


async def run_in_server(args, client: Client) -> None:
    domain = getattr(args, "cluster_domain", "cluster.local")
    reverse = (getattr(args, "cluster_cidr", "10.42.0.0/16"), getattr(args, "service_cidr", "10.43.0.0/16"))
    cluster_ip = getattr(args, "cluster_dns", "10.43.0.10")
    # Never forward to ourselves: a node whose own resolv.conf names the cluster DNS would loop.
    upstreams = resolv_conf_nameservers(exclude={cluster_ip})
    dns = ClusterDNS(client, domain, reverse, upstreams=upstreams)
    try:
        await dns.start(parse_listen(os.environ.get("K8PY_DNS_LISTEN")))
        await ensure_kube_dns(client, cluster_ip, None, None)
        node_name = (getattr(args, "node_name", None) or os.environ.get("K8PY_NODE_NAME")
                     or socket.gethostname()).lower()  # the kubelet's default node name
        if os.geteuid() == 0 and not getattr(args, "disable_agent", False):
            await _bind_gateway(dns, client, node_name, cluster_ip)
        await asyncio.Event().wait()
    finally:
        await dns.stop()
