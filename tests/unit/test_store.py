"""The Store contract on both backends (SQLite and a real etcd): revisions,
conditional writes, history, compaction, reopening; and SQLite's own group
commit and durability under kill -9.

Revisions are compared relative to the store's revision when a test starts:
a fresh etcd starts at revision 1, and the shared etcd keeps counting across
tests (each test starts from an empty keyspace)."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from k8py.storage import sqlite as sqlite_module
from k8py.storage.interface import (CompactedError, KeyExistsError, KeyNotFoundError,
                                    RevisionConflictError)
from k8py.storage.interface import StoreClosedError
from k8py.storage.sqlite import open_sqlite_store

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", "etcd"])
def open_store(request, tmp_path):
    """An opener of the backend under test (called again to reopen the same data)."""
    if request.param == "sqlite":
        return lambda: open_sqlite_store(tmp_path / "db" / "state.db")
    from k8py.storage.etcd import EtcdConfig, open_etcd_store
    etcd = request.getfixturevalue("etcd")
    etcd.wipe()
    return lambda: open_etcd_store(EtcdConfig.parse(etcd.endpoint))


@pytest.fixture
async def store(open_store):
    s = await open_store()
    yield s
    await s.close()


async def wait_for(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


async def test_revisions_are_one_sequence_shared_by_all_keys(store):
    r = store.revision
    a = await store.create("/registry/pods/ns/a", b"a1")
    b = await store.create("/registry/configmaps/ns/b", b"b1")
    a2 = await store.update("/registry/pods/ns/a", b"a2")
    assert (a.mod_revision, b.mod_revision, a2.mod_revision) == (r + 1, r + 2, r + 3)
    assert a.create_revision == a.mod_revision == r + 1
    assert a2.create_revision == r + 1  # an update keeps the key's creation revision
    assert store.revision == r + 3
    assert await store.get("/registry/pods/ns/a") == a2


async def test_create_of_existing_key_fails_and_takes_no_revision(store):
    r = store.revision
    await store.create("/registry/pods/ns/a", b"1")
    with pytest.raises(KeyExistsError):
        await store.create("/registry/pods/ns/a", b"2")
    assert (await store.get("/registry/pods/ns/a")).value == b"1"
    assert (await store.create("/registry/pods/ns/b", b"x")).mod_revision == r + 2


async def test_conditional_update(store):
    r = store.revision
    kv = await store.create("/registry/pods/ns/a", b"1")
    updated = await store.update(kv.key, b"2", expected_revision=kv.mod_revision)
    with pytest.raises(RevisionConflictError) as err:
        await store.update(kv.key, b"3", expected_revision=kv.mod_revision)
    assert err.value.current == updated  # the loser learns what is there now
    assert (await store.get(kv.key)).value == b"2"
    with pytest.raises(KeyNotFoundError):
        await store.update("/registry/pods/ns/missing", b"x")
    with pytest.raises(KeyNotFoundError):
        await store.update("/registry/pods/ns/missing", b"x", expected_revision=1)
    assert store.revision == r + 2


async def test_concurrent_conditional_updates_have_one_winner(store):
    """The condition is checked inside the writer's transaction: of writers
    racing from the same revision (and committed together), exactly one wins."""
    kv = await store.create("/registry/pods/ns/a", b"0")
    results = await asyncio.gather(
        *(store.update(kv.key, str(i).encode(), expected_revision=kv.mod_revision) for i in range(20)),
        return_exceptions=True)
    winners = [r for r in results if not isinstance(r, Exception)]
    assert len(winners) == 1
    assert all(isinstance(r, RevisionConflictError) for r in results if r is not winners[0])
    assert (await store.get(kv.key)).value == winners[0].value


async def test_delete(store):
    r = store.revision
    kv = await store.create("/registry/pods/ns/a", b"last")
    with pytest.raises(RevisionConflictError):
        await store.delete(kv.key, expected_revision=kv.mod_revision + 5)
    deleted = await store.delete(kv.key, expected_revision=kv.mod_revision)
    assert deleted.value == b"last"
    assert deleted.mod_revision == r + 2 and deleted.create_revision == r + 1
    assert await store.get(kv.key) is None
    with pytest.raises(KeyNotFoundError):
        await store.delete(kv.key)
    again = await store.create(kv.key, b"new")
    assert again.create_revision == again.mod_revision == r + 3  # a new life for the key


async def test_list_by_prefix_with_pagination(store):
    r = store.revision
    names = ["e", "a", "d", "b", "c"]
    for name in names:
        await store.create(f"/registry/pods/ns/{name}", name.encode())
    # Neighbours that share a string prefix but are not under the key prefix.
    await store.create("/registry/pods/nt/x", b"x")
    await store.create("/registry/pods/ns", b"bare")
    await store.create("/registry/pods0", b"sibling")

    items, revision, more = await store.list("/registry/pods/ns/")
    assert [kv.value for kv in items] == [b"a", b"b", b"c", b"d", b"e"]
    assert revision == r + 8 and more is False

    pages, start_after = [], None
    while True:
        page, _, more = await store.list("/registry/pods/ns/", limit=2, start_after=start_after)
        pages.append([kv.value.decode() for kv in page])
        if not more:
            break
        start_after = page[-1].key
    assert pages == [["a", "b"], ["c", "d"], ["e"]]
    assert len((await store.list("/registry/pods/"))[0]) == 7  # not /registry/pods0


async def test_events_since(store):
    r = store.revision
    a = await store.create("/registry/pods/ns/a", b"a1")
    await store.create("/registry/secrets/ns/s", b"s1")
    await store.update(a.key, b"a2")
    await store.create("/registry/pods/ns/b", b"b1")
    await store.delete(a.key)

    events = await store.events_since("/registry/pods/", r + 1)
    assert [(e.type, e.kv.key, e.kv.mod_revision) for e in events] == [
        ("PUT", "/registry/pods/ns/a", r + 3), ("PUT", "/registry/pods/ns/b", r + 4),
        ("DELETE", "/registry/pods/ns/a", r + 5)]
    update, create, delete = events
    assert update.prev.value == b"a1" and update.prev.mod_revision == r + 1
    assert create.prev is None
    # A deletion carries the last value, at the deletion's revision.
    assert delete.kv.value == b"a2" and delete.prev.mod_revision == r + 3
    assert delete.kv.create_revision == r + 1
    assert [e.kv.mod_revision for e in await store.events_since("/registry/pods/", r)] == [
        r + 1, r + 3, r + 4, r + 5]
    assert await store.events_since("/registry/pods/", r + 5) == []


async def test_compaction_forgets_history_but_not_state(store, monkeypatch):
    monkeypatch.setattr(sqlite_module, "COMPACT_CHUNK", 3)  # exercise several steps (SQLite)
    r = store.revision
    kv = await store.create("/registry/pods/ns/a", b"0")
    for i in range(1, 10):
        kv = await store.update(kv.key, str(i).encode())
    await store.create("/registry/pods/ns/b", b"b")
    await store.compact(r + 8)
    assert store.compacted_revision == r + 8
    with pytest.raises(CompactedError) as err:
        await store.events_since("/registry/pods/", r + 7)
    assert err.value.revision == r + 8
    assert [e.kv.mod_revision for e in await store.events_since("/registry/pods/", r + 8)] == [
        r + 9, r + 10, r + 11]
    assert (await store.get(kv.key)).value == b"9"
    # Compacting to an older revision changes nothing; to a future one is refused.
    await store.compact(r + 3)
    assert store.compacted_revision == r + 8
    with pytest.raises(ValueError):
        await store.compact(store.revision + 1)


async def test_reopening_keeps_data_and_revisions_keep_growing(open_store):
    store = await open_store()
    await store.create("/registry/pods/ns/a", b"1")
    await store.create("/registry/pods/ns/b", b"2")
    r = (await store.delete("/registry/pods/ns/b")).mod_revision
    await store.compact(r)  # even with all history gone, revisions must not restart
    await store.close()
    with pytest.raises(StoreClosedError):
        await store.create("/registry/pods/ns/c", b"3")

    store = await open_store()  # etcd: its compacted revision is found again, not remembered
    try:
        assert store.revision == r and store.compacted_revision == r
        assert (await store.get("/registry/pods/ns/a")).value == b"1"
        assert await store.get("/registry/pods/ns/b") is None
        assert (await store.create("/registry/pods/ns/c", b"3")).mod_revision == r + 1
    finally:
        await store.close()


async def test_200_concurrent_writes_are_delivered_in_revision_order(store):
    commits = []
    store.subscribe(commits.append)
    r = store.revision
    kvs = await asyncio.gather(*(store.create(f"/registry/pods/ns/p{i}", b"{}") for i in range(200)))
    assert sorted(kv.mod_revision for kv in kvs) == list(range(r + 1, r + 201))
    assert len((await store.list("/registry/pods/"))[0]) == 200
    assert [e.kv.mod_revision for batch in commits for e in batch] == list(range(r + 1, r + 201))
    if isinstance(store, sqlite_module.SqliteStore):  # group commit: writes queued behind a commit share the next
        assert len(commits) < 200


async def test_subscribers_see_a_commit_before_its_writer_resumes(store):
    seen = []
    store.subscribe(lambda events: seen.extend(e.kv.mod_revision for e in events))
    for i in range(5):
        kv = await store.create(f"/registry/pods/ns/p{i}", b"{}")
        assert seen[-1] == kv.mod_revision
        assert store.revision == kv.mod_revision
    # A failing subscriber does not stop the others or the writers.
    store.subscribe(lambda events: 1 / 0)
    kv = await store.update("/registry/pods/ns/p0", b"[]")
    assert seen[-1] == kv.mod_revision


async def test_periodic_compactor_keeps_recent_revisions(store):
    for i in range(30):
        await store.create(f"/registry/pods/ns/p{i}", b"{}")
    before = store.compacted_revision
    store.start_compactor(interval_s=0.01, keep=10)
    await wait_for(lambda: store.compacted_revision > before)
    assert store.compacted_revision <= store.revision - 10
    assert len(await store.events_since("", store.revision - 10)) == 10


async def test_bad_arguments_are_rejected_before_queueing(store):
    r = store.revision
    with pytest.raises(TypeError):
        await store.create("/registry/pods/ns/a", "not bytes")
    with pytest.raises(TypeError):
        await store.create("", b"x")
    assert (await store.create("/registry/pods/ns/a", b"x")).mod_revision == r + 1


CHILD = textwrap.dedent("""
    import asyncio, sys
    from k8py.storage.sqlite import open_sqlite_store

    async def main(path):
        store = await open_sqlite_store(path)
        print("ready", flush=True)

        async def writer(w):
            i = 0
            while True:
                key = f"/registry/configmaps/default/w{w}-{i}"
                kv = await store.create(key, b'{"data":{}}')
                sys.stdout.write(f"{key} {kv.mod_revision}\\n")
                sys.stdout.flush()
                i += 1
        await asyncio.gather(*(writer(w) for w in range(32)))

    asyncio.run(main(sys.argv[1]))
""")


async def test_acknowledged_writes_survive_kill_9(tmp_path):
    path = tmp_path / "state.db"
    # Plain Popen, read on a thread: the child is ours to reap, not asyncio's.
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], cwd=REPO, stdout=subprocess.PIPE)
    acknowledged: dict[str, int] = {}
    try:
        assert await asyncio.to_thread(child.stdout.readline) == b"ready\n"
        while len(acknowledged) < 3000:
            line = await asyncio.to_thread(child.stdout.readline)
            assert line, "writer exited early"
            key, rev = line.decode().split()
            acknowledged[key] = int(rev)
        child.send_signal(signal.SIGKILL)
        # Everything it printed before dying was acknowledged too.
        for line in (await asyncio.to_thread(child.stdout.read)).splitlines():
            key, rev = line.decode().split()
            acknowledged[key] = int(rev)
    finally:
        child.kill()
        await asyncio.to_thread(child.wait, 30)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL

    store = await open_sqlite_store(path)
    try:
        items, revision, _ = await store.list("/registry/configmaps/")
        stored = {kv.key: kv.mod_revision for kv in items}
        missing = [key for key in acknowledged if key not in stored]
        assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {missing[:3]}"
        assert all(stored[key] == rev for key, rev in acknowledged.items())
        assert revision >= max(acknowledged.values())
        assert (await store.create("/registry/configmaps/default/after", b"{}")).mod_revision == revision + 1
    finally:
        await store.close()
