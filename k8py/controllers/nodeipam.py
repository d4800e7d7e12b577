"""The node IPAM controller: gives every Node a podCIDR slice of the cluster range.

As upstream's range allocator (kube-controller-manager `--allocate-node-cidrs
--cluster-cidr --node-cidr-mask-size`, on in k3s): a Node without
`spec.podCIDR` gets the lowest free block of the mask size (24) that overlaps
no other node's, written once to `spec.podCIDR`/`spec.podCIDRs`. One worker
hands them out, so agents joining at the same moment never get the same slice
(each kubelet claiming its own could). A deleted Node's slice is free again.
When the range is full the Node gets a `CIDRNotAvailable` event and is retried.
"""

from __future__ import annotations

import ipaddress
import logging

from k8py.client import ApiError
from k8py.controllers.base import Controller

log = logging.getLogger("k8py.controllers.nodeipam")

DEFAULT_MASK_SIZE = 24
RETRY_FULL_SECONDS = 5.0


def node_cidrs(node: dict) -> list[str]:
    spec = node.get("spec") or {}
    return list(spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else []))


def first_free_block(cluster_cidr: str, mask_size: int, taken: list[str]) -> str | None:
    """The lowest block of `mask_size` in the cluster range that overlaps nothing in `taken`.

    Blocks are numbered from the start of the range and the taken ones marked in a set,
    so a full range of many nodes costs one pass, not a comparison per pair.
    """
    cluster = ipaddress.ip_network(cluster_cidr, strict=False)
    if mask_size < cluster.prefixlen or mask_size > cluster.max_prefixlen:
        return None
    block_size = 1 << (cluster.max_prefixlen - mask_size)
    blocks = 1 << (mask_size - cluster.prefixlen)
    start = int(cluster.network_address)
    end = int(cluster.broadcast_address)
    used: set[int] = set()
    for cidr in taken:
        try:
            network = ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            continue
        if network.version != cluster.version or not network.overlaps(cluster):
            continue
        first = (max(int(network.network_address), start) - start) // block_size
        last = (min(int(network.broadcast_address), end) - start) // block_size
        used.update(range(first, last + 1))
    for index in range(blocks):
        if index not in used:
            return str(ipaddress.ip_network((start + index * block_size, mask_size)))
    return None


class NodeIpamController(Controller):
    name = "nodeipam"
    workers = 1     # one allocator: two nodes never get the same block
    event_source = "cidrAllocator"

    async def setup(self) -> None:
        options = self.ctx.options
        self.cluster_cidr = options.get("cluster_cidr") if options.get("allocate_node_cidrs") else None
        self.mask_size = int(options.get("node_cidr_mask_size") or DEFAULT_MASK_SIZE)
        self.assigned: dict[str, str] = {}     # node -> block we wrote that the informer may not show yet
        self.nodes = self.ctx.informer("v1", "nodes")
        if self.cluster_cidr is None:
            log.info("node CIDR allocation is off (no --allocate-node-cidrs/--cluster-cidr)")
            return
        self.nodes.add_handler(on_add=self.enqueue, on_update=lambda old, new: self.enqueue(new),
                               on_delete=self._node_deleted)

    def _node_deleted(self, node: dict) -> None:
        self.assigned.pop(node["metadata"]["name"], None)

    async def sync(self, key: str) -> None:
        if self.cluster_cidr is None:
            return
        node = self.nodes.get(key)
        if node is None or node_cidrs(node):
            if node is not None:
                self.assigned.pop(key, None)
            return
        if key in self.assigned:
            return      # written; the informer catches up
        taken = [c for n in self.nodes.list() for c in node_cidrs(n)] + list(self.assigned.values())
        block = first_free_block(self.cluster_cidr, self.mask_size, taken)
        if block is None:
            self.recorder.event(node, "Normal", "CIDRNotAvailable", f"Node {key} status is now: CIDRNotAvailable")
            self.requeue_after(key, RETRY_FULL_SECONDS)
            return
        try:
            await self.client.resource("v1", "nodes").patch(key, {"spec": {"podCIDR": block, "podCIDRs": [block]}})
        except ApiError as e:
            if e.code == 404:
                return
            # podCIDR is write-once: a kubelet claimed one meanwhile (the informer will show it).
            if e.code == 422:
                log.info("node %s got a podCIDR elsewhere: %s", key, e)
                return
            self.recorder.event(node, "Warning", "CIDRAssignmentFailed",
                                f"Node {key} status is now: CIDRAssignmentFailed")
            raise
        self.assigned[key] = block
        log.info("node %s: podCIDR %s", key, block)
