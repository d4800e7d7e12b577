"""The scheduling queue: activeQ, backoffQ and the unschedulable pods.

- activeQ pops the most important pod first (PrioritySort: priority, then age).
- A pod that failed waits out a back-off (1s doubling to 10s) in backoffQ.
- A pod no node could take sits in `unschedulable` until a cluster event that
  could help one of the plugins that rejected it (a node added, a pod
  deleted, ...) moves it on; after 5 minutes it is retried anyway.
- An event during a pod's own scheduling attempt sends it to backoffQ rather
  than `unschedulable`, so the change it may have missed is not lost.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time

from k8py.scheduler.podinfo import PodInfo

INITIAL_BACKOFF = 1.0
MAX_BACKOFF = 10.0
UNSCHEDULABLE_TIMEOUT = 300.0

# Cluster events, and which plugins' rejections each may undo (upstream's EventsToRegister).
NODE_ADD, NODE_UPDATE, NODE_DELETE = "Node/Add", "Node/Update", "Node/Delete"
POD_ADD, POD_UPDATE, POD_DELETE = "AssignedPod/Add", "AssignedPod/Update", "AssignedPod/Delete"
NAMESPACE_CHANGE, STORAGE_CHANGE = "Namespace/Update", "Storage/Update"
INTERESTED = {
    NODE_ADD: {"NodeUnschedulable", "NodeName", "TaintToleration", "NodeAffinity", "NodePorts", "NodeResourcesFit",
               "PodTopologySpread", "InterPodAffinity", "VolumeBinding"},
    NODE_UPDATE: {"NodeUnschedulable", "TaintToleration", "NodeAffinity", "NodeResourcesFit", "PodTopologySpread",
                  "InterPodAffinity", "VolumeBinding"},
    NODE_DELETE: {"PodTopologySpread"},
    POD_ADD: {"PodTopologySpread", "InterPodAffinity"},
    POD_UPDATE: {"PodTopologySpread", "InterPodAffinity", "NodeResourcesFit"},
    POD_DELETE: {"NodePorts", "NodeResourcesFit", "PodTopologySpread", "InterPodAffinity", "DefaultPreemption"},
    NAMESPACE_CHANGE: {"InterPodAffinity"},
    STORAGE_CHANGE: {"VolumeBinding"},
}


class QueuedPod:
    __slots__ = ("info", "timestamp", "attempts", "unschedulable_plugins", "backoff_until", "cycle")

    def __init__(self, info: PodInfo, now: float):
        self.info = info
        self.timestamp = now          # when it entered the queue: the PrioritySort tiebreak
        self.attempts = 0
        self.unschedulable_plugins: set[str] = set()
        self.backoff_until = 0.0
        self.cycle = 0

    @property
    def key(self) -> str:
        return self.info.key


class SchedulingQueue:
    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self._active: list = []            # heap of (-priority, timestamp, seq, key)
        self._backoff: list = []           # heap of (backoff_until, seq, key)
        self._pods: dict[str, QueuedPod] = {}  # every pod the queue knows, wherever it is
        self._where: dict[str, str] = {}   # key -> "active" | "backoff" | "unschedulable" | "in-flight"
        self._unschedulable: set[str] = set()
        self._seq = itertools.count()
        self._ready = asyncio.Event()
        self.scheduling_cycle = 0
        self.move_request_cycle = -1
        self.closed = False

    # ---- feeding the queue ----------------------------------------------------

    def add(self, info: PodInfo) -> None:
        """A new pending pod (or one we should try again now)."""
        qp = self._pods.get(info.key)
        if qp is None:
            qp = self._pods[info.key] = QueuedPod(info, self.clock())
        else:
            qp.info = info
        if self._where.get(info.key) in ("active", "in-flight"):
            return
        self._to_active(qp)

    def update(self, info: PodInfo, spec_changed: bool) -> None:
        qp = self._pods.get(info.key)
        if qp is None:
            self.add(info)
            return
        qp.info = info
        where = self._where.get(info.key)
        if where == "unschedulable" and spec_changed:
            self._move(qp)

    def delete(self, key: str) -> None:
        self._pods.pop(key, None)
        self._where.pop(key, None)  # heap entries for it are skipped lazily
        self._unschedulable.discard(key)

    def __contains__(self, key: str) -> bool:
        return key in self._pods

    # ---- the scheduler's side ---------------------------------------------------

    async def pop(self) -> QueuedPod:
        while True:
            self.flush_backoff()
            while self._active:
                _, _, _, key = heapq.heappop(self._active)
                if self._where.get(key) == "active":
                    qp = self._pods[key]
                    self._where[key] = "in-flight"
                    self.scheduling_cycle += 1
                    qp.cycle = self.scheduling_cycle
                    qp.attempts += 1
                    return qp
            if self.closed:
                raise asyncio.CancelledError()
            self._ready.clear()
            wait = self._next_backoff_in()
            try:
                await asyncio.wait_for(self._ready.wait(), timeout=wait)
            except asyncio.TimeoutError:
                pass

    def done(self, key: str) -> None:
        """The pod was scheduled (assumed): the queue forgets it."""
        if self._where.get(key) == "in-flight":
            self.delete(key)

    def requeue_unschedulable(self, qp: QueuedPod, plugins: set[str]) -> None:
        """A pod no node could take."""
        if qp.key not in self._pods:
            return  # deleted while we were scheduling it
        qp.unschedulable_plugins = set(plugins)
        qp.backoff_until = self.clock() + self.backoff_duration(qp)
        if self.move_request_cycle >= qp.cycle:
            self._to_backoff(qp)
        else:
            self._where[qp.key] = "unschedulable"
            self._unschedulable.add(qp.key)
            qp.timestamp = self.clock()

    def requeue_error(self, qp: QueuedPod) -> None:
        """An error (API failure, bind rejected): retry after back-off."""
        if qp.key not in self._pods:
            return
        qp.unschedulable_plugins = set()
        qp.backoff_until = self.clock() + self.backoff_duration(qp)
        self._to_backoff(qp)

    def retry_later(self, info: PodInfo) -> None:
        """A pod whose binding failed after the queue let go of it: back in, after back-off."""
        qp = self._pods.get(info.key)
        if qp is None:
            qp = self._pods[info.key] = QueuedPod(info, self.clock())
            qp.attempts = 1
        qp.info = info
        self.requeue_error(qp)

    @staticmethod
    def backoff_duration(qp: QueuedPod) -> float:
        return min(INITIAL_BACKOFF * 2 ** max(qp.attempts - 1, 0), MAX_BACKOFF)

    # ---- cluster events ---------------------------------------------------------

    def on_event(self, event: str) -> None:
        """Move unschedulable pods whose rejecting plugins care about this event."""
        self.move_request_cycle = self.scheduling_cycle
        if not self._unschedulable:
            return
        interested = INTERESTED.get(event, set())
        for key in list(self._unschedulable):
            qp = self._pods[key]
            if not qp.unschedulable_plugins or qp.unschedulable_plugins & interested:
                self._move(qp)

    def flush_unschedulable(self) -> None:
        """Give pods stuck longer than 5 minutes another try, event or not."""
        now = self.clock()
        for key in list(self._unschedulable):
            if now - self._pods[key].timestamp >= UNSCHEDULABLE_TIMEOUT:
                self._move(self._pods[key])

    def flush_backoff(self) -> None:
        now = self.clock()
        while self._backoff and self._backoff[0][0] <= now:
            _, _, key = heapq.heappop(self._backoff)
            if self._where.get(key) == "backoff":
                self._to_active(self._pods[key])

    # ---- internals ------------------------------------------------------------------

    def _move(self, qp: QueuedPod) -> None:
        self._unschedulable.discard(qp.key)
        if qp.backoff_until > self.clock():
            self._to_backoff(qp)
        else:
            self._to_active(qp)

    def _to_active(self, qp: QueuedPod) -> None:
        self._unschedulable.discard(qp.key)
        self._where[qp.key] = "active"
        heapq.heappush(self._active, (-qp.info.priority, qp.timestamp, next(self._seq), qp.key))
        self._ready.set()

    def _to_backoff(self, qp: QueuedPod) -> None:
        self._unschedulable.discard(qp.key)
        self._where[qp.key] = "backoff"
        heapq.heappush(self._backoff, (qp.backoff_until, next(self._seq), qp.key))
        self._ready.set()

    def _next_backoff_in(self) -> float | None:
        while self._backoff and self._where.get(self._backoff[0][2]) != "backoff":
            heapq.heappop(self._backoff)
        if not self._backoff:
            return None
        return max(self._backoff[0][0] - self.clock(), 0.001)

    def counts(self) -> dict[str, int]:
        out = {"active": 0, "backoff": 0, "unschedulable": 0, "in-flight": 0}
        for where in self._where.values():
            out[where] += 1
        return out

    def pending(self) -> list[QueuedPod]:
        return list(self._pods.values())

    def close(self) -> None:
        self.closed = True
        self._ready.set()
