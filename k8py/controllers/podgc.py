"""The pod garbage collector: removes pods no kubelet will ever clean up.

Every 20 seconds, as upstream's PodGC:
* finished (Succeeded/Failed) pods beyond --terminated-pod-gc-threshold
  (12500), oldest first;
* pods bound to a node that no longer exists (checked twice: the node must
  be missing from the cache for a whole period and from a live GET), first
  marked Failed with a DisruptionTarget condition, then force-deleted;
* terminating pods on nodes that are NotReady and tainted
  `node.kubernetes.io/out-of-service` (the operator's "this node is dead"
  signal), force-deleted;
* terminating pods that were never scheduled, force-deleted.
"""

from __future__ import annotations

import logging

from k8py.apimachinery.meta import rfc3339
from k8py.client import ApiError
from k8py.controllers import podutil
from k8py.controllers.base import Controller

log = logging.getLogger("k8py.controllers.podgc")

CHECK_PERIOD = 20.0
TERMINATED_THRESHOLD = 12500
OUT_OF_SERVICE = "node.kubernetes.io/out-of-service"
TICK = "podgc"


class PodGCController(Controller):
    name = "podgc"
    workers = 1
    event_source = "pod-garbage-collector"

    async def setup(self) -> None:
        self.pods = self.ctx.informer("v1", "pods")
        self.nodes = self.ctx.informer("v1", "nodes")
        self.threshold = int(self.ctx.options.get("terminated_pod_gc_threshold", TERMINATED_THRESHOLD))
        self.period = float(self.ctx.options.get("podgc_period", CHECK_PERIOD))
        self.suspect_nodes: set[str] = set()  # missing at the last check: quarantined one period

    async def started(self) -> None:
        self.enqueue(TICK)

    async def sync(self, key: str) -> None:
        try:
            pods = self.pods.list()
            await self._gc_terminated(pods)
            await self._gc_orphaned(pods)
            await self._gc_terminating(pods)
        finally:
            self.requeue_after(TICK, self.period)

    async def _force_delete(self, pod: dict) -> None:
        api = self.client.resource("v1", "pods", pod["metadata"]["namespace"])
        try:
            await api.delete(pod["metadata"]["name"], grace_period_seconds=0,
                             preconditions={"uid": pod["metadata"]["uid"]})
        except ApiError as e:
            if not (e.not_found or e.conflict):
                raise

    async def _gc_terminated(self, pods: list[dict]) -> None:
        finished = [p for p in pods if podutil.is_terminal(p) and not p["metadata"].get("deletionTimestamp")]
        excess = len(finished) - self.threshold
        if excess <= 0:
            return
        finished.sort(key=lambda p: p["metadata"].get("creationTimestamp") or "")
        for pod in finished[:excess]:
            await self._force_delete(pod)

    async def _gc_orphaned(self, pods: list[dict]) -> None:
        missing = {p["spec"]["nodeName"] for p in pods
                   if (p.get("spec") or {}).get("nodeName") and self.nodes.get(p["spec"]["nodeName"]) is None}
        confirmed = set()
        for node in missing & self.suspect_nodes:
            try:
                await self.client.resource("v1", "nodes").get(node)
            except ApiError as e:
                if e.not_found:
                    confirmed.add(node)
        self.suspect_nodes = missing - confirmed
        for pod in pods:
            if (pod.get("spec") or {}).get("nodeName") in confirmed:
                await self._mark_failed(pod, "PodGC: node no longer exists")
                await self._force_delete(pod)

    async def _mark_failed(self, pod: dict, message: str) -> None:
        if podutil.is_terminal(pod):
            return
        stamp = rfc3339()
        conditions = [c for c in (pod.get("status") or {}).get("conditions") or []
                      if c.get("type") != "DisruptionTarget"]
        conditions.append({"type": "DisruptionTarget", "status": "True", "reason": "DeletionByPodGC",
                           "message": message, "lastTransitionTime": stamp})
        api = self.client.resource("v1", "pods", pod["metadata"]["namespace"])
        try:
            await api.patch(pod["metadata"]["name"], {"status": {"phase": "Failed", "conditions": conditions}},
                            "merge", subresource="status")
        except ApiError as e:
            if not e.not_found:
                raise

    async def _gc_terminating(self, pods: list[dict]) -> None:
        for pod in pods:
            if not pod["metadata"].get("deletionTimestamp"):
                continue
            node_name = (pod.get("spec") or {}).get("nodeName")
            if not node_name:
                await self._force_delete(pod)
                continue
            node = self.nodes.get(node_name)
            if node is not None and _out_of_service(node):
                await self._mark_failed(pod, "PodGC: node is out of service")
                await self._force_delete(pod)


def _out_of_service(node: dict) -> bool:
    ready = next((c for c in (node.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), None)
    not_ready = ready is None or ready.get("status") != "True"
    tainted = any(t.get("key") == OUT_OF_SERVICE for t in (node.get("spec") or {}).get("taints") or [])
    return not_ready and tainted
