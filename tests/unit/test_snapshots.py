"""Datastore snapshots: save (consistent under writes), ls/delete/prune, verify, restore and the
server's snapshot flags and schedule (k8py/storage/snapshot.py, sqlite_snapshot.py, cli/*snapshot*)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import sqlite3
import time
from argparse import Namespace
from pathlib import Path

import pytest

from k8py.cli import server_snapshots
from k8py.cli.main import main
from k8py.storage import snapshot
from k8py.storage.interface import CompactedError
from k8py.storage.sqlite import StoreError, datastore_path, open_sqlite_store
from k8py.storage.sqlite_snapshot import SqliteSnapshots

CLUSTER = "a" * 64
OTHER_CLUSTER = "b" * 64


def _db(data_dir: Path) -> Path:
    return datastore_path(data_dir)


def _write_ca(data_dir: Path, text: bytes = b"-----BEGIN CERTIFICATE-----\nfake\n") -> str:
    ca = snapshot.ca_path(data_dir)
    ca.parent.mkdir(parents=True, exist_ok=True)
    ca.write_bytes(text)
    return hashlib.sha256(text).hexdigest()


async def _fill(data_dir: Path, count: int) -> int:
    store = await open_sqlite_store(_db(data_dir))
    try:
        await asyncio.gather(*(store.create(f"/registry/configmaps/default/cm{i}", b"v%d" % i)
                               for i in range(count)))
        return store.revision
    finally:
        await store.close()


def _keys(db: Path) -> set[str]:
    conn = sqlite3.connect(db)
    try:
        return {k for (k,) in conn.execute("SELECT key FROM kv")}
    finally:
        conn.close()


def _meta(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(db)
    try:
        return dict(conn.execute("SELECT name, value FROM meta"))
    finally:
        conn.close()


async def test_save_is_consistent_while_a_writer_keeps_writing(tmp_path):
    store = await open_sqlite_store(_db(tmp_path))
    created: dict[str, int] = {}
    stop = asyncio.Event()

    async def writer(w: int):
        i = 0
        while not stop.is_set():
            key = f"/registry/configmaps/default/w{w}-{i}"
            created[key] = (await store.create(key, b"x" * 200)).mod_revision
            i += 1

    writers = [asyncio.create_task(writer(w)) for w in range(8)]
    try:
        while len(created) < 2000:
            await asyncio.sleep(0.01)
        before = len(created)
        info = await asyncio.to_thread(SqliteSnapshots(_db(tmp_path)).save, tmp_path / "snap", CLUSTER, "n1")
        while len(created) < before + 500:  # writes went on during and after the save
            await asyncio.sleep(0.01)
    finally:
        stop.set()
        await asyncio.gather(*writers)
        await store.close()
    # The copy is the state at exactly one commit: every write at or below its revision, none above.
    expected = {key for key, rev in created.items() if rev <= info.revision}
    assert _keys(tmp_path / "snap") == expected
    assert info.keys == len(expected) and 0 < info.revision < max(created.values())
    assert os.stat(tmp_path / "snap").st_mode & 0o077 == 0  # it holds every Secret: owner only
    assert SqliteSnapshots(_db(tmp_path)).verify(tmp_path / "snap", CLUSTER).revision == info.revision


def test_ls_delete_and_prune_keep_the_newest_by_name(tmp_path, capsys):
    d = tmp_path / "snaps"
    d.mkdir()
    for base, t in [("on-demand", 1700000300), ("on-demand", 1700000100), ("on-demand", 1700000200),
                    ("etcd-snapshot", 1700000000), ("etcd-snapshot", 1700000400)]:
        (d / f"{base}-node1-{t}").write_bytes(b"x" * (t % 1000))
    (d / ".on-demand-node1-1700000500.partial").write_bytes(b"partial")  # a save in progress
    listed = snapshot.list_snapshots(d)
    assert [s.name for s in listed] == ["etcd-snapshot-node1-1700000000", "on-demand-node1-1700000100",
                                        "on-demand-node1-1700000200", "on-demand-node1-1700000300",
                                        "etcd-snapshot-node1-1700000400"]
    assert main(["etcd-snapshot", "ls", "--etcd-snapshot-dir", str(d)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["Name", "Location", "Size", "Created"]
    name, location, size, created = lines[2].split()
    assert (name, location, size) == ("on-demand-node1-1700000100", (d / name).as_uri(), "100")
    assert created.startswith("2023-11-1") and created[10] == "T"
    assert lines[1].index("file://") == lines[0].index("Location")  # aligned columns

    assert snapshot.prune_snapshots(d, "on-demand", 2) == ["on-demand-node1-1700000100"]
    assert main(["etcd-snapshot", "prune", "--etcd-snapshot-dir", str(d), "--snapshot-retention", "1"]) == 0
    assert sorted(p.name for p in d.iterdir() if not p.name.startswith(".")) == [
        "etcd-snapshot-node1-1700000000", "etcd-snapshot-node1-1700000400", "on-demand-node1-1700000300"]
    capsys.readouterr()
    assert main(["etcd-snapshot", "delete", "--etcd-snapshot-dir", str(d), "etcd-snapshot-node1-1700000000",
                 "nope", "../snaps"]) == 1
    captured = capsys.readouterr()
    assert "etcd-snapshot-node1-1700000000 deleted" in captured.out
    assert "nope not found" in captured.err and "../snaps not found" in captured.err
    assert not (d / "etcd-snapshot-node1-1700000000").exists() and d.exists()
    with pytest.raises(snapshot.SnapshotError):
        snapshot.prune_snapshots(d, "on-demand", 0)


async def test_cli_save_names_the_file_as_k3s_and_refuses_without_a_datastore(tmp_path, capsys):
    assert main(["etcd-snapshot", "save", "--data-dir", str(tmp_path)]) == 1
    assert "no cluster CA at" in capsys.readouterr().err
    _write_ca(tmp_path)
    assert main(["etcd-snapshot", "save", "--data-dir", str(tmp_path)]) == 1
    assert "no datastore at" in capsys.readouterr().err
    revision = await _fill(tmp_path, 5)
    before = int(time.time())
    assert main(["etcd-snapshot", "save", "--data-dir", str(tmp_path), "--node-name", "Node1",
                 "--name", "nightly"]) == 0
    (saved,) = snapshot.list_snapshots(snapshot.default_dir(tmp_path))
    base, node, stamp = saved.name.rsplit("-", 2)
    assert (base, node) == ("nightly", "node1") and before <= int(stamp) <= time.time()
    assert f"Snapshot {saved.name} saved." in capsys.readouterr().out
    # A bare `etcd-snapshot` saves too, as k3s' did.
    assert main(["etcd-snapshot", "--data-dir", str(tmp_path), "--node-name", "n2"]) == 0
    assert any(s.name.startswith("on-demand-n2-") for s in snapshot.list_snapshots(snapshot.default_dir(tmp_path)))
    info = SqliteSnapshots(_db(tmp_path)).verify(saved.path, hashlib.sha256(snapshot.ca_path(tmp_path)
                                                                            .read_bytes()).hexdigest())
    assert (info.revision, info.keys, info.node) == (revision, 5, "node1")


async def test_bad_snapshots_are_refused_before_anything_changes(tmp_path, capsys):
    cluster = _write_ca(tmp_path)
    await _fill(tmp_path, 50)
    backend = SqliteSnapshots(_db(tmp_path))
    good = tmp_path / "good"
    backend.save(good, cluster, "n1")
    truncated = tmp_path / "truncated"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"not a database at all\n" * 20)
    plain_sqlite = tmp_path / "plain.db"
    sqlite3.connect(plain_sqlite).execute("CREATE TABLE t (x)").connection.close()
    foreign = tmp_path / "foreign"
    backend.save(foreign, OTHER_CLUSTER, "n1")
    db_bytes = _db(tmp_path).read_bytes()
    cases = {truncated: "truncated", garbage: "not an SQLite database", plain_sqlite: "lacks the datastore",
             foreign: "belongs to another cluster", tmp_path / "missing": "does not exist"}
    for path, message in cases.items():
        with pytest.raises(snapshot.SnapshotError, match=message):
            backend.verify(path, cluster)
        rc = main(["server", "--data-dir", str(tmp_path), "--cluster-reset", "--cluster-reset-restore-path",
                   str(path)])
        err = capsys.readouterr().err
        assert rc == 1 and "restore refused, nothing was changed" in err and message in err
    assert _db(tmp_path).read_bytes() == db_bytes
    assert sorted(p.name for p in _db(tmp_path).parent.iterdir() if "sqlite-old" in p.name) == []
    # A data dir with no cluster CA (a new machine) cannot say the snapshot is its cluster's.
    fresh = tmp_path / "fresh"
    assert main(["server", "--data-dir", str(fresh), "--cluster-reset", "--cluster-reset-restore-path",
                 str(good)]) == 1
    assert "no cluster CA at" in capsys.readouterr().err and not _db(fresh).exists()


async def test_restore_continues_revisions_above_the_old_store_and_compacts_history(tmp_path, capsys):
    cluster = _write_ca(tmp_path)
    await _fill(tmp_path, 20)
    backend = SqliteSnapshots(_db(tmp_path))
    snap = tmp_path / "snap"
    taken = backend.save(snap, cluster, "n1")
    store = await open_sqlite_store(_db(tmp_path))
    await store.delete("/registry/configmaps/default/cm0")
    for i in range(30):
        await store.update("/registry/configmaps/default/cm1", b"later%d" % i)
    await store.create("/registry/configmaps/default/after", b"after")
    old_revision = store.revision
    # A running server holds the datastore: restore refuses and changes nothing.
    with pytest.raises(snapshot.SnapshotError, match="in use by a running server"):
        backend.restore(snap, cluster)
    await store.close()

    assert main(["server", "--data-dir", str(tmp_path), "--cluster-reset", "--cluster-reset-restore-path",
                 str(snap)]) == 0
    out = capsys.readouterr().out
    assert "restart without --cluster-reset flag now" in out
    (old_dir,) = [p for p in _db(tmp_path).parent.iterdir() if p.name.startswith("sqlite-old-")]
    assert "/registry/configmaps/default/after" in _keys(old_dir / "state.db") and str(old_dir) in out

    store = await open_sqlite_store(_db(tmp_path))
    try:
        assert store.revision == store.compacted_revision == old_revision + 1
        assert (await store.get("/registry/configmaps/default/cm0")).value == b"v0"
        cm1 = await store.get("/registry/configmaps/default/cm1")
        assert cm1.value == b"v1" and cm1.mod_revision <= taken.revision
        assert await store.get("/registry/configmaps/default/after") is None
        with pytest.raises(CompactedError):
            await store.events_since("/registry/", old_revision)
        assert (await store.create("/registry/configmaps/default/new", b"n")).mod_revision == old_revision + 2
    finally:
        await store.close()


async def test_a_store_will_not_open_while_a_restore_holds_the_datastore(tmp_path):
    from k8py.storage.sqlite_snapshot import _exclusive
    _db(tmp_path).parent.mkdir(parents=True)
    with _exclusive(_db(tmp_path)):
        with pytest.raises(StoreError, match="being restored"):
            await open_sqlite_store(_db(tmp_path))
    store = await open_sqlite_store(_db(tmp_path))
    await store.close()


def test_server_snapshot_flags_are_checked_before_starting(tmp_path, capsys):
    base = ["server", "--data-dir", str(tmp_path)]
    assert main(base + ["--cluster-reset-restore-path", "x"]) == 2
    assert "--cluster-reset required with --cluster-reset-restore-path" in capsys.readouterr().err
    assert main(base + ["--etcd-snapshot-schedule-cron", "61 * * * *"]) == 2
    assert "--etcd-snapshot-schedule-cron" in capsys.readouterr().err
    assert main(base + ["--etcd-snapshot-retention", "0"]) == 2
    assert main(base + ["--cluster-reset"]) == 1
    assert "needs --cluster-reset-restore-path" in capsys.readouterr().err
    assert not _db(tmp_path).exists()


async def test_scheduled_snapshots_are_taken_and_pruned_to_the_retention(tmp_path):
    cluster = _write_ca(tmp_path)
    await _fill(tmp_path, 3)
    args = Namespace(etcd_snapshot_schedule_cron="@every 1s", etcd_snapshot_dir=tmp_path / "snaps",
                     etcd_snapshot_name="etcd-snapshot", etcd_snapshot_retention=2, datastore_endpoint="",
                     node_name="n1", etcd_disable_snapshots=False)
    (tmp_path / "snaps").mkdir()
    (tmp_path / "snaps" / "on-demand-n1-1000000000").write_bytes(b"kept: not a scheduled one")
    seen: set[str] = set()
    task = server_snapshots.start_scheduled(args, tmp_path)
    try:
        deadline = time.monotonic() + 30
        while len(seen) < 4:
            assert time.monotonic() < deadline, "three scheduled snapshots in 30 s"
            seen |= {s.name for s in snapshot.list_snapshots(tmp_path / "snaps")}
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
    scheduled = [s for s in snapshot.list_snapshots(tmp_path / "snaps") if s.name.startswith("etcd-snapshot-n1-")]
    assert len(scheduled) <= 2 and len(seen) >= 4  # the on-demand one plus three scheduled
    assert (tmp_path / "snaps" / "on-demand-n1-1000000000").exists()
    assert SqliteSnapshots(_db(tmp_path)).verify(scheduled[-1].path, cluster).keys == 3
    assert server_snapshots.start_scheduled(Namespace(**{**vars(args), "etcd_disable_snapshots": True}),
                                            tmp_path) is None
