"""The Store on etcd v3.

Every conditional write is one etcd transaction whose compare is the
condition (create: the key's create_revision is 0; update/delete: the key
exists, or its mod_revision is the expected one), so the check and the write
are atomic in etcd as they are in SQLite's writer. A failed compare reads the
key in the same transaction, so the loser learns what is there now. etcd's
revisions are the resourceVersions.

A write returns only after the watch (follower.py) has delivered its
revision to the subscribers: the watch caches hold a write before its client
hears it succeeded, as with SQLite. Commits made by others (etcdctl, other
API servers) arrive the same way.

Compaction is etcd's own (the Compact RPC). Which revision etcd is compacted
to is not something etcd reports, so at open we find it by reading the
keyspace at ever later revisions (a binary search; a compacted revision
refuses the read) and then track our own and the watch's reports.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging

import grpc
from aetcd import rpc

from k8py.storage.etcd.connection import Connection, EtcdConfig, translate
from k8py.storage.etcd.follower import ALL_KEYS, CommitFollower, read_history, to_kv
from k8py.storage.interface import (KV, CompactedError, Event, KeyExistsError, KeyNotFoundError,
                                    RevisionConflictError, Store, StoreClosedError, StoreError, check_key,
                                    check_value, prefix_end)

log = logging.getLogger(__name__)

# How long a writer waits for the watch to bring its own commit back before
# answering anyway (the watch is reconnecting; the write did commit).
WATCH_LAG_TIMEOUT_S = 30.0

_Compare = rpc.Compare
EQUAL, GREATER = _Compare.CompareResult.EQUAL, _Compare.CompareResult.GREATER
CREATE, MOD = _Compare.CompareTarget.CREATE, _Compare.CompareTarget.MOD


def _key_bytes(key: str) -> bytes:
    return check_key(key).encode("utf-8", "surrogateescape")


def _range(prefix: str) -> tuple[bytes, bytes]:
    if not prefix:
        return ALL_KEYS, ALL_KEYS
    return _key_bytes(prefix), _key_bytes(prefix_end(prefix))


def _exists(key: bytes, expected: int | None):
    if expected is None:
        return _Compare(key=key, target=CREATE, result=GREATER, create_revision=0)
    return _Compare(key=key, target=MOD, result=EQUAL, mod_revision=expected)


class EtcdStore(Store):
    def __init__(self, config: EtcdConfig):
        super().__init__()
        self.config = config
        self._connection = Connection(config)
        self._waiters: list[tuple[int, int, asyncio.Future]] = []  # heap of (revision, seq, future)
        self._seq = itertools.count()
        # key -> mod revision of every key as delivered: what a resync compares etcd with.
        self._mod_revisions: dict[str, int] = {}
        self._follower: CommitFollower | None = None
        self._closing = False

    async def _start(self) -> None:
        response = await self._call("KV", "Range", rpc.RangeRequest(
            key=ALL_KEYS, range_end=ALL_KEYS, keys_only=True))
        self._revision = response.header.revision
        self._mod_revisions = {to_kv(kv).key: kv.mod_revision for kv in response.kvs}
        self._compacted = await self._find_compacted(self._revision)
        self._follower = CommitFollower(self._connection, self._revision, self._deliver, self._resync)
        self._follower.start()

    async def _find_compacted(self, current: int) -> int:
        async def readable(revision: int) -> bool:
            try:
                await self._connection.call("KV", "Range", rpc.RangeRequest(
                    key=ALL_KEYS, range_end=ALL_KEYS, count_only=True, revision=revision))
                return True
            except grpc.aio.AioRpcError as err:
                if "compacted" in (err.details() or ""):
                    return False
                raise translate(err) from None
        if await readable(1):
            return 0
        low, high = 1, current  # low is compacted away, high is readable
        while high - low > 1:
            middle = (low + high) // 2
            if await readable(middle):
                high = middle
            else:
                low = middle
        return high

    async def _call(self, service: str, method: str, request, write: bool = False):
        if self._closing:
            raise StoreClosedError("store is closed")
        try:
            return await self._connection.call(service, method, request, write=write)
        except grpc.aio.AioRpcError as err:
            raise translate(err, self._compacted) from None

    # ---- commits from the watch -------------------------------------------

    def _deliver(self, events: list[Event]) -> None:
        self._revision = max(self._revision, events[-1].kv.mod_revision)
        for event in events:
            if event.type == "DELETE":
                self._mod_revisions.pop(event.kv.key, None)
            else:
                self._mod_revisions[event.kv.key] = event.kv.mod_revision
        for callback in self._subscribers:
            try:
                callback(events)
            except Exception:
                log.exception("store subscriber %r failed", callback)
        self._wake_writers()

    def _wake_writers(self) -> None:
        while self._waiters and self._waiters[0][0] <= self._revision:
            future = heapq.heappop(self._waiters)[2]
            if not future.done():
                future.set_result(None)

    async def _resync(self, compacted: int) -> int:
        """The watch lost history (compacted while it was down): deliver, as
        commits, the difference between etcd now and what subscribers saw —
        changed or new keys as PUTs at their revisions, vanished keys as
        DELETEs at the revision of the read (their last value is the
        subscribers' own; etcd has no record of it any more). Returns that
        revision, from which the watch goes on."""
        self._learn_compacted(compacted)
        response = await self._connection.call("KV", "Range", rpc.RangeRequest(key=ALL_KEYS, range_end=ALL_KEYS))
        now = response.header.revision
        current = {kv.key: kv for kv in map(to_kv, response.kvs)}
        events = sorted((Event("PUT", kv, None) for key, kv in current.items()
                         if self._mod_revisions.get(key) != kv.mod_revision), key=lambda e: e.kv.mod_revision)
        events += [Event("DELETE", KV(key, b"", now, 0), None) for key in self._mod_revisions if key not in current]
        log.warning("etcd resync at revision %d: %d keys changed or deleted while the watch was down",
                    now, len(events))
        if events:
            self._deliver(events)
        self._revision = max(self._revision, now)
        self._wake_writers()
        return now

    def _learn_compacted(self, revision: int) -> None:
        self._compacted = max(self._compacted, revision)

    async def _delivered(self, revision: int) -> None:
        """Wait until the watch has handed `revision` to the subscribers."""
        if revision <= self._revision:
            return
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (revision, next(self._seq), future))
        try:
            await asyncio.wait_for(asyncio.shield(future), WATCH_LAG_TIMEOUT_S)
        except TimeoutError:
            log.warning("etcd watch has not delivered revision %d after %.0fs; answering the writer anyway",
                        revision, WATCH_LAG_TIMEOUT_S)

    # ---- reads ------------------------------------------------------------

    async def get(self, key: str) -> KV | None:
        response = await self._call("KV", "Range", rpc.RangeRequest(key=_key_bytes(key)))
        return to_kv(response.kvs[0]) if response.kvs else None

    async def list(self, prefix: str, limit: int = 0,
                   start_after: str | None = None) -> tuple[list[KV], int, bool]:
        key, range_end = _range(prefix)
        if start_after is not None:
            key = max(key, _key_bytes(start_after) + b"\0")
        response = await self._call("KV", "Range", rpc.RangeRequest(
            key=key, range_end=range_end, limit=max(limit, 0)))
        return [to_kv(kv) for kv in response.kvs], response.header.revision, bool(response.more)

    async def events_since(self, prefix: str, revision: int) -> list[Event]:
        if self._closing:
            raise StoreClosedError("store is closed")
        if revision < self._compacted:
            raise CompactedError(self._compacted, revision)
        key, range_end = _range(prefix)
        try:
            return await read_history(self._connection, b"" if not prefix else key, range_end,
                                      revision, self._revision)
        except CompactedError as err:
            self._learn_compacted(err.revision)
            raise
        except grpc.aio.AioRpcError as err:
            raise translate(err, self._compacted) from None

    # ---- writes -----------------------------------------------------------

    async def _txn(self, compare, success, key: bytes):
        """One transaction; on a failed compare, the key's current value."""
        response = await self._call("KV", "Txn", rpc.TxnRequest(
            compare=[compare], success=[success],
            failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=key))]), write=True)
        if response.succeeded:
            await self._delivered(response.header.revision)
            return response, None
        kvs = response.responses[0].response_range.kvs
        return response, (to_kv(kvs[0]) if kvs else None)

    async def create(self, key: str, value: bytes) -> KV:
        k, v = _key_bytes(key), check_value(value)
        response, _ = await self._txn(
            _Compare(key=k, target=CREATE, result=EQUAL, create_revision=0),
            rpc.RequestOp(request_put=rpc.PutRequest(key=k, value=v)), k)
        if not response.succeeded:
            raise KeyExistsError(key)
        revision = response.header.revision
        return KV(key, v, revision, revision)

    async def update(self, key: str, value: bytes, expected_revision: int | None = None) -> KV:
        k, v = _key_bytes(key), check_value(value)
        response, current = await self._txn(
            _exists(k, expected_revision), rpc.RequestOp(request_put=rpc.PutRequest(key=k, value=v, prev_kv=True)), k)
        if not response.succeeded:
            raise self._failed(key, expected_revision, current)
        prev = response.responses[0].response_put.prev_kv
        return KV(key, v, response.header.revision, prev.create_revision)

    async def delete(self, key: str, expected_revision: int | None = None) -> KV:
        k = _key_bytes(key)
        response, current = await self._txn(
            _exists(k, expected_revision),
            rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=k, prev_kv=True)), k)
        if not response.succeeded:
            raise self._failed(key, expected_revision, current)
        prev = response.responses[0].response_delete_range.prev_kvs[0]
        return KV(key, prev.value, response.header.revision, prev.create_revision)

    @staticmethod
    def _failed(key: str, expected: int | None, current: KV | None) -> StoreError:
        if current is None:
            return KeyNotFoundError(key)
        return RevisionConflictError(key, expected, current)

    # ---- compaction and shutdown ------------------------------------------

    async def compact(self, revision: int) -> None:
        if revision > self._revision:
            raise ValueError(f"cannot compact to future revision {revision} (current {self._revision})")
        if revision <= self._compacted:
            return
        try:
            await self._call("KV", "Compact",
                             rpc.CompactionRequest(revision=revision, physical=False))
        except CompactedError:
            pass  # someone (another API server, etcdctl) compacted further already
        self._learn_compacted(revision)

    async def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        self.stop_compactors()
        if self._follower is not None:
            await self._follower.stop()
        for _, _, future in self._waiters:
            if not future.done():
                future.set_exception(StoreClosedError("store is closed"))
        self._waiters = []
        await self._connection.close()


async def open_etcd_store(config: EtcdConfig) -> EtcdStore:
    """Connect to etcd and start following its commits."""
    store = EtcdStore(config)
    try:
        await store._start()
    except BaseException:
        await store.close()
        raise
    return store
