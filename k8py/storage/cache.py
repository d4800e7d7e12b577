"""The watch cache: every read of the API server is served from here.

One WatchCache per resource type (one key prefix, e.g. "/registry/pods/").
It lists its prefix from the Store once, then follows every commit through
`Store.subscribe`. Because the store calls subscribers on the event loop
before it answers the writers, the cache already holds a write when the
client that made it gets its response: a read after a write always sees it.

What it keeps
  - the current objects, each decoded once (CachedObject), plus a sorted
    list of keys so `list(prefix)` is a range, not a sort;
  - a ring of the most recent changes, so a watch that resumes from a
    recent resourceVersion replays from memory. Older resumes read the
    store's history (`Store.events_since`); resumes from before the store's
    compaction raise CompactedError (the API's 410 Expired).

Watch semantics follow upstream's cacher: with a filter (label/field
selector) an object that stops matching is sent as DELETED (its last
matching state, stamped with the revision of the change) and one that
starts matching as ADDED.

Like upstream, a watcher that falls too far behind is closed instead of
slowing down the commit path for everyone; its client resumes from the
last resourceVersion it saw.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

import orjson

from k8py.storage.interface import KV, CompactedError, Event, Store, prefix_end

log = logging.getLogger(__name__)

DEFAULT_HISTORY = 2048  # changes kept in memory per resource for watch resume
DEFAULT_MAX_QUEUE = 10_000  # undelivered live events before a watcher is dropped

Filter = Callable[[dict], bool]


@dataclass(slots=True, eq=False)
class CachedObject:
    """One stored version of an object, decoded once and shared read-only.

    `obj` carries metadata.resourceVersion (the stored bytes do not: the
    revision is the version). Nobody may mutate `obj`; callers that want to
    change an object decode `raw` themselves.
    """
    key: str
    obj: dict
    raw: bytes
    revision: int
    _json: bytes | None = field(default=None, repr=False)

    @property
    def json(self) -> bytes:
        """The object as JSON with its resourceVersion, encoded at most once
        however many watchers and lists send it."""
        if self._json is None:
            self._json = orjson.dumps(self.obj)
        return self._json

    def at_revision(self, revision: int) -> "CachedObject":
        """The same content stamped with another revision: what a watcher is
        sent for a deletion, which happens at a revision of its own."""
        obj = dict(self.obj)
        obj["metadata"] = {**(obj.get("metadata") or {}), "resourceVersion": str(revision)}
        return CachedObject(self.key, obj, self.raw, revision)


@dataclass(frozen=True, slots=True)
class WatchEvent:
    type: str  # ADDED | MODIFIED | DELETED
    obj: CachedObject  # obj.revision is the revision of the change
    prev: CachedObject | None


class _Change:
    """One committed change of one key, shared by every watcher it reaches."""

    __slots__ = ("revision", "key", "new", "prev", "event", "_gone")

    def __init__(self, revision: int, key: str, new: CachedObject | None, prev: CachedObject | None):
        self.revision, self.key, self.new, self.prev = revision, key, new, prev
        self._gone: CachedObject | None = None
        if new is None:
            self.event = WatchEvent("DELETED", self.gone(), prev)
        else:
            self.event = WatchEvent("MODIFIED" if prev is not None else "ADDED", new, prev)

    def gone(self) -> CachedObject:
        """The previous state as of this change (sent as DELETED)."""
        if self._gone is None:
            self._gone = self.prev.at_revision(self.revision)
        return self._gone

    def for_filter(self, matches: Filter | None) -> WatchEvent | None:
        """What a watcher with this filter is sent, if anything."""
        if matches is None:
            return self.event
        was = self.prev is not None and matches(self.prev.obj)
        now = self.new is not None and matches(self.new.obj)
        if was and now:
            return self.event
        if now:
            return self.event if self.prev is None else WatchEvent("ADDED", self.new, self.prev)
        if was:
            return self.event if self.new is None else WatchEvent("DELETED", self.gone(), self.prev)
        return None


class WatchCache:
    def __init__(self, store: Store, prefix: str, decode: Callable[[bytes], dict] = orjson.loads,
                 history: int = DEFAULT_HISTORY, max_queue: int = DEFAULT_MAX_QUEUE):
        self.store = store
        self.prefix = prefix
        self.decode = decode
        self.max_queue = max_queue
        self.revision = 0  # every commit up to here is reflected (not only this prefix's)
        self._objects: dict[str, CachedObject] = {}
        self._keys: list[str] = []  # sorted
        self._history: deque[_Change] = deque(maxlen=max(history, 1))
        self._history_start = 0  # the ring holds every change after this revision
        self._watchers: tuple[Watcher, ...] = ()  # replaced, never mutated: safe to iterate
        self._buffer: list[list[Event]] | None = None  # commits that arrive while start() lists
        self._started = False
        self._subscribed = False
        self._listeners: tuple[Callable[[dict | None, dict | None], None], ...] = ()

    def add_listener(self, fn: Callable[[dict | None, dict | None], None]) -> None:
        """Call fn(old, new) for every change as it is applied (old None: created; new None:
        deleted), before any watcher hears of it; fn must be quick and must not raise."""
        self._listeners = self._listeners + (fn,)

    # ---- start-up and following the store ---------------------------------

    async def start(self) -> None:
        if self._started or self._buffer is not None:
            raise RuntimeError("watch cache already started")
        # Subscribe before listing so that no commit falls between the two;
        # commits the listing already includes are skipped by revision.
        self._buffer = []
        if not self._subscribed:  # once, even if a failed start() is retried
            self.store.subscribe(self._on_commit)
            self._subscribed = True
        try:
            kvs, revision, _ = await self.store.list(self.prefix)
            # Decoding a large listing takes a while: do it off the loop.
            objects = await asyncio.to_thread(lambda: [o for o in map(self._decode, kvs) if o is not None])
        except BaseException:
            self._buffer = None  # stop buffering; start() may be retried
            raise
        self._objects = {o.key: o for o in objects}
        self._keys = [o.key for o in objects]  # the store lists in key order
        self.revision = self._history_start = revision
        buffered, self._buffer = self._buffer, None
        self._started = True
        for events in buffered:
            self._on_commit(events)

    def _on_commit(self, events: list[Event]) -> None:
        """Store subscriber: runs on the loop for every committed batch."""
        if not self._started:
            if self._buffer is not None:
                self._buffer.append(events)
            return
        for event in events:
            kv = event.kv
            if kv.mod_revision <= self.revision or not kv.key.startswith(self.prefix):
                continue
            change = self._apply(event)
            if change is None:
                continue
            self._remember(change)
            for listener in self._listeners:
                listener(change.prev.obj if change.prev else None, change.new.obj if change.new else None)
            for watcher in self._watchers:
                if change.key.startswith(watcher.prefix):
                    watcher._offer(change)
        if events:
            self.revision = max(self.revision, events[-1].kv.mod_revision)

    def _apply(self, event: Event) -> _Change | None:
        key, revision = event.kv.key, event.kv.mod_revision
        prev = self._objects.get(key)
        if event.type == "DELETE":
            if prev is None:  # not expected: only if its value never decoded
                prev = self._decode(event.prev or event.kv)
                if prev is None:
                    return None
            else:
                del self._objects[key]
                del self._keys[bisect.bisect_left(self._keys, key)]
            return _Change(revision, key, None, prev)
        new = self._decode(event.kv)
        if new is None:
            return None
        if prev is None:
            bisect.insort(self._keys, key)
        self._objects[key] = new
        return _Change(revision, key, new, prev)

    def _remember(self, change: _Change) -> None:
        if len(self._history) == self._history.maxlen:
            self._history_start = self._history[0].revision  # about to fall off
        self._history.append(change)

    def _decode(self, kv: KV) -> CachedObject | None:
        try:
            obj = self.decode(kv.value)
            metadata = obj.get("metadata")
            if not isinstance(metadata, dict):
                metadata = obj["metadata"] = {}
            metadata["resourceVersion"] = str(kv.mod_revision)
        except Exception:
            log.exception("cannot decode stored value of %s at revision %d", kv.key, kv.mod_revision)
            return None
        return CachedObject(kv.key, obj, kv.value, kv.mod_revision)

    def _change_from_event(self, event: Event) -> _Change | None:
        """A change rebuilt from store history (watch catch-up)."""
        if event.type == "DELETE":
            prev = self._decode(event.prev or event.kv)
            return _Change(event.kv.mod_revision, event.kv.key, None, prev) if prev else None
        new = self._decode(event.kv)
        prev = self._decode(event.prev) if event.prev is not None else None
        return _Change(event.kv.mod_revision, event.kv.key, new, prev) if new else None

    # ---- reads ------------------------------------------------------------

    def _require_started(self) -> None:
        if not self._started:
            raise RuntimeError(f"watch cache for {self.prefix} is not started")

    def get(self, key: str) -> CachedObject | None:
        self._require_started()
        return self._objects.get(key)

    def list(self, prefix: str) -> tuple[list[CachedObject], int]:
        """Objects under `prefix` in key order, and the revision they are
        current at (a valid resourceVersion to watch from)."""
        self._require_started()
        lo = bisect.bisect_left(self._keys, prefix)
        hi = bisect.bisect_left(self._keys, prefix_end(prefix), lo) if prefix else len(self._keys)
        objects = self._objects
        return [objects[k] for k in self._keys[lo:hi]], self.revision

    def list_at(self, prefix: str, revision: int) -> tuple[list[CachedObject], int]:
        """Objects under `prefix` as they were at `revision`, rebuilt by undoing
        the remembered changes after it: what a continued (paged) list needs
        to stay one consistent snapshot. CompactedError once the in-memory
        history no longer reaches back that far."""
        self._require_started()
        if revision >= self.revision:
            return self.list(prefix)
        if revision < self._history_start:
            raise CompactedError(self._history_start, revision)
        objects = {c.key: c for c in self.list(prefix)[0]}
        for change in reversed(self._history):
            if change.revision <= revision:
                break
            if not change.key.startswith(prefix):
                continue
            if change.prev is None:
                objects.pop(change.key, None)
            else:
                objects[change.key] = change.prev
        return [objects[k] for k in sorted(objects)], revision

    def __len__(self) -> int:
        return len(self._objects)

    # ---- watches ----------------------------------------------------------

    def watch(self, prefix: str, from_revision: int, *, initial: bool = False,
              filter: Filter | None = None) -> "Watcher":
        """Events under `prefix` after `from_revision`; or, with `initial`,
        ADDED for every current object and then the changes after them.

        Raises CompactedError when `from_revision` is older than both the
        in-memory history and the store's compaction.
        """
        self._require_started()
        if not prefix.startswith(self.prefix):
            raise ValueError(f"{prefix!r} is not under this cache's prefix {self.prefix!r}")
        if initial:
            watcher = Watcher(self, prefix, filter, self.revision)
            watcher._snapshot = self.list(prefix)[0]
        elif from_revision >= self._history_start:
            watcher = Watcher(self, prefix, filter, from_revision)
            watcher._replay(self._changes_after(from_revision))
        elif from_revision < self.store.compacted_revision:
            raise CompactedError(self.store.compacted_revision, from_revision)
        else:
            watcher = Watcher(self, prefix, filter, from_revision)
            watcher._catch_up_from_store(from_revision)
        self._watchers = self._watchers + (watcher,)
        return watcher

    def _changes_after(self, revision: int) -> list[_Change]:
        newer = []
        for change in reversed(self._history):
            if change.revision <= revision:
                break
            newer.append(change)
        newer.reverse()
        return newer

    def _remove(self, watcher: "Watcher") -> None:
        self._watchers = tuple(w for w in self._watchers if w is not watcher)

    @property
    def watcher_count(self) -> int:
        return len(self._watchers)


_TIMED_OUT = object()


def _safe(matches: Filter | None) -> Filter | None:
    """A filter that fails counts as not matching (and is logged) instead of
    breaking the fan-out to every other watcher."""
    if matches is None:
        return None

    def safe(obj: dict) -> bool:
        try:
            return bool(matches(obj))
        except Exception:
            log.exception("watch filter failed")
            return False
    return safe


class Watcher:
    """The events of one watch, in revision order.

    Events come from up to three sources, delivered in this order: the
    initial snapshot (initial=True), history (the cache's ring or the
    store's log), then live changes. Use `await next(timeout)` (None on
    timeout or close) or `async for`. One consumer at a time.
    """

    def __init__(self, cache: WatchCache, prefix: str, matches: Filter | None, after: int):
        self.prefix = prefix
        self.closed = False
        self.overflowed = False  # closed for falling max_queue events behind
        self._cache = cache
        self._loop = asyncio.get_running_loop()
        self._matches = _safe(matches)
        self._snapshot: list[CachedObject] = []
        self._snapshot_pos = 0
        self._backlog: deque[WatchEvent] = deque()  # history; not bounded
        self._live: deque[WatchEvent] = deque()  # bounded by cache.max_queue
        self._skip_through = after  # live changes at or before this are covered already
        self._delivered = after
        self._catch_up: asyncio.Task | None = None
        self._error: BaseException | None = None
        self._waiter: asyncio.Future | None = None

    # ---- filling ----------------------------------------------------------

    def _replay(self, changes: list[_Change]) -> None:
        for change in changes:
            if change.key.startswith(self.prefix):
                event = change.for_filter(self._matches)
                if event is not None:
                    self._backlog.append(event)

    def _catch_up_from_store(self, after: int) -> None:
        self._catch_up = self._loop.create_task(self._read_history(after))

    async def _read_history(self, after: int) -> None:
        try:
            events = await self._cache.store.events_since(self.prefix, after)
            changes = await asyncio.to_thread(
                lambda: [c for c in map(self._cache._change_from_event, events) if c is not None])
        except asyncio.CancelledError:
            raise
        except Exception as err:
            if not isinstance(err, CompactedError):
                log.exception("watch catch-up from revision %d failed", after)
            self._catch_up = None
            self._error = err
            self.close()
            return
        self._replay(changes)
        # Live changes queued meanwhile that the history already covers go.
        last = events[-1].kv.mod_revision if events else after
        self._skip_through = max(self._skip_through, last)
        while self._live and self._live[0].obj.revision <= last:
            self._live.popleft()
        self._catch_up = None
        self._wake()

    def _offer(self, change: _Change) -> None:
        """Called by the cache for each change under our prefix."""
        if change.revision <= self._skip_through:
            return
        event = change.for_filter(self._matches)
        if event is None:
            return
        if len(self._live) >= self._cache.max_queue:
            log.warning("watch on %s fell %d events behind; closing it", self.prefix, len(self._live))
            self.overflowed = True
            self.close()
            return
        self._live.append(event)
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    # ---- consuming --------------------------------------------------------

    def _pop(self) -> WatchEvent | None:
        while self._snapshot_pos < len(self._snapshot):
            obj = self._snapshot[self._snapshot_pos]
            self._snapshot_pos += 1
            if self._matches is None or self._matches(obj.obj):
                return WatchEvent("ADDED", obj, None)
        if self._snapshot:
            self._snapshot = []  # done with it: let the list go
            self._snapshot_pos = 0
        if self._backlog:
            event = self._backlog.popleft()
        elif self._catch_up is None and self._live:
            event = self._live.popleft()
        else:
            return None
        self._delivered = max(self._delivered, event.obj.revision)
        return event

    async def next(self, timeout: float | None = None) -> WatchEvent | None:
        """The next event; None when `timeout` seconds pass without one or
        the watcher is closed. Raises CompactedError if the history needed
        for this watch turned out to be compacted."""
        while True:
            event = self._pop()
            if event is not None:
                return event
            if self._error is not None:
                raise self._error
            if self.closed or (timeout is not None and timeout <= 0):
                return None
            waiter = self._waiter = self._loop.create_future()
            timer = None
            if timeout is not None:
                timer = self._loop.call_later(timeout, _set_if_pending, waiter, _TIMED_OUT)
            try:
                woke = await waiter
            finally:
                self._waiter = None
                if timer is not None:
                    timer.cancel()
            if woke is _TIMED_OUT:
                return self._pop()

    def __aiter__(self) -> "Watcher":
        return self

    async def __anext__(self) -> WatchEvent:
        event = await self.next()
        if event is None:
            raise StopAsyncIteration
        return event

    @property
    def revision(self) -> int:
        """How far this watcher's consumer is known to be current (for
        bookmarks): just before the next undelivered event, or the cache's
        revision when nothing is left to deliver."""
        if self.closed or self._catch_up is not None or self._snapshot_pos < len(self._snapshot):
            return self._delivered
        pending = self._backlog[0] if self._backlog else self._live[0] if self._live else None
        if pending is not None:
            return max(self._delivered, pending.obj.revision - 1)
        return max(self._delivered, self._cache.revision)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._snapshot, self._backlog, self._live = [], deque(), deque()
        if self._catch_up is not None:
            self._catch_up.cancel()
            self._catch_up = None
        self._cache._remove(self)
        self._wake()


def _set_if_pending(future: asyncio.Future, result) -> None:
    if not future.done():
        future.set_result(result)
