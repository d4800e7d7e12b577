"""A test-only stand-in for kubelets: marks pods Running and Ready through the status subresource.

No kubelet exists on this branch, so controller tests let this helper "run"
every pod whose labels match, optionally after a delay, the way a hollow
node would. It runs its own event loop in a thread and talks to the server
only through k8py.client, like any component.
"""

from __future__ import annotations

import asyncio
import datetime
import threading

from k8py.client import ApiError, Client, Informer


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def running_status(pod: dict, ready: bool = True) -> dict:
    stamp = _now()
    containers = (pod.get("spec") or {}).get("containers") or []
    cond = "True" if ready else "False"
    return {"status": {
        "phase": "Running", "hostIP": "127.0.0.1", "podIP": "10.42.0.9", "startTime": stamp,
        "conditions": [{"type": t, "status": s, "lastTransitionTime": stamp} for t, s in
                       (("PodScheduled", "True"), ("Initialized", "True"), ("ContainersReady", cond),
                        ("Ready", cond))],
        "containerStatuses": [{"name": c["name"], "image": c.get("image", ""), "imageID": "", "ready": ready,
                               "started": True, "restartCount": 0,
                               "state": {"running": {"startedAt": stamp}}} for c in containers]}}


class PodRunner:
    """Run (in a thread) until stop(); `paused` holds pods Pending, `delay` postpones readiness."""

    def __init__(self, kubeconfig, namespace: str, delay: float = 0.0):
        self.kubeconfig = str(kubeconfig)
        self.namespace = namespace
        self.delay = delay
        self.paused = False
        self.marked: set[str] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._stop: asyncio.Event | None = None
        self._task = None
        self._pending: set[asyncio.Task] = set()

    def start(self) -> PodRunner:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=30)
        return self

    async def _start(self) -> None:
        self.client = Client.from_kubeconfig(self.kubeconfig, user_agent="e2e-pod-runner")
        self.queue: asyncio.Queue = asyncio.Queue()
        self.informer = Informer(self.client, "v1", "pods", namespace=self.namespace)
        self.informer.add_handler(on_add=self.queue.put_nowait,
                                  on_update=lambda old, new: self.queue.put_nowait(new))
        await self.informer.start()
        self._task = asyncio.create_task(self._work())

    async def _work(self) -> None:
        while True:
            pod = await self.queue.get()
            if self.paused:
                continue
            name = pod["metadata"]["name"]
            if pod["metadata"].get("deletionTimestamp") or name in self.marked or \
                    (pod.get("status") or {}).get("phase") == "Running":
                continue
            self.marked.add(name)
            task = asyncio.create_task(self._run_pod(pod))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)

    async def _run_pod(self, pod: dict) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        api = self.client.resource("v1", "pods", self.namespace)
        try:
            await api.patch(pod["metadata"]["name"], running_status(pod), "merge", subresource="status")
        except ApiError:
            self.marked.discard(pod["metadata"]["name"])

    def resume(self) -> None:
        """Run everything that arrived while paused."""
        self.paused = False

        async def requeue():
            for pod in self.informer.list():
                self.queue.put_nowait(pod)
        asyncio.run_coroutine_threadsafe(requeue(), self._loop).result(timeout=10)

    def stop(self) -> None:
        async def shutdown():
            for task in [self._task, *self._pending]:
                if task:
                    task.cancel()
            await self.informer.stop()
            await self.client.close()
        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
