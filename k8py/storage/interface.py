"""The Store: a revisioned key-value store with history, modelled on etcd v3.

Every successful write takes the next cluster-wide revision (etcd's
`mod_revision`), which the API server exposes as `resourceVersion`. A key
also remembers the revision that created it (etcd's `create_revision`), so a
key that is deleted and created again is a new object. History (the events
after a revision) is kept until compaction and lets watches resume.

Two backends implement this: SQLite (embedded, `k8py.storage.sqlite`) and
etcd. Both deliver commits to subscribers on the event loop, which is what
keeps the watch caches (`k8py.storage.cache`) exactly as current as the
writes the API server has acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Callable

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class KV:
    key: str
    value: bytes
    mod_revision: int
    create_revision: int


@dataclass(frozen=True, slots=True)
class Event:
    """One committed change.

    For DELETE, `kv.value` is the last value the key had and
    `kv.mod_revision` the revision of the deletion (etcd's tombstone carries
    no value; the backends fill it in from the previous version so watchers
    can say what was deleted).
    """
    type: str  # "PUT" | "DELETE"
    kv: KV
    prev: KV | None

    @property
    def revision(self) -> int:
        return self.kv.mod_revision


class StoreError(Exception):
    pass


class StoreClosedError(StoreError):
    pass


class KeyExistsError(StoreError):
    def __init__(self, key: str):
        super().__init__(f"key already exists: {key}")
        self.key = key


class KeyNotFoundError(StoreError):
    def __init__(self, key: str):
        super().__init__(f"key not found: {key}")
        self.key = key


class RevisionConflictError(StoreError):
    """A conditional write lost: `current` is what the key holds now."""

    def __init__(self, key: str, expected: int, current: KV):
        super().__init__(f"revision conflict on {key}: expected {expected}, "
                         f"current {current.mod_revision}")
        self.key = key
        self.expected = expected
        self.current = current


class CompactedError(StoreError):
    """The history asked for is gone; `revision` is the compacted revision.

    The API answers this with 410 Expired ("too old resource version").
    """

    def __init__(self, revision: int, requested: int | None = None):
        super().__init__(f"required revision {requested} has been compacted (compacted: {revision})")
        self.revision = revision
        self.requested = requested


def prefix_end(prefix: str) -> str:
    """The smallest string greater than every string starting with `prefix`
    (etcd's range_end for a prefix). Code-point order, which is also the
    byte order of UTF-8, so it matches SQLite's BINARY collation."""
    if not prefix:
        raise ValueError("empty prefix has no end")
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def check_key(key: str) -> str:
    """A store key is a non-empty str (both backends refuse anything else the same way)."""
    if not isinstance(key, str) or not key:
        raise TypeError(f"key must be a non-empty str, not {key!r}")
    return key


def check_value(value: bytes) -> bytes:
    """A store value is bytes (a bytearray or memoryview is copied into bytes)."""
    if isinstance(value, (bytearray, memoryview)):
        value = bytes(value)
    if not isinstance(value, bytes):
        raise TypeError(f"value must be bytes, not {type(value).__name__}")
    return value


EventCallback = Callable[[list[Event]], None]


class Store(ABC):
    """A revisioned key-value store. Methods are called on the event loop."""

    def __init__(self) -> None:
        self._compactors: set[asyncio.Task] = set()
        # what every backend keeps the same way: who hears commits, and how far they have heard
        self._subscribers: list[EventCallback] = []
        self._revision = 0
        self._compacted = 0

    # ---- reads ------------------------------------------------------------

    @abstractmethod
    async def get(self, key: str) -> KV | None: ...

    @abstractmethod
    async def list(self, prefix: str, limit: int = 0,
                   start_after: str | None = None) -> tuple[list[KV], int, bool]:
        """Keys under `prefix` in key order, after `start_after` if given, at
        most `limit` (0 = all). Returns (items, store revision of the read,
        whether more items follow)."""

    @abstractmethod
    async def events_since(self, prefix: str, revision: int) -> list[Event]:
        """Events with revision > `revision` for keys under `prefix`, in
        revision order. CompactedError if `revision` < compacted revision."""

    # ---- writes -----------------------------------------------------------

    @abstractmethod
    async def create(self, key: str, value: bytes) -> KV:
        """KeyExistsError if the key exists."""

    @abstractmethod
    async def update(self, key: str, value: bytes, expected_revision: int | None = None) -> KV:
        """KeyNotFoundError if missing; RevisionConflictError if
        `expected_revision` is given and is not the key's mod revision."""

    @abstractmethod
    async def delete(self, key: str, expected_revision: int | None = None) -> KV:
        """Returns the deleted value with mod_revision = the deletion's revision."""

    # ---- commits and history ----------------------------------------------

    def subscribe(self, callback: EventCallback) -> None:
        """`callback(events)` runs on the event loop after every commit, in
        revision order, before the writers' awaits return: whatever it feeds
        (a watch cache) is up to date when a client gets its response. It
        must not block and should not raise (errors are logged)."""
        self._subscribers.append(callback)

    @property
    def revision(self) -> int:
        """The revision of the last commit delivered to subscribers."""
        return self._revision

    @property
    def compacted_revision(self) -> int:
        """History at or before this revision is gone (0 = nothing compacted)."""
        return self._compacted

    @abstractmethod
    async def compact(self, revision: int) -> None:
        """Forget the events at or before `revision` (not the current values)."""

    @abstractmethod
    async def close(self) -> None: ...

    # ---- periodic compaction ----------------------------------------------

    def start_compactor(self, interval_s: float = 300.0, keep: int = 1000) -> asyncio.Task:
        """Compact in the background, like the kube-apiserver does for etcd.

        Every `interval_s` seconds the store is compacted up to the revision
        it had at the previous tick, but never within the last `keep`
        revisions. So history always covers at least one interval (5 minutes
        by default: a watch that reconnects within that time resumes without
        a relist) and at least `keep` writes (a quiet cluster still lets a
        client resume across a short outage). The task stops when cancelled
        or the store closes.
        """
        task = asyncio.get_running_loop().create_task(self._compact_periodically(interval_s, keep))
        self._compactors.add(task)
        task.add_done_callback(self._compactors.discard)
        return task

    def stop_compactors(self) -> None:
        """Backends call this from close()."""
        for task in list(self._compactors):
            task.cancel()

    async def _compact_periodically(self, interval_s: float, keep: int) -> None:
        previous_tick = self.revision
        while True:
            await asyncio.sleep(interval_s)
            target = min(previous_tick, self.revision - keep)
            previous_tick = self.revision
            if target > self.compacted_revision:
                try:
                    await self.compact(target)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("compaction to revision %d failed", target)
