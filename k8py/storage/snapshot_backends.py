"""Which snapshot backend serves a server's datastore (kept apart from
`k8py.storage.snapshot`, which each backend imports, so nothing imports in a circle)."""

from __future__ import annotations

from pathlib import Path

from k8py.storage.snapshot import SnapshotBackend, SnapshotError
from k8py.storage.sqlite import datastore_path
from k8py.storage.sqlite_snapshot import SqliteSnapshots


def member_dir(data_dir: Path) -> Path:
    """The --cluster-init etcd member's data dir (as k8py/cli/datastore_flags.py places it)."""
    return data_dir / "server" / "db" / "etcd"


def backend_for(data_dir: Path, datastore_endpoint: str = "", *, cafile=None, certfile=None, keyfile=None,
                cluster_init: bool | None = None, peer_port: int = 2380) -> SnapshotBackend:
    """The snapshot backend of the datastore a server with these flags uses.
    cluster_init None: a data dir with a --cluster-init member uses it (as `k3s
    etcd-snapshot` finds its embedded etcd)."""
    if datastore_endpoint:
        return _etcd(datastore_endpoint, cafile, certfile, keyfile, None)
    member = member_dir(data_dir)
    if cluster_init or (cluster_init is None and (member / "member").is_dir()):
        from k8py.storage.etcd.member import CLIENT_URL_FILE
        url_file = member.parent / CLIENT_URL_FILE
        url = url_file.read_text().strip() if url_file.exists() else "https://127.0.0.1:2379"
        tls = data_dir / "server" / "tls"
        return _etcd(url, tls / "server-ca.crt", tls / "etcd-client.crt", tls / "etcd-client.key", member,
                     peer_url=f"http://127.0.0.1:{peer_port}")
    return SqliteSnapshots(datastore_path(data_dir))


def backend_from_args(data_dir: Path, args) -> SnapshotBackend:
    """backend_for with the datastore flags of `k8py server` or `k8py etcd-snapshot`."""
    return backend_for(data_dir, getattr(args, "datastore_endpoint", "") or "",
                       cafile=getattr(args, "datastore_cafile", None),
                       certfile=getattr(args, "datastore_certfile", None),
                       keyfile=getattr(args, "datastore_keyfile", None),
                       cluster_init=_cluster_init(args),
                       peer_port=getattr(args, "etcd_peer_port", 2380))


def _cluster_init(args) -> bool | None:
    """A running `k8py server` without --cluster-init serves SQLite even if an old member
    dir is there; `etcd-snapshot` and `--cluster-reset` find the member by its dir."""
    if getattr(args, "cluster_init", False):
        return True
    if not hasattr(args, "cluster_init") or getattr(args, "cluster_reset", False):
        return None
    return False


def _etcd(endpoint: str, cafile, certfile, keyfile, member: Path | None, peer_url: str | None = None):
    from k8py.storage.etcd.connection import EtcdConfig
    from k8py.storage.etcd.snapshot import EtcdSnapshots
    try:
        config = EtcdConfig.parse(endpoint, cafile, certfile, keyfile)
    except ValueError as err:
        if member is None:
            raise SnapshotError(f"--datastore-endpoint: {err}") from None
        # The member never ran here (no client certificate yet): restore still works, save says why not.
        return EtcdSnapshots(None, member, peer_url=peer_url,
                             unreachable=f"{err} (start the server with --cluster-init once)")
    return EtcdSnapshots(config, member, peer_url=peer_url)
