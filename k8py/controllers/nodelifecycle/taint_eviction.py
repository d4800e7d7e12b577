"""The taint eviction controller: NoExecute taints evict the pods that don't tolerate them.

A pod on a node with a NoExecute taint it does not tolerate is deleted at
once. A pod that tolerates every such taint, some only for tolerationSeconds,
is deleted when the shortest of those runs out (counted from when we first
saw it tainted), unless the taints go away first. Tolerating without
tolerationSeconds means staying forever. As upstream, the pod gets a
DisruptionTarget condition and a TaintManagerEviction event before deletion.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time

from k8py.client import ApiError, EventRecorder, Informer
from k8py.api.tolerations import tolerated_by

log = logging.getLogger("k8py.controllers.taint-eviction")

COMPONENT = "taint-eviction-controller"


def no_execute_taints(node: dict | None) -> list[dict]:
    return [t for t in ((node or {}).get("spec") or {}).get("taints") or [] if t.get("effect") == "NoExecute"]


def eviction_delay(pod: dict, taints: list[dict]) -> float | None:
    """0 = evict now; seconds = evict after; None = may stay."""
    if not taints:
        return None
    tolerations = [t for t in (pod.get("spec") or {}).get("tolerations") or []
                   if not t.get("effect") or t.get("effect") == "NoExecute"]
    used = []
    for taint in taints:
        # Like upstream, the first toleration that matches a taint is the one that counts.
        match = next((t for t in tolerations if tolerated_by(taint, [t])), None)
        if match is None:
            return 0.0
        used.append(match)
    seconds = [t["tolerationSeconds"] for t in used if t.get("tolerationSeconds") is not None]
    if not seconds:
        return None
    return max(float(min(seconds)), 0.0)


class TaintEvictionController:
    def __init__(self, client):
        self.client = client
        self.nodes = Informer(client, "v1", "nodes")
        self.pods = Informer(client, "v1", "pods")
        self.pods.add_index("node", lambda p: [(p.get("spec") or {}).get("nodeName") or ""])
        self.recorder = EventRecorder(client, component=COMPONENT)
        # pod key -> (when the countdown started, when it fires, timer handle)
        self.scheduled: dict[str, tuple[float, float, asyncio.TimerHandle]] = {}
        self._tasks: set[asyncio.Task] = set()

    async def run(self) -> None:
        self.nodes.add_handler(lambda n: self._node_changed(n), lambda o, n: self._node_changed(n),
                               lambda n: self._node_gone(n))
        self.pods.add_handler(lambda p: self._pod_changed(p), lambda o, p: self._pod_changed(p),
                              lambda p: self._cancel(Informer.key(p), quiet=True))
        await self.nodes.start()
        await self.pods.start()
        try:
            await asyncio.Event().wait()
        finally:
            for _, _, handle in self.scheduled.values():
                handle.cancel()
            await self.pods.stop()
            await self.nodes.stop()
            await self.recorder.close()

    def _node_changed(self, node: dict) -> None:
        for pod in self.pods.by_index("node", node["metadata"]["name"]):
            self._pod_changed(pod, node)

    def _node_gone(self, node: dict) -> None:
        for pod in self.pods.by_index("node", node["metadata"]["name"]):
            self._cancel(Informer.key(pod), quiet=True)

    def _pod_changed(self, pod: dict, node: dict | None = None) -> None:
        key = Informer.key(pod)
        node_name = (pod.get("spec") or {}).get("nodeName")
        if not node_name or pod["metadata"].get("deletionTimestamp"):
            self._cancel(key, quiet=True)
            return
        node = node or self.nodes.get(node_name)
        delay = eviction_delay(pod, no_execute_taints(node))
        if delay is None:
            self._cancel(key)
            return
        now = time.monotonic()
        existing = self.scheduled.get(key)
        if existing is not None:
            started, fires, handle = existing
            if started + delay >= fires:
                return  # the earlier countdown still decides
            handle.cancel()
            now = started
        fire_at = now + delay
        handle = asyncio.get_running_loop().call_at(
            asyncio.get_running_loop().time() + max(fire_at - time.monotonic(), 0), self._fire, key)
        self.scheduled[key] = (now, fire_at, handle)

    def _cancel(self, key: str, quiet: bool = False) -> None:
        existing = self.scheduled.pop(key, None)
        if existing is None:
            return
        existing[2].cancel()
        pod = self.pods.get(key)
        if not quiet and pod is not None:
            self.recorder.event(pod, "Normal", "TaintManagerEviction", f"Cancelling deletion of Pod {key}")

    def _fire(self, key: str) -> None:
        self.scheduled.pop(key, None)
        task = asyncio.create_task(self._evict(key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _evict(self, key: str) -> None:
        pod = self.pods.get(key)
        if pod is None:
            return
        namespace, name = key.split("/", 1)
        log.info("evicting pod %s: its node has a NoExecute taint it does not tolerate", key)
        self.recorder.event(pod, "Normal", "TaintManagerEviction", f"Marking for deletion Pod {key}")
        api = self.client.resource("v1", "pods", namespace)
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        condition = {"type": "DisruptionTarget", "status": "True", "lastTransitionTime": stamp,
                     "reason": "DeletionByTaintManager", "message": "Taint manager: deleting due to NoExecute taint"}
        try:
            await api.patch(name, {"status": {"conditions": [condition]}}, patch_type="strategic",
                            subresource="status")
            await api.delete(name)
        except ApiError as e:
            if not e.not_found:
                log.warning("could not evict %s: %s", key, e)


class TaintEvictionManaged:
    """How the controller-manager runs it (`--controllers` name: taint-eviction-controller)."""
    name = COMPONENT

    def __init__(self, ctx):
        self.ctx = ctx
        self.client = ctx.client    # the manager may give it an identity of its own

    async def run(self) -> None:
        await TaintEvictionController(self.client).run()
