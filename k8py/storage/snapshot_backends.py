"""Which snapshot backend serves a server's datastore (kept apart from
`k8py.storage.snapshot`, which each backend imports, so nothing imports in a circle)."""

from __future__ import annotations

from pathlib import Path

from k8py.storage.snapshot import SnapshotBackend, SnapshotError
from k8py.storage.sqlite import datastore_path
from k8py.storage.sqlite_snapshot import SqliteSnapshots


def backend_for(data_dir: Path, datastore_endpoint: str = "") -> SnapshotBackend:
    """The snapshot backend of the datastore a server with these flags uses."""
    if datastore_endpoint:
        raise SnapshotError("snapshots of an external datastore (--datastore-endpoint) are not supported yet")
    return SqliteSnapshots(datastore_path(data_dir))
