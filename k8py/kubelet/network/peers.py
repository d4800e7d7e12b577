"""Routes to the other nodes' pods.

Every node owns a podCIDR slice of the cluster range; a pod on another node
is reached through that node's InternalIP. This keeps the host's routing
table in step with the Node objects (added, re-addressed, deleted); slices
without a known node stay on the `unreachable` cluster route.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging

log = logging.getLogger("k8py.kubelet.network")


def node_ip(node: dict) -> str | None:
    for kind in ("InternalIP", "ExternalIP"):
        for address in (node.get("status") or {}).get("addresses") or []:
            if address.get("type") == kind and address.get("address"):
                try:
                    if ipaddress.ip_address(address["address"]).version == 4:
                        return address["address"]
                except ValueError:
                    continue
    return None


def peer_routes(nodes: list[dict], own_node: str, cluster_cidr: str, own_ip: str | None = None) -> dict[str, str]:
    """podCIDR -> node IP for every other node whose slice lies in the cluster range.

    Nodes on a loopback address or on our own address (hollow nodes, nodes of
    this very machine) can't be routed to: a route via them would only loop here."""
    cluster = ipaddress.ip_network(cluster_cidr, strict=False)
    routes = {}
    for node in nodes:
        if node["metadata"]["name"] == own_node:
            continue
        spec = node.get("spec") or {}
        ip = node_ip(node)
        if ip and (ip == own_ip or ipaddress.ip_address(ip).is_loopback):
            continue
        for cidr in spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else []):
            try:
                network = ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                continue
            if ip and network.version == 4 and network.subnet_of(cluster):
                routes[str(network)] = ip
    return routes


class PeerRoutes:
    """Watches Nodes through an Informer and keeps PodNetwork's peer routes current."""

    def __init__(self, client, network, own_node: str, cluster_cidr: str, own_ip: str | None = None):
        from k8py.client import Informer
        self.network = network
        self.own_node = own_node
        self.cluster_cidr = cluster_cidr
        self.own_ip = own_ip
        self.informer = Informer(client, "v1", "nodes")
        self._dirty = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.informer.add_handler(on_add=lambda obj: self._dirty.set(),
                                  on_update=lambda old, new: self._dirty.set(),
                                  on_delete=lambda obj: self._dirty.set())

    async def start(self) -> None:
        await self.informer.start()
        await self.sync()
        self._task = asyncio.create_task(self._run())

    async def sync(self) -> None:
        await self.network.set_peer_routes(peer_routes(self.informer.list(), self.own_node, self.cluster_cidr,
                                                         self.own_ip))

    async def _run(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                await self.sync()
            except Exception:   # a bad route must not stop later updates
                log.exception("updating routes to other nodes' pods")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        await self.informer.stop()
