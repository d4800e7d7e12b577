"""etcd's watch, turned into the Store's commits.

CommitFollower keeps one watch stream on the whole keyspace, from the
revision the store opened at, with previous values (etcd's prev_kv) so a
deletion says what was deleted. Every response is handed to the store in
revision order; this is how the watch caches hear of every commit, our own
and those made behind our back (`etcdctl del`, another API server). When the
stream breaks (member down, network) it is opened again at the next member,
from the revision after the last one delivered, so nothing is skipped or
delivered twice.

read_history answers Store.events_since with a short-lived watch that starts
in the past and ends once it reaches the revision the store has delivered.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

import grpc
from aetcd import rpc

from k8py.storage.etcd.connection import Connection
from k8py.storage.interface import KV, CompactedError, Event

log = logging.getLogger(__name__)

ALL_KEYS = b"\0"  # key and range_end both "\0": every key (etcd's convention)
HISTORY_TIMEOUT_S = 30.0


def decode_key(key: bytes) -> str:
    return key.decode("utf-8", "surrogateescape")


def to_kv(kv) -> KV:
    return KV(decode_key(kv.key), kv.value, kv.mod_revision, kv.create_revision)


def to_event(event) -> Event:
    """etcd's event as the Store's: a deletion carries the last value."""
    prev = to_kv(event.prev_kv) if event.HasField("prev_kv") else None
    if event.type == rpc.Event.EventType.DELETE:
        kv = event.kv
        last = prev.value if prev is not None else b""
        create = prev.create_revision if prev is not None else 0
        return Event("DELETE", KV(decode_key(kv.key), last, kv.mod_revision, create), prev)
    kv = to_kv(event.kv)
    if event.kv.version == 1:  # created (again): the key's earlier life is not its previous version
        prev = None
    return Event("PUT", kv, prev)


def _create_request(start_revision: int, key: bytes = ALL_KEYS, range_end: bytes = ALL_KEYS):
    return rpc.WatchRequest(create_request=rpc.WatchCreateRequest(
        key=key, range_end=range_end, start_revision=start_revision, prev_kv=True))


class CommitFollower:
    def __init__(self, connection: Connection, after: int,
                 deliver: Callable[[list[Event]], None],
                 resync: Callable[[int], Awaitable[int]]):
        self._connection = connection
        self._after = after  # every revision up to here is delivered
        self._deliver = deliver
        self._resync = resync
        self._task: asyncio.Task | None = None
        self.connected = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="etcd-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _run(self) -> None:
        delay = 0.05
        while True:
            endpoint = self._connection.endpoint
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except grpc.aio.AioRpcError as err:
                self.connected.clear()
                self._connection.failed(endpoint, err)
                log.warning("etcd watch stream to %s broke (%s); resuming after revision %d",
                            endpoint, err.details(), self._after)
            except Exception:
                self.connected.clear()
                log.exception("etcd watch stream failed; resuming after revision %d", self._after)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def _follow(self) -> None:
        call = rpc.WatchStub(self._connection.channel()).Watch()
        try:
            await call.write(_create_request(self._after + 1))
            async for response in call:
                if response.compact_revision:
                    await self._history_lost(response.compact_revision)
                    return  # the server cancelled this watch: open a new one
                if response.created:
                    self.connected.set()
                if response.canceled:
                    raise RuntimeError(f"etcd cancelled the watch: {response.cancel_reason}")
                if response.events:
                    events = [to_event(e) for e in response.events]
                    self._after = events[-1].kv.mod_revision
                    self._deliver(events)
        finally:
            call.cancel()

    async def _history_lost(self, compact_revision: int) -> None:
        """The revisions after our position were compacted while the stream
        was down, so those commits cannot be replayed: the store compares
        the keyspace as it is now with what it last delivered and delivers
        the difference instead; we go on after the revision of that read."""
        log.warning("etcd compacted to revision %d before the watch caught up from %d; resyncing",
                    compact_revision, self._after + 1)
        self._after = max(self._after, await self._resync(compact_revision))


async def read_history(connection: Connection, prefix: bytes, range_end: bytes, after: int,
                       through: int) -> list[Event]:
    """Events under [prefix, range_end) with revision in (after, through].

    The watch covers the whole keyspace and is filtered here: the event at
    `through` then certainly arrives (every revision changes some key),
    which is how we know the history is complete.
    """
    if through <= after:
        return []
    call = rpc.WatchStub(connection.channel()).Watch()
    events: list[Event] = []
    try:
        async with asyncio.timeout(HISTORY_TIMEOUT_S):
            await call.write(_create_request(after + 1))
            async for response in call:
                if response.compact_revision:
                    raise CompactedError(response.compact_revision, after)
                if response.canceled:
                    raise RuntimeError(f"etcd cancelled the watch: {response.cancel_reason}")
                for raw in response.events:
                    if raw.kv.mod_revision <= through and prefix <= raw.kv.key and (
                            range_end == ALL_KEYS or raw.kv.key < range_end):
                        events.append(to_event(raw))
                # A revision's events come in one response: this one completes `through`.
                if response.events and response.events[-1].kv.mod_revision >= through:
                    return events
        raise RuntimeError("etcd closed the watch stream while reading history")
    finally:
        call.cancel()
