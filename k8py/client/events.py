"""Record core/v1 Events about objects, the way client-go's recorder does.

Events are written in the background so a controller never waits on them.
Before writing, each event goes through the EventCorrelator
(event_correlator.py), as upstream: a repeat of the same event bumps `count`
and `lastTimestamp` on the existing Event (what `kubectl describe` shows as
"(x3 over 2m)"), many similar events about one object are combined into one,
and a token bucket per (source, object) bounds how many writes one object's
events may cost. Like upstream's broadcaster, at most MAX_PENDING writes
wait; an event arriving beyond that is dropped before it is correlated (so
the correlator never counts what was not written), with one warning per
burst of drops. Up to WRITERS writes
are in flight at once (one Event's writes always in order).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import socket
import time

import orjson

from k8py.client.event_correlator import EventCorrelator, Written
from k8py.client.rest import ApiError, Client

log = logging.getLogger("k8py.client.events")

MAX_PENDING = 1000   # writes waiting, as upstream's broadcaster queue
WRITERS = 4          # writes in flight at once


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
    def __init__(self, client: Client, component: str, host: str | None = None,
                 correlator: EventCorrelator | None = None):
        self.events = client.resource("v1", "events")
        self.component = component
        self.host = host
        self.instance = host or socket.gethostname()
        self.correlator = correlator or EventCorrelator()
        # WRITERS queues, each written in order by one task: all writes of one Event (its create,
        # then its count patches) go to the same queue, so they land in order, while events about
        # different objects (a scheduler's 1,000 Scheduled events) are written side by side.
        self._queues: list[asyncio.Queue] = []
        self._workers: list[asyncio.Task] = []
        self._pending = 0
        self._dropped = 0    # dropped since the queue last had room (warned once per burst)

    def event(self, obj: dict, type_: str, reason: str, message: str, field_path: str | None = None) -> None:
        """Queue an event; never blocks and never raises."""
        if not self._queues:
            self._queues = [asyncio.Queue() for _ in range(WRITERS)]
            self._workers = [asyncio.create_task(self._write_all(q), name=f"events {self.component} {i}")
                             for i, q in enumerate(self._queues)]
        ref = object_reference(obj)
        if self._pending >= MAX_PENDING:
            if not self._dropped:
                log.warning("dropping events: %d writes pending (first dropped: %s %s for %s)",
                            self._pending, type_, reason, ref.get("name"))
            self._dropped += 1
            return
        if self._dropped:
            log.warning("dropped %d events while the queue was full", self._dropped)
            self._dropped = 0
        if field_path:
            ref["fieldPath"] = field_path
        write = self.correlator.correlate(self._new_event(ref, type_, reason, message))
        if write is None:
            return  # the spam filter's call, as upstream
        self._pending += 1
        self._queues[hash(write.event["metadata"]["name"]) % len(self._queues)].put_nowait(write)

    async def flush(self) -> None:
        """Wait until every queued event is written (tests, shutdown)."""
        for queue in self._queues:
            await queue.join()

    async def close(self) -> None:
        for worker in self._workers:
            worker.cancel()
        # Let the writers see their cancellation before the queues they use go away.
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers, self._queues, self._pending = [], [], 0

    def _new_event(self, ref: dict, type_: str, reason: str, message: str) -> dict:
        stamp = now_rfc3339()
        return {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{ref.get('name', 'unknown')}.{time.time_ns():x}",
                         "namespace": ref.get("namespace", "default")},
            "involvedObject": ref, "reason": reason, "message": message, "type": type_,
            "source": {"component": self.component, **({"host": self.host} if self.host else {})},
            "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1,
            "reportingComponent": self.component, "reportingInstance": self.instance,
        }

    async def _write_all(self, queue: asyncio.Queue) -> None:
        while True:
            write = await queue.get()
            try:
                await self._write(write)
            except ApiError as e:
                self.correlator.forget(write)
                log.debug("event %s not recorded: %s", write.event["reason"], e)
            except Exception:
                self.correlator.forget(write)
                log.exception("event %s not recorded", write.event["reason"])
            finally:
                self._pending -= 1
                queue.task_done()

    async def _write(self, write: Written) -> None:
        event = write.event
        if write.patch is not None:
            try:
                await self.events.client.request(
                    "PATCH", self.events.path(event["metadata"]["name"], namespace=event["metadata"]["namespace"]),
                    orjson.dumps(write.patch), content_type="application/merge-patch+json")
                return
            except ApiError as e:
                if e.code != 404:
                    raise
            # The Event went away (expired, deleted): write it anew with the count so far.
        body = {**event, "metadata": {k: v for k, v in event["metadata"].items() if k != "resourceVersion"}}
        await self.events.create(body)
