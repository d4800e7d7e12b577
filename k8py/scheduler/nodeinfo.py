"""NodeInfo: one node plus the sum of what the pods on it use.

The cache keeps one NodeInfo per node up to date as pods come and go, so a
scheduling cycle never has to add up a node's pods again.
"""

from __future__ import annotations

from k8py.scheduler import resources
from k8py.scheduler.podinfo import PodInfo

IMAGE_LATEST = ":latest"
MEMO_LIMIT = 32


def normalized_image(name: str) -> str:
    """Image names as the kubelet reports them: a bare name means :latest."""
    return name + IMAGE_LATEST if name.rfind(":") <= name.rfind("/") else name


class NodeInfo:
    __slots__ = ("name", "node", "labels", "taints", "unschedulable", "allocatable", "requested",
                 "non_zero_requested", "pods", "pods_with_affinity", "pods_with_required_anti_affinity",
                 "used_ports", "images", "generation", "memo", "memo_generation",
                 "label_groups", "affinity_groups")

    def __init__(self, node: dict | None = None, name: str = ""):
        self.pods: dict[str, PodInfo] = {}
        self.pods_with_affinity: dict[str, PodInfo] = {}
        self.pods_with_required_anti_affinity: dict[str, PodInfo] = {}
        self.requested: dict[str, int] = {}
        self.non_zero_requested = {resources.CPU: 0, resources.MEMORY: 0}
        self.used_ports: dict[tuple[str, int], list[str]] = {}
        # (namespace, labels, terminating) -> [namespace, labels, terminating, count]: selectors are
        # matched once per group of look-alike pods, not once per pod.
        self.label_groups: dict[tuple, list] = {}
        # existing pods' affinity terms that score the incoming pod: (kind, weight, sig) -> [term, score, count]
        self.affinity_groups: dict[tuple, list] = {}
        self.generation = 0
        # Per-node results of node-local plugins for a pod "shape", valid for one generation.
        self.memo: dict = {}
        self.memo_generation = -1
        self.node: dict | None = None
        self.name = name
        self.labels: dict = {}
        self.taints: list = []
        self.unschedulable = False
        self.allocatable: dict[str, int] = {}
        self.images: dict[str, int] = {}
        if node is not None:
            self.set_node(node)

    def set_node(self, node: dict) -> None:
        meta = node.get("metadata") or {}
        spec = node.get("spec") or {}
        status = node.get("status") or {}
        self.node = node
        self.name = meta.get("name", "")
        self.labels = meta.get("labels") or {}
        self.taints = spec.get("taints") or []
        self.unschedulable = bool(spec.get("unschedulable"))
        self.allocatable = resources.amounts(status.get("allocatable") or status.get("capacity"))
        images = {}
        for image in status.get("images") or []:
            for n in image.get("names") or []:
                images[normalized_image(n)] = int(image.get("sizeBytes") or 0)
        self.images = images
        self.generation += 1

    def current_memo(self) -> dict:
        """Memo of per-node results that stay valid until this node or its pods change."""
        if self.memo_generation != self.generation or len(self.memo) > MEMO_LIMIT:
            self.memo = {}
            self.memo_generation = self.generation
        return self.memo

    def add_pod(self, info: PodInfo) -> None:
        if info.key in self.pods:
            self.remove_pod(info.key)
        self.pods[info.key] = info
        if info.required_affinity or info.required_anti_affinity or info.preferred_affinity \
                or info.preferred_anti_affinity:
            self.pods_with_affinity[info.key] = info
        if info.required_anti_affinity:
            self.pods_with_required_anti_affinity[info.key] = info
        self._account(info, 1)

    def remove_pod(self, key: str) -> PodInfo | None:
        info = self.pods.pop(key, None)
        if info is None:
            return None
        self.pods_with_affinity.pop(key, None)
        self.pods_with_required_anti_affinity.pop(key, None)
        self._account(info, -1)
        return info

    def _account(self, info: PodInfo, sign: int) -> None:
        group = self.label_groups.get(info.label_group)
        if group is None:
            group = self.label_groups[info.label_group] = [info.namespace, info.labels, info.terminating, 0]
        group[3] += sign
        if group[3] <= 0:
            del self.label_groups[info.label_group]
        for key, t, amount in info.scoring_terms:
            entry = self.affinity_groups.get(key)
            if entry is None:
                entry = self.affinity_groups[key] = [t, amount, 0]
            entry[2] += sign
            if entry[2] <= 0:
                del self.affinity_groups[key]
        req = self.requested
        for k, v in info.requests.items():
            req[k] = req.get(k, 0) + sign * v
        nz = self.non_zero_requested
        nz[resources.CPU] += sign * info.non_zero[resources.CPU]
        nz[resources.MEMORY] += sign * info.non_zero[resources.MEMORY]
        for ip, proto, port in info.ports:
            holders = self.used_ports.setdefault((proto, port), [])
            if sign > 0:
                holders.append(ip)
            else:
                holders.remove(ip)
                if not holders:
                    del self.used_ports[(proto, port)]
        self.generation += 1

    def clone(self) -> "NodeInfo":
        """A copy whose pod set can change without touching the cache (preemption dry runs)."""
        c = NodeInfo(name=self.name)
        c.generation = self.generation
        c.node, c.labels, c.taints = self.node, self.labels, self.taints
        c.unschedulable, c.allocatable, c.images = self.unschedulable, self.allocatable, self.images
        c.pods = dict(self.pods)
        c.pods_with_affinity = dict(self.pods_with_affinity)
        c.pods_with_required_anti_affinity = dict(self.pods_with_required_anti_affinity)
        c.requested = dict(self.requested)
        c.non_zero_requested = dict(self.non_zero_requested)
        c.used_ports = {k: list(v) for k, v in self.used_ports.items()}
        c.label_groups = {k: list(v) for k, v in self.label_groups.items()}
        c.affinity_groups = {k: list(v) for k, v in self.affinity_groups.items()}
        c.generation = self.generation
        c.memo_generation = -1
        return c


class Snapshot:
    """The nodes one scheduling cycle sees, plus cluster-wide indexes plugins share."""

    def __init__(self, nodes: list[NodeInfo], namespace_labels: dict[str, dict] | None = None,
                 listers: dict | None = None, by_name: dict[str, NodeInfo] | None = None):
        self.nodes = nodes
        self.by_name = by_name if by_name is not None else {n.name: n for n in nodes}
        self.namespace_labels = namespace_labels or {}
        self.namespace_generation = 0  # bumped by the cache when namespace labels change
        # Existing pods' scoring affinity terms indexed cluster-wide (set by the cache; None = scan nodes).
        self.scoring_terms: dict | None = None
        # The cache (change_log/change_base/log_epoch) when this snapshot is the live cluster view.
        self.change_feed = None
        # Services, ReplicaSets, ... for default topology spreading: lists of dicts by kind.
        self.listers = listers or {}
        self._image_counts: dict[str, int] | None = None
        self._with_affinity: list[NodeInfo] | None = None
        self._with_required_anti: list[NodeInfo] | None = None
        # How many nodes have taints (set by the cache; None = unknown): 0 spares looking at each.
        self.tainted_nodes: int | None = None

    @property
    def with_affinity(self) -> list[NodeInfo]:
        if self._with_affinity is None:
            self._with_affinity = [n for n in self.nodes if n.pods_with_affinity]
        return self._with_affinity

    @property
    def with_required_anti_affinity(self) -> list[NodeInfo]:
        if self._with_required_anti is None:
            self._with_required_anti = [n for n in self.nodes if n.pods_with_required_anti_affinity]
        return self._with_required_anti

    def image_node_count(self, image: str) -> int:
        if self._image_counts is None:
            counts: dict[str, int] = {}
            for n in self.nodes:
                for name in n.images:
                    counts[name] = counts.get(name, 0) + 1
            self._image_counts = counts
        return self._image_counts.get(image, 0)

    def replace(self, node_info: NodeInfo) -> "Snapshot":
        """The same snapshot with one node's info swapped (preemption dry runs)."""
        nodes = [node_info if n.name == node_info.name else n for n in self.nodes]
        s = Snapshot(nodes, self.namespace_labels, self.listers)
        s._image_counts = self._image_counts
        return s
