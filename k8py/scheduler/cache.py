"""The scheduler's view of the cluster: nodes and the pods bound (or about to be) to them.

Fed by informers. A pod the scheduler has just placed is "assumed" onto its
node at once, before the API has recorded the binding, so the next pod in the
queue already sees the capacity taken; when the informer reports the pod
bound the assumption is confirmed, and if binding fails it is forgotten.
"""

from __future__ import annotations

import logging

from k8py.scheduler.nodeinfo import NodeInfo, Snapshot
from k8py.scheduler.podinfo import PodInfo

log = logging.getLogger("k8py.scheduler.cache")


def pod_counts_for_node(pod: dict) -> bool:
    """Pods that hold resources on their node: bound and not finished."""
    return bool((pod.get("spec") or {}).get("nodeName")) and \
        (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def node_change_matters(old: dict, new: dict) -> bool:
    """Only changes the plugins look at should wake unschedulable pods."""
    def view(n):
        status = n.get("status") or {}
        return ((n.get("metadata") or {}).get("labels"), (n.get("spec") or {}).get("taints"),
                (n.get("spec") or {}).get("unschedulable"), status.get("allocatable"),
                [i.get("names") for i in status.get("images") or []])
    return view(old) != view(new)


class SchedulerCache:
    def __init__(self):
        self.nodes: dict[str, NodeInfo] = {}       # includes placeholders for pods on unknown nodes
        self.pod_node: dict[str, str] = {}        # pod key -> node name
        self.assumed: set[str] = set()
        self.namespace_labels: dict[str, dict] = {}
        self.listers: dict = {}
        self._list: list[NodeInfo] | None = None
        self._by_name: dict[str, NodeInfo] | None = None
        self._image_counts: dict[str, int] | None = None
        # How many cached pods have pod (anti-)affinity: lets plain cycles skip looking for them.
        self.affinity_pods = 0
        self.required_anti_pods = 0
        self.namespace_generation = 0
        self.tainted: set[str] = set()  # names of (known) nodes with taints
        self.scoring_terms: dict[tuple, list] = {}
        # Names of nodes that changed (node or pods), in order: lets plugins keep cluster-wide sums
        # up to date by revisiting only what changed. `change_base` is the index of change_log[0].
        self.change_log: list[str] = []
        self.change_base = 0
        self.log_epoch = 0

    def _changed(self, name: str) -> None:
        self.change_log.append(name)
        if len(self.change_log) > 100_000:
            self.change_base += len(self.change_log)
            self.change_log = []
            self.log_epoch += 1  # readers rebuild from scratch

    def _place(self, node: NodeInfo, info: PodInfo) -> None:
        if info.key in node.pods:
            self._unplace(node, info.key)
        node.add_pod(info)
        self._changed(node.name)
        self.affinity_pods += info.has_affinity
        self.required_anti_pods += bool(info.required_anti_affinity)
        self._index_terms(node.name, info, 1)

    def _unplace(self, node: NodeInfo, key: str) -> None:
        info = node.remove_pod(key)
        if info is not None:
            self._changed(node.name)
            self.affinity_pods -= info.has_affinity
            self.required_anti_pods -= bool(info.required_anti_affinity)
            self._index_terms(node.name, info, -1)

    def _index_terms(self, node_name: str, info: PodInfo, sign: int) -> None:
        """Cluster-wide: each distinct scoring term of existing pods -> how many pods carry it per node.
        A cycle then matches each distinct term once instead of visiting every node with such pods."""
        for key, t, amount in info.scoring_terms:
            entry = self.scoring_terms.get(key)
            if entry is None:
                entry = self.scoring_terms[key] = [t, amount, {}]
            per_node = entry[2]
            count = per_node.get(node_name, 0) + sign
            if count > 0:
                per_node[node_name] = count
            else:
                per_node.pop(node_name, None)
                if not per_node:
                    del self.scoring_terms[key]

    # ---- nodes ----------------------------------------------------------------

    def set_node(self, node: dict) -> None:
        name = node["metadata"]["name"]
        info = self.nodes.get(name)
        if info is None:
            self.nodes[name] = NodeInfo(node)
            self._list = None
            self._image_counts = None
        else:
            if info.node is None:
                self._list = None
            images = info.images
            info.set_node(node)
            if info.images != images:  # kubelet heartbeats mostly leave them alone
                self._image_counts = None
        if (node.get("spec") or {}).get("taints"):
            self.tainted.add(name)
        else:
            self.tainted.discard(name)
        self._changed(name)

    def remove_node(self, name: str) -> None:
        info = self.nodes.get(name)
        if info is None:
            return
        self._changed(name)
        self.tainted.discard(name)
        if info.pods:
            info.node = None  # keep the pods accounted until their deletes arrive
        else:
            del self.nodes[name]
        self._list = None
        self._image_counts = None

    # ---- pods -------------------------------------------------------------------

    def _node_for(self, name: str) -> NodeInfo:
        info = self.nodes.get(name)
        if info is None:
            info = self.nodes[name] = NodeInfo(name=name)
        return info

    def add_pod(self, pod: dict, known: PodInfo | None = None) -> None:
        """A pod the API says is on a node (add or update)."""
        key = f"{pod['metadata'].get('namespace', 'default')}/{pod['metadata']['name']}"
        if known is None:
            name = self.pod_node.get(key)
            known = self.nodes[name].pods.get(key) if name in self.nodes else None
        info = known.rebound(pod) if known is not None else PodInfo(pod)
        old_node = self.pod_node.get(info.key)
        if old_node and old_node != info.node_name:
            self.remove_pod_key(info.key)
        self.assumed.discard(info.key)
        self._place(self._node_for(info.node_name), info)
        self.pod_node[info.key] = info.node_name

    def remove_pod_key(self, key: str) -> None:
        name = self.pod_node.pop(key, None)
        self.assumed.discard(key)
        if name is None:
            return
        info = self.nodes.get(name)
        if info is not None:
            self._unplace(info, key)
            if info.node is None and not info.pods:
                del self.nodes[name]

    def assume(self, info: PodInfo, node_name: str) -> PodInfo:
        spec = dict(info.spec)
        spec["nodeName"] = node_name
        assumed = info.rebound({**info.pod, "spec": spec})
        self._place(self._node_for(node_name), assumed)
        self.pod_node[assumed.key] = node_name
        self.assumed.add(assumed.key)
        return assumed

    def forget(self, key: str) -> None:
        if key in self.assumed:
            self.remove_pod_key(key)

    # ---- what a scheduling cycle sees ----------------------------------------------

    def snapshot(self) -> Snapshot:
        if self._list is None:
            self._list = [n for n in self.nodes.values() if n.node is not None]
            self._by_name = {n.name: n for n in self._list}
        snap = Snapshot(self._list, self.namespace_labels, self.listers, by_name=self._by_name)
        snap.namespace_generation = self.namespace_generation
        snap.scoring_terms = self.scoring_terms
        snap.change_feed = self
        snap.tainted_nodes = len(self.tainted)
        if not self.affinity_pods:
            snap._with_affinity = []
        if not self.required_anti_pods:
            snap._with_required_anti = []
        if self._image_counts is None:
            counts: dict[str, int] = {}
            for n in self._list:
                for image in n.images:
                    counts[image] = counts.get(image, 0) + 1
            self._image_counts = counts
        snap._image_counts = self._image_counts
        return snap
