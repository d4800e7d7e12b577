"""Snapshots of a `--cluster-init` server's etcd, as an operator uses them: the schedule takes and
prunes them, `k8py etcd-snapshot save` finds the member by the data dir, and `--cluster-reset
--cluster-reset-restore-path` brings the API state back with resourceVersions that keep growing
(an old one gets 410). Agents reconciling after a restore is the datastore-neutral part, shown on
SQLite by test_snapshot_restore.py."""

from __future__ import annotations

import re

from k8py.storage import snapshot
from tests.e2e.conftest import free_port, start_server, wait_for
from tests.e2e.test_snapshot_restore import SERVER_FLAGS, _k8py, _list_rv, _watch_from


def test_cluster_init_snapshots_scheduled_saved_and_restored(tmp_path):
    data_dir = tmp_path / "data"
    member = ["--cluster-init", "--etcd-client-port", str(free_port()), "--etcd-peer-port", str(free_port())]
    flags = [f for f in SERVER_FLAGS if f != "--etcd-disable-snapshots"]
    server = start_server(data_dir, extra=[*flags, *member, "--etcd-snapshot-schedule-cron", "@every 1s",
                                           "--etcd-snapshot-retention", "2"])
    try:
        directory = snapshot.default_dir(data_dir)
        seen: set[str] = set()

        def three_scheduled() -> bool:
            seen.update(s.name for s in snapshot.list_snapshots(directory) if s.name.startswith("etcd-snapshot-"))
            return len(seen) >= 3
        wait_for(three_scheduled, timeout=60, what="three scheduled snapshots")
        wait_for(lambda: len([s for s in snapshot.list_snapshots(directory)
                              if s.name.startswith("etcd-snapshot-")]) <= 2, timeout=30, what="pruned to 2")

        server.kubectl("create", "configmap", "kept")
        server.kubectl("create", "configmap", "deleted-later")
        saved = _k8py("etcd-snapshot", "save", "--data-dir", str(data_dir), "--name", "story",
                      "--etcd-snapshot-dir", str(tmp_path / "mine"))
        assert saved.returncode == 0, saved.stderr
        snapshot_revision = int(re.search(r"revision (\d+)", saved.stdout).group(1))
        (snap,) = snapshot.list_snapshots(tmp_path / "mine")
        server.kubectl("delete", "configmap", "deleted-later")
        server.kubectl("create", "configmap", "created-later")
        old_rv = _list_rv(server)
        assert int(old_rv) > snapshot_revision
        server.stop()

        restored = _k8py("server", "--data-dir", str(data_dir), "--cluster-reset", "--cluster-reset-restore-path",
                         str(snap.path), "--etcd-peer-port", member[4])
        assert restored.returncode == 0, restored.stderr
        assert "restart without --cluster-reset flag now" in restored.stdout
        assert any(p.name.startswith("etcd-old-") for p in (data_dir / "server" / "db").iterdir())
        server = start_server(data_dir, port=server.port, extra=[*SERVER_FLAGS, *member])

        names = {cm["metadata"]["name"] for cm in server.kubectl_json("get", "configmaps")["items"]}
        assert {"kept", "deleted-later"} <= names and "created-later" not in names
        server.kubectl("create", "configmap", "after-restore")
        new_rv = int(server.kubectl_json("get", "configmap", "after-restore")["metadata"]["resourceVersion"])
        assert new_rv > int(old_rv)
        status, body = _watch_from(server, old_rv)
        assert status == 410 or '"code":410' in body.replace(" ", ""), (status, body[:300])
    finally:
        server.stop()
