"""Watch: newline-delimited JSON events over a chunked HTTP response.

Semantics follow upstream's cacher: no resourceVersion (or "0") starts with
a synthetic ADDED event per current object; a resourceVersion N resumes
with the events after N, or answers a 410 Expired ERROR event when N has
been compacted away. Bookmarks, when allowed, tell the client how far it has
got while nothing changes.
"""

from __future__ import annotations

import asyncio
import random
import time

import orjson
from aiohttp import web

from k8py.api import conversion
from k8py.apimachinery import errors
from k8py.apiserver import tables
from k8py.storage.interface import CompactedError

BOOKMARK_INTERVAL = 10.0  # seconds of quiet between bookmarks
# Upstream's default for a watch without timeoutSeconds: 30 to 60 minutes.
DEFAULT_TIMEOUT_RANGE = (1800, 3600)
INITIAL_EVENTS_END = "k8s.io/initial-events-end"


def _timeout(req) -> float:
    raw = req.query.get("timeoutSeconds")
    if raw:
        try:
            return max(float(raw), 0.0)
        except ValueError:
            raise errors.bad_request(f'invalid value for timeoutSeconds: "{raw}"') from None
    return float(random.randint(*DEFAULT_TIMEOUT_RANGE))


class EventWriter:
    """Encodes watch events in the client's form, once per event."""

    def __init__(self, req):
        self.req = req
        self.resource = req.resource
        self.table = req.accept.table
        self.first_table = True

    def encode(self, event_type: str, cached) -> bytes:
        resource = self.resource
        if not self.table and not resource.stores_elsewhere:
            return b'{"type":"' + event_type.encode() + b'","object":' + cached.json + b"}\n"
        obj = conversion.from_storage(resource, cached.obj)
        if self.table:
            obj = tables.table(resource.group, resource.kind, [obj],
                               include=self.req.query.get("includeObject", "Metadata"),
                               version=self.req.accept.table_version, with_columns=self.first_table)
            self.first_table = False
        return orjson.dumps({"type": event_type, "object": obj}) + b"\n"

    def bookmark(self, revision: int, initial_end: bool = False) -> bytes:
        m = {"resourceVersion": str(revision), "creationTimestamp": None}
        if initial_end:
            m["annotations"] = {INITIAL_EVENTS_END: "true"}
        obj = {"kind": self.resource.kind, "apiVersion": self.resource.api_version, "metadata": m}
        return orjson.dumps({"type": "BOOKMARK", "object": obj}) + b"\n"

    @staticmethod
    def error(err: errors.StatusError) -> bytes:
        return orjson.dumps({"type": "ERROR", "object": err.to_status()}) + b"\n"


async def serve_watch(req, labels, fields) -> web.StreamResponse:
    objects = req.objects
    matches = objects.matcher(labels, fields)
    rv = req.query.get("resourceVersion") or ""
    send_initial = req.query.get("sendInitialEvents") == "true"
    initial = send_initial or rv in ("", "0")
    bookmarks = req.query.get("allowWatchBookmarks") == "true"
    deadline = time.monotonic() + _timeout(req)
    prefix = objects.resource.key_prefix(req.namespace or None)

    response = web.StreamResponse(status=200, headers={"Content-Type": "application/json",
                                                        "Cache-Control": "no-cache, private"})
    response.enable_chunked_encoding()
    writer = EventWriter(req)
    try:
        watcher = objects.cache.watch(prefix, int(rv or 0), initial=initial, filter=matches)
    except CompactedError as err:
        await response.prepare(req.http)
        await response.write(writer.error(errors.expired(
            f"too old resource version: {rv} ({err.revision})")))
        return response
    await response.prepare(req.http)
    try:
        await _pump(watcher, response, writer, deadline, bookmarks, send_initial and bookmarks)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    except CompactedError as err:
        await response.write(writer.error(errors.expired(f"too old resource version: {rv} ({err.revision})")))
    finally:
        watcher.close()
    return response


async def _pump(watcher, response, writer, deadline, bookmarks, initial_end_bookmark) -> None:
    waiting_initial_end = initial_end_bookmark
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        wait = min(left, BOOKMARK_INTERVAL) if bookmarks else left
        if waiting_initial_end:
            wait = 0
        event = await watcher.next(timeout=wait)
        if event is None:
            if watcher.closed:
                return
            if waiting_initial_end:
                await response.write(writer.bookmark(watcher.revision, initial_end=True))
                waiting_initial_end = False
            elif bookmarks:
                await response.write(writer.bookmark(watcher.revision))
            continue
        await response.write(writer.encode(event.type, event.obj))
