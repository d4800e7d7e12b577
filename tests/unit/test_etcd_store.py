"""What only the etcd backend has to get right (the shared contract is in test_store.py):
commits made behind our back, history compacted by someone else (410 for the watch cache),
failover to the next member, and the endpoint flags."""

from __future__ import annotations

import asyncio
import json
import socket

import orjson
import pytest

from k8py.storage.cache import WatchCache
from k8py.storage.etcd import EtcdConfig, EtcdUnavailableError, connection, open_etcd_store
from k8py.storage.interface import CompactedError


@pytest.fixture
async def store(etcd):
    etcd.wipe()
    s = await open_etcd_store(EtcdConfig.parse(etcd.endpoint))
    yield s
    await s.close()


async def wait_for(condition, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def test_writes_by_others_reach_the_subscribers_with_their_last_value(etcd, store):
    seen = []
    store.subscribe(lambda events: seen.extend(events))
    kv = await store.create("/registry/pods/ns/a", b'{"v":1}')
    await asyncio.to_thread(etcd.etcdctl, "put", "/registry/pods/ns/b", '{"v":2}')
    await asyncio.to_thread(etcd.etcdctl, "del", "/registry/pods/ns/a")
    await wait_for(lambda: len(seen) == 3)
    put, deleted = seen[1], seen[2]
    assert (put.type, put.kv.key, put.kv.value, put.prev) == ("PUT", "/registry/pods/ns/b", b'{"v":2}', None)
    assert (deleted.type, deleted.kv.key, deleted.kv.value) == ("DELETE", kv.key, b'{"v":1}')
    assert deleted.kv.create_revision == kv.mod_revision and deleted.prev.mod_revision == kv.mod_revision
    assert store.revision == deleted.kv.mod_revision


async def test_history_compacted_by_someone_else_is_a_compacted_error_for_the_cache(etcd, store):
    first = await store.create("/registry/pods/ns/p0", orjson.dumps({"metadata": {"name": "p0"}}))
    for i in range(1, 4):
        await store.create(f"/registry/pods/ns/p{i}", orjson.dumps({"metadata": {"name": f"p{i}"}}))
    cache = WatchCache(store, "/registry/pods/")
    await cache.start()  # its memory starts here: older resumes read etcd's history
    await asyncio.to_thread(etcd.etcdctl, "compact", str(store.revision))
    assert store.compacted_revision < store.revision  # nobody told the store
    watcher = cache.watch("/registry/pods/", first.mod_revision)
    with pytest.raises(CompactedError) as err:
        await asyncio.wait_for(watcher.next(), 10)
    assert err.value.revision == store.revision
    assert store.compacted_revision == store.revision  # learnt from the watch


async def test_a_dead_member_is_skipped(etcd):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]  # nothing listens here once closed
    etcd.wipe()
    store = await open_etcd_store(EtcdConfig.parse(f"http://127.0.0.1:{dead},{etcd.endpoint}"))
    try:
        kv = await store.create("/registry/pods/ns/a", b"{}")
        assert (await store.get(kv.key)).mod_revision == kv.mod_revision == store.revision
    finally:
        await store.close()


def test_endpoint_flags(tmp_path):
    config = EtcdConfig.parse("https://10.0.0.1:2379, https://etcd-2")
    assert config.endpoints == ("10.0.0.1:2379", "etcd-2:2379") and config.secure
    assert EtcdConfig.parse("127.0.0.1:2379").secure is False
    for bad in ("postgres://db/k3s", "http://a:1,https://b:2", "", "http://a:1/path"):
        with pytest.raises(ValueError):
            EtcdConfig.parse(bad)
    with pytest.raises(ValueError, match="no such file"):
        EtcdConfig.parse("https://a:1", cafile=tmp_path / "missing.crt")
    with pytest.raises(ValueError, match="go together"):
        EtcdConfig.parse("https://a:1", certfile=tmp_path / "c.crt")


async def test_tls_with_client_certificates(tmp_path, monkeypatch):
    """k3s's --datastore-cafile/certfile/keyfile against an etcd that requires client certificates."""
    from k8py.apiserver.pki import ensure_pki
    from tests.etcd_server import start_etcd
    pki = ensure_pki(tmp_path / "tls")
    etcd = await asyncio.to_thread(start_etcd, tmp_path / "etcd", pki=pki)
    try:
        store = await open_etcd_store(EtcdConfig.parse(etcd.endpoint, pki.ca_cert, pki.admin_cert, pki.admin_key))
        try:
            kv = await store.create("/registry/pods/ns/a", b"{}")
            assert store.revision == kv.mod_revision
        finally:
            await store.close()
        assert etcd.etcdctl("get", "/registry/pods/ns/a", "--print-value-only").stdout.strip() == "{}"
        # Without a client certificate etcd refuses the connection: a clear error, no hang.
        monkeypatch.setattr(connection, "RETRY_WINDOW_S", 0.5)  # no need to wait out the retries
        unauthenticated = EtcdConfig.parse(etcd.endpoint, pki.ca_cert)
        with pytest.raises(EtcdUnavailableError):
            await asyncio.wait_for(open_etcd_store(unauthenticated), 60)
    finally:
        etcd.stop()


async def test_a_watch_that_lost_its_history_resyncs_the_caches(etcd, store):
    """The watch stream was down while others wrote and compacted: the store delivers the
    difference between etcd and what the caches hold, and the watch goes on from there."""
    def pod(name: str, v: int) -> bytes:
        return orjson.dumps({"metadata": {"name": name}, "v": v})
    kept = await store.create("/registry/pods/ns/kept", pod("kept", 1))
    await store.create("/registry/pods/ns/changed", pod("changed", 1))
    await store.create("/registry/pods/ns/gone", pod("gone", 1))
    cache = WatchCache(store, "/registry/pods/")
    await cache.start()
    watcher = cache.watch("/registry/pods/", store.revision)
    await store._follower.stop()  # the stream is down...
    for args in (("put", "/registry/pods/ns/changed", pod("changed", 2).decode()),
                 ("put", "/registry/pods/ns/new", pod("new", 1).decode()),
                 ("del", "/registry/pods/ns/gone")):
        await asyncio.to_thread(etcd.etcdctl, *args)
    revision = int(json.loads((await asyncio.to_thread(etcd.etcdctl, "get", "x", "-w", "json")).stdout)
                   ["header"]["revision"])
    await asyncio.to_thread(etcd.etcdctl, "compact", str(revision))  # ...and its history is gone
    store._follower.start()
    events = [await asyncio.wait_for(watcher.next(), 10) for _ in range(3)]
    assert sorted((e.type, e.obj.obj["metadata"]["name"]) for e in events) == [
        ("ADDED", "new"), ("DELETED", "gone"), ("MODIFIED", "changed")]
    assert cache.get("/registry/pods/ns/changed").obj["v"] == 2
    assert cache.get("/registry/pods/ns/gone") is None
    assert cache.get(kept.key).revision == kept.mod_revision  # unchanged keys are not sent again
    assert store.compacted_revision == revision
    # The watch goes on live after the resync.
    later = await store.create("/registry/pods/ns/later", pod("later", 1))
    assert cache.get(later.key) is not None and store.revision == later.mod_revision
