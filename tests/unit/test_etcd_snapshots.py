"""Snapshots of an etcd datastore (k8py/storage/etcd/snapshot.py) against a real etcd on
loopback: save under writes holds exactly the writes at or below its revision, ls/prune through
the CLI, bad snapshots refused before anything changes, and `--cluster-reset` of a
--cluster-init member: the snapshot's keys come back, revisions continue above the replaced
member's and older history is compacted."""

from __future__ import annotations

import asyncio
import hashlib
import shutil

import pytest

from k8py.cli.main import main
from k8py.storage import snapshot
from k8py.storage.etcd import EtcdConfig, open_etcd_store
from k8py.storage.etcd.snapshot import CLUSTER_ID_KEY, EtcdSnapshots
from k8py.storage.interface import CompactedError
from k8py.storage.snapshot_backends import member_dir
from tests.etcd_server import start_etcd

OTHER_CLUSTER = "b" * 64


def _write_ca(data_dir, text: bytes = b"-----BEGIN CERTIFICATE-----\netcd test\n") -> str:
    ca = snapshot.ca_path(data_dir)
    ca.parent.mkdir(parents=True, exist_ok=True)
    ca.write_bytes(text)
    return hashlib.sha256(text).hexdigest()


async def test_save_under_writes_then_restore_of_the_member_continues_revisions(tmp_path, capsys):
    cluster = _write_ca(tmp_path)
    member = member_dir(tmp_path)
    etcd = start_etcd(member.parent, member=member.name)  # where --cluster-init keeps it
    try:
        store = await open_etcd_store(EtcdConfig.parse(etcd.endpoint))
        written: dict[str, int] = {}
        stop = asyncio.Event()

        async def writer(w: int) -> None:
            i = 0
            while not stop.is_set() or i < 20:
                kv = await store.create(f"/registry/configmaps/w{w}/k{i}", b"v")
                written[kv.key] = kv.mod_revision
                i += 1

        writers = [asyncio.create_task(writer(w)) for w in range(4)]
        await asyncio.sleep(0)
        while len(written) < 40:
            await asyncio.sleep(0.01)
        snap = tmp_path / "snaps" / "on-demand-n1-1000000000"
        info = await asyncio.to_thread(EtcdSnapshots(EtcdConfig.parse(etcd.endpoint)).save, snap, cluster, "n1")
        stop.set()
        await asyncio.gather(*writers)
        assert snap.stat().st_mode & 0o777 == 0o600 and not list(snap.parent.glob(".*"))
        below = {k for k, rev in written.items() if rev <= info.revision}
        assert below and len(below) < len(written), "writes went on before and after the snapshot"
        assert info.keys == len(below)
        # Changes after the snapshot: a delete, an update and new keys push the revision on.
        some = sorted(below)[0]
        await store.delete(some)
        for i in range(30):
            await store.update(sorted(below)[1], b"later%d" % i)
        old_revision = store.revision
        await store.close()
        verified = EtcdSnapshots(None).verify(snap, cluster)
        assert verified.revision == info.revision and verified.cluster_id == cluster

        # A running member is never replaced.
        args = ["server", "--data-dir", str(tmp_path), "--cluster-reset", "--cluster-reset-restore-path", str(snap)]
        assert main(args) == 1
        assert "is running: stop the server" in capsys.readouterr().err
    finally:
        etcd.stop()

    assert main(args) == 0
    out = capsys.readouterr().out
    assert "restart without --cluster-reset flag now" in out
    (old_dir,) = [p for p in member.parent.iterdir() if p.name.startswith("etcd-old-")]
    assert (old_dir / "member" / "snap" / "db").exists() and str(old_dir) in out

    etcd = start_etcd(member.parent, member=member.name)
    try:
        store = await open_etcd_store(EtcdConfig.parse(etcd.endpoint))
        try:
            kvs, revision, _ = await store.list("/registry/configmaps/")
            assert {kv.key for kv in kvs} == below  # exactly the writes at or below the snapshot's revision
            assert revision > old_revision and store.compacted_revision == revision
            assert (await store.get(sorted(below)[1])).value == b"v"
            with pytest.raises(CompactedError):
                await store.events_since("/registry/", old_revision)
            assert (await store.create("/registry/configmaps/x/new", b"n")).mod_revision == revision + 1
        finally:
            await store.close()
        assert etcd.etcdctl("get", CLUSTER_ID_KEY.decode(), "--print-value-only").stdout.strip() == cluster
    finally:
        etcd.stop()


async def test_cli_save_ls_prune_against_an_external_etcd(etcd, tmp_path, capsys):
    etcd.wipe()
    cluster = _write_ca(tmp_path)
    store = await open_etcd_store(EtcdConfig.parse(etcd.endpoint))
    await asyncio.gather(*(store.create(f"/registry/configmaps/default/cm{i}", b"v") for i in range(5)))
    await store.close()
    directory = tmp_path / "snaps"
    directory.mkdir()
    (directory / "nightly-n1-1000000000").write_bytes(b"an older one, pruned")
    base = ["etcd-snapshot", "--data-dir", str(tmp_path), "--datastore-endpoint", etcd.endpoint,
            "--etcd-snapshot-dir", str(directory)]
    assert main(base + ["save", "--name", "nightly", "--node-name", "N1"]) == 0
    out = capsys.readouterr().out
    (saved,) = [s for s in snapshot.list_snapshots(directory) if s.created > 1000000000]
    assert saved.name.startswith("nightly-n1-") and f"Snapshot {saved.name} saved." in out
    assert EtcdSnapshots(None).verify(saved.path, cluster).revision > 0 and ", 5 keys" in out
    assert main(base + ["ls"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["Name", "Location", "Size", "Created"]
    assert any(line.split()[:3] == [saved.name, saved.location, str(saved.size)] for line in lines[1:])
    assert main(base + ["prune", "--name", "nightly", "--snapshot-retention", "1"]) == 0
    assert "Snapshot nightly-n1-1000000000 pruned" in capsys.readouterr().out
    assert [s.name for s in snapshot.list_snapshots(directory)] == [saved.name]
    # This etcd now holds this cluster's id: another data dir's save is refused.
    other = tmp_path / "other"
    _write_ca(other, b"another CA")
    assert main(["etcd-snapshot", "save", "--data-dir", str(other), "--datastore-endpoint", etcd.endpoint]) == 1
    assert "holds another cluster's data" in capsys.readouterr().err
    assert not list((other / "server" / "db" / "snapshots").iterdir())


async def test_bad_snapshots_are_refused_before_anything_changes(etcd, tmp_path, capsys):
    etcd.wipe()
    cluster = _write_ca(tmp_path)
    backend = EtcdSnapshots(EtcdConfig.parse(etcd.endpoint))
    good = tmp_path / "good"
    backend.save(good, cluster, "n1")
    truncated = tmp_path / "truncated"
    truncated.write_bytes(good.read_bytes()[:-1000])
    damaged = tmp_path / "damaged"
    data = bytearray(good.read_bytes())
    data[600] ^= 0xFF
    damaged.write_bytes(bytes(data))
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"x" * (512 * 4 + 32))
    anonymous = tmp_path / "anonymous"  # etcdctl's own snapshot, of an etcd k8py never saved
    etcd.wipe()
    etcd.etcdctl("snapshot", "save", str(anonymous))
    foreign = tmp_path / "foreign"
    backend.save(foreign, OTHER_CLUSTER, "n1")
    etcd.wipe()
    member = member_dir(tmp_path)
    (member / "member" / "snap").mkdir(parents=True)
    (member / "member" / "snap" / "db").write_bytes(b"the current member: untouched")
    cases = {truncated: "not a complete etcd snapshot", damaged: "fails its SHA-256 check",
             garbage: "fails its SHA-256 check", anonymous: "does not say which cluster",
             foreign: "belongs to another cluster", tmp_path / "missing": "does not exist"}
    for path, message in cases.items():
        with pytest.raises(snapshot.SnapshotError, match=message):
            backend.verify(path, cluster)
        rc = main(["server", "--data-dir", str(tmp_path), "--cluster-reset", "--cluster-reset-restore-path",
                   str(path)])
        err = capsys.readouterr().err
        assert rc == 1 and "restore refused, nothing was changed" in err and message in err
    assert (member / "member" / "snap" / "db").read_bytes() == b"the current member: untouched"
    assert sorted(p.name for p in member.parent.iterdir()) == ["etcd"]
    # An external datastore is the operator's to restore, with etcd's tools (as k3s).
    assert main(["server", "--data-dir", str(tmp_path), "--datastore-endpoint", etcd.endpoint, "--cluster-reset",
                 "--cluster-reset-restore-path", str(good)]) == 1
    assert "does not restore an external datastore" in capsys.readouterr().err
    shutil.rmtree(member)
