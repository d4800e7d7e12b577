"""Record core/v1 Events about objects, the way client-go's recorder does.

Events are written in the background so a controller never waits on them, and
a repeat of the same (object, type, reason, message) bumps `count` and
`lastTimestamp` on the existing Event instead of creating another, which is
what `kubectl describe` shows as "(x3 over 2m)".
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import socket
import time

import orjson

from k8py.client.rest import ApiError, Client

log = logging.getLogger("k8py.client.events")

MAX_PENDING = 1000


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def object_reference(obj: dict) -> dict:
    meta = obj.get("metadata") or {}
    ref = {"kind": obj.get("kind", ""), "apiVersion": obj.get("apiVersion", ""), "name": meta.get("name", ""),
           "uid": meta.get("uid", ""), "resourceVersion": meta.get("resourceVersion", "")}
    if meta.get("namespace"):
        ref["namespace"] = meta["namespace"]
    return {k: v for k, v in ref.items() if v}


class EventRecorder:
    def __init__(self, client: Client, component: str, host: str | None = None):
        self.events = client.resource("v1", "events")
        self.component = component
        self.host = host
        self._seen: dict[tuple, dict] = {}
        self._pending: asyncio.Queue | None = None
        self._worker: asyncio.Task | None = None

    def event(self, obj: dict, type_: str, reason: str, message: str, field_path: str | None = None) -> None:
        """Queue an event; never blocks and never raises."""
        if self._pending is None:
            self._pending = asyncio.Queue(MAX_PENDING)
            self._worker = asyncio.create_task(self._write_all(), name=f"events {self.component}")
        ref = object_reference(obj)
        if field_path:
            ref["fieldPath"] = field_path
        try:
            self._pending.put_nowait((ref, type_, reason, message))
        except asyncio.QueueFull:
            log.warning("dropping event %s %s for %s: too many pending", type_, reason, ref.get("name"))

    async def flush(self) -> None:
        """Wait until every queued event is written (tests, shutdown)."""
        if self._pending is not None:
            await self._pending.join()

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            # Let the writer see its cancellation before the queue it uses goes away.
            await asyncio.gather(self._worker, return_exceptions=True)
            self._worker = None
            self._pending = None

    async def _write_all(self) -> None:
        while True:
            item = await self._pending.get()
            try:
                await self._write(*item)
            except ApiError as e:
                log.debug("event %s not recorded: %s", item[2], e)
            except Exception:
                log.exception("event %s not recorded", item[2])
            finally:
                self._pending.task_done()

    async def _write(self, ref: dict, type_: str, reason: str, message: str) -> None:
        namespace = ref.get("namespace", "default")
        identity = (ref.get("uid"), ref.get("fieldPath"), type_, reason, message)
        stamp = now_rfc3339()
        existing = self._seen.get(identity)
        if existing is not None:
            patch = {"count": existing["count"] + 1, "lastTimestamp": stamp}
            try:
                existing.update(await self.events.client.request(
                    "PATCH", self.events.path(existing["metadata"]["name"], namespace=namespace), orjson.dumps(patch),
                    content_type="application/merge-patch+json"))
                return
            except ApiError as e:
                if e.code != 404:
                    raise
        body = {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{ref.get('name', 'unknown')}.{time.time_ns():x}", "namespace": namespace},
            "involvedObject": ref, "reason": reason, "message": message, "type": type_,
            "source": {"component": self.component, **({"host": self.host} if self.host else {})},
            "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
            "reportingComponent": self.component, "reportingInstance": self.host or socket.gethostname(),
        }
        created = await self.events.create(body)
        if len(self._seen) > 4096:  # keep the aggregation cache bounded
            self._seen.pop(next(iter(self._seen)))
        self._seen[identity] = created

