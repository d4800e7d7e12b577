"""The watch cache: reads after writes, watch resume (memory and store),
initial events, selector transitions, slow watchers, expired revisions."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from k8py.storage.cache import WatchCache
from k8py.storage.interface import CompactedError
from k8py.storage.sqlite import open_sqlite_store

PODS = "/registry/pods/"


@pytest.fixture
async def store(tmp_path):
    s = await open_sqlite_store(tmp_path / "state.db")
    yield s
    await s.close()


async def started(store, prefix=PODS, **kwargs) -> WatchCache:
    cache = WatchCache(store, prefix, **kwargs)
    await cache.start()
    return cache


def pod(name: str, labels: dict | None = None, **extra) -> bytes:
    metadata = {"name": name, "namespace": "ns"}
    if labels is not None:
        metadata["labels"] = labels
    return orjson.dumps({"kind": "Pod", "metadata": metadata, **extra})


def summary(event) -> tuple[str, str, int]:
    return event.type, event.obj.obj["metadata"]["name"], event.obj.revision


async def drain(watcher) -> list[tuple[str, str, int]]:
    """Everything the watcher has ready now, as (type, name, revision)."""
    events = []
    while (event := await watcher.next(timeout=0)) is not None:
        events.append(summary(event))
    return events


async def take(watcher, count: int) -> list[tuple[str, str, int]]:
    """The next `count` events, waiting for them (but not forever)."""
    return [summary(await asyncio.wait_for(watcher.next(), 5)) for _ in range(count)]


async def test_reads_see_writes_as_soon_as_they_are_acknowledged(store):
    cache = await started(store)
    await store.create(PODS + "ns/b", pod("b"))
    kv = await store.create(PODS + "ns/a", pod("a"))
    await store.create(PODS + "other/c", pod("c"))
    cached = cache.get(PODS + "ns/a")  # no waiting: the cache had it before create() returned
    assert cached.obj["metadata"]["resourceVersion"] == str(kv.mod_revision)
    assert cached.raw == pod("a") and cached.revision == kv.mod_revision
    items, revision = cache.list(PODS + "ns/")
    assert [c.key for c in items] == [PODS + "ns/a", PODS + "ns/b"]
    assert revision == store.revision == 3
    # Writes elsewhere advance the revision (it is the store's) but add nothing.
    await store.create("/registry/secrets/ns/s", b"{}")
    assert cache.list(PODS)[1] == 4 and len(cache) == 3
    await store.delete(PODS + "ns/a")
    assert cache.get(PODS + "ns/a") is None
    assert [c.key for c in cache.list(PODS)[0]] == [PODS + "ns/b", PODS + "other/c"]


async def test_json_carries_resource_version_and_is_encoded_once(store):
    cache = await started(store)
    kv = await store.create(PODS + "ns/a", pod("a"))
    cached = cache.get(kv.key)
    assert orjson.loads(cached.json)["metadata"]["resourceVersion"] == str(kv.mod_revision)
    assert cached.json is cached.json


async def test_start_lists_existing_objects_and_misses_no_concurrent_write(store):
    for i in range(50):
        await store.create(PODS + f"ns/old{i}", pod(f"old{i}"))
    cache = WatchCache(store, PODS)
    writes = asyncio.gather(*(store.create(PODS + f"ns/new{i}", pod(f"new{i}")) for i in range(50)))
    await asyncio.gather(cache.start(), writes)
    stored, revision, _ = await store.list(PODS)
    assert [c.key for c in cache.list(PODS)[0]] == [kv.key for kv in stored]
    assert cache.revision == revision == 100


async def test_watch_from_a_revision_replays_what_followed(store):
    cache = await started(store)
    a = await store.create(PODS + "ns/a", pod("a"))
    await store.create(PODS + "ns/b", pod("b"))
    await store.update(a.key, pod("a", labels={"x": "1"}))
    await store.create(PODS + "elsewhere/c", pod("c"))
    await store.delete(a.key)
    watcher = cache.watch(PODS + "ns/", a.mod_revision)
    assert await drain(watcher) == [("ADDED", "b", 2), ("MODIFIED", "a", 3), ("DELETED", "a", 5)]
    # Live events follow the replay.
    await store.create(PODS + "ns/d", pod("d"))
    assert await drain(watcher) == [("ADDED", "d", 6)]
    watcher.close()
    assert cache.watcher_count == 0


async def test_deleted_event_carries_last_state_at_the_deletion_revision(store):
    cache = await started(store)
    kv = await store.create(PODS + "ns/a", pod("a", labels={"app": "web"}))
    watcher = cache.watch(PODS, kv.mod_revision)
    deleted = await store.delete(kv.key)
    event = await watcher.next(timeout=0)
    assert event.type == "DELETED"
    assert event.obj.obj["metadata"]["labels"] == {"app": "web"}
    assert event.obj.obj["metadata"]["resourceVersion"] == str(deleted.mod_revision)
    assert event.prev.revision == kv.mod_revision
    # The cached object of the previous version keeps its own version.
    assert event.prev.obj["metadata"]["resourceVersion"] == str(kv.mod_revision)


async def test_watch_older_than_memory_catches_up_from_the_store(store):
    cache = await started(store, history=2)
    first = await store.create(PODS + "ns/p0", pod("p0"))
    for i in range(1, 6):
        await store.create(PODS + f"ns/p{i}", pod(f"p{i}"))
    read_history = store.events_since

    async def write_then_read(prefix, revision):
        # A write lands while the watch is catching up: the watcher gets it
        # live *and* in the history it reads, and must send it once.
        await store.create(PODS + "ns/late", pod("late"))
        return await read_history(prefix, revision)
    store.events_since = write_then_read
    watcher = cache.watch(PODS, first.mod_revision)
    assert await take(watcher, 6) == [("ADDED", f"p{i}", i + 1) for i in range(1, 6)] + [("ADDED", "late", 7)]
    await store.update(PODS + "ns/p0", pod("p0", labels={}))
    assert await drain(watcher) == [("MODIFIED", "p0", 8)]


async def test_initial_events_then_live_ones(store):
    cache = await started(store)
    for name in ("b", "a", "c"):
        await store.create(PODS + f"ns/{name}", pod(name, labels={"app": "db" if name == "c" else "web"}))
    await store.create(PODS + "other/z", pod("z", labels={"app": "web"}))
    web = lambda obj: obj["metadata"].get("labels", {}).get("app") == "web"  # noqa: E731
    watcher = cache.watch(PODS + "ns/", 0, initial=True, filter=web)
    revision = store.revision
    assert await drain(watcher) == [("ADDED", "a", 2), ("ADDED", "b", 1)]
    assert watcher.revision == revision  # what an initial-events-end bookmark says
    await store.create(PODS + "ns/d", pod("d", labels={"app": "web"}))
    assert await drain(watcher) == [("ADDED", "d", 5)]


async def test_selector_transitions_become_added_and_deleted(store):
    cache = await started(store)
    web = lambda obj: (obj["metadata"].get("labels") or {}).get("app") == "web"  # noqa: E731
    watcher = cache.watch(PODS, store.revision, filter=web)
    key = PODS + "ns/a"
    await store.create(key, pod("a", labels={"app": "web"}))             # 1 matches
    await store.update(key, pod("a", labels={"app": "web"}, spec={}))   # 2 still matches
    await store.update(key, pod("a", labels={"app": "db"}))             # 3 stops matching
    await store.update(key, pod("a", labels={"app": "db"}, spec={}))    # 4 never matched
    await store.update(key, pod("a", labels={"app": "web"}))            # 5 matches again
    await store.update(key, pod("a", labels={"app": "db"}))             # 6 stops
    await store.delete(key)                                             # 7 gone, unseen
    events = []
    while (event := await watcher.next(timeout=0)) is not None:
        events.append(event)
    assert [(e.type, e.obj.revision) for e in events] == [
        ("ADDED", 1), ("MODIFIED", 2), ("DELETED", 3), ("ADDED", 5), ("DELETED", 6)]
    stopped = events[2]
    # DELETED shows the last state that matched, at the revision it stopped matching.
    assert stopped.obj.obj["metadata"]["labels"] == {"app": "web"}
    assert stopped.obj.obj["metadata"]["resourceVersion"] == "3"


async def test_slow_watcher_is_closed_without_holding_back_others(store):
    cache = await started(store, max_queue=5)
    slow = cache.watch(PODS, 0)
    fast = cache.watch(PODS, 0)
    received = []
    for i in range(8):
        await store.create(PODS + f"ns/p{i}", pod(f"p{i}"))
        received += await drain(fast)
    assert len(received) == 8
    assert slow.closed and slow.overflowed
    assert await slow.next(timeout=1) is None
    assert cache.watcher_count == 1


async def test_expired_revision_raises(store):
    cache = await started(store, history=2)
    for i in range(6):
        await store.create(PODS + f"ns/p{i}", pod(f"p{i}"))
    await store.compact(4)
    with pytest.raises(CompactedError) as err:
        cache.watch(PODS, 3)
    assert err.value.revision == 4
    # Still in memory: served although the store compacted it.
    assert await drain(cache.watch(PODS, 4)) == [("ADDED", "p4", 5), ("ADDED", "p5", 6)]


async def test_compaction_found_during_catch_up_ends_the_watch(store):
    cache = await started(store, history=1)
    for i in range(4):
        await store.create(PODS + f"ns/p{i}", pod(f"p{i}"))

    async def compacted(prefix, revision):
        raise CompactedError(3, revision)
    store.events_since = compacted  # compaction raced the watch request
    watcher = cache.watch(PODS, 1)
    with pytest.raises(CompactedError):
        await watcher.next(timeout=2)
    assert watcher.closed


async def test_next_wakes_on_an_event_and_times_out_without_one(store):
    cache = await started(store)
    watcher = cache.watch(PODS, 0)
    started_at = time.monotonic()
    assert await watcher.next(timeout=0.05) is None
    assert time.monotonic() - started_at >= 0.04
    waiting = asyncio.create_task(watcher.next(timeout=30))
    await asyncio.sleep(0)  # let it start waiting
    kv = await store.create(PODS + "ns/a", pod("a"))
    event = await asyncio.wait_for(waiting, 5)
    assert (event.type, event.obj.revision) == ("ADDED", kv.mod_revision)


async def test_watcher_revision_follows_the_store_for_bookmarks(store):
    cache = await started(store)
    watcher = cache.watch(PODS, 0)
    await store.create("/registry/secrets/ns/s", b"{}")
    assert watcher.revision == 1
    await store.create(PODS + "ns/a", pod("a"))
    assert watcher.revision == 1  # an undelivered event holds it back
    await watcher.next()
    assert watcher.revision == 2
    watcher.close()
    assert await watcher.next() is None


async def test_async_iteration_ends_when_closed(store):
    cache = await started(store)
    watcher = cache.watch(PODS, 0)
    await store.create(PODS + "ns/a", pod("a"))
    seen = []
    async for event in watcher:
        seen.append(event.type)
        watcher.close()
    assert seen == ["ADDED"]
