"""Datastore snapshots, as `k3s etcd-snapshot` keeps them: the backend-neutral part.

A snapshot is one file in the snapshot directory (default
`<data-dir>/server/db/snapshots`, as k3s), named `<base>-<node>-<unix time>`
(base `on-demand` for `k8py etcd-snapshot save`, `etcd-snapshot` for the
server's schedule). This module names, lists, deletes and prunes those files;
what is inside one is the backend's business (SnapshotBackend: SQLite's
online backup here, etcd's snapshot API in the etcd backend).

Which cluster a snapshot belongs to: the SHA-256 of the cluster CA
certificate (`server/tls/server-ca.crt`), the same fingerprint the secure
join token (`K10<sha256>::server:<token>`) pins. Every snapshot records it
and restore refuses a snapshot whose fingerprint differs from the data dir's
CA, since the restored objects (service-account tokens, node certificates,
Secrets signed or issued under that CA) would not work under another one.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

DEFAULT_SCHEDULED_NAME = "etcd-snapshot"
DEFAULT_ON_DEMAND_NAME = "on-demand"
DEFAULT_RETENTION = 5
DEFAULT_SCHEDULE = "0 */12 * * *"

_TRAILING_TIME = re.compile(r"-(\d{9,11})$")


class SnapshotError(Exception):
    """A snapshot cannot be saved, read or restored; the message says why, for the operator."""


@dataclass(frozen=True)
class SnapshotInfo:
    """What a snapshot says about itself (read by verify, written by save)."""
    path: Path
    cluster_id: str       # sha256 of the cluster CA certificate, hex
    revision: int         # the datastore revision the snapshot was taken at
    node: str
    created: int          # unix time
    keys: int             # how many keys (objects) it holds


@dataclass(frozen=True)
class RestoreResult:
    snapshot: SnapshotInfo
    revision: int         # the restored store's revision: above anything the old store handed out
    old_data: Path | None  # where the replaced datastore was moved, if there was one


class SnapshotBackend(ABC):
    """How one datastore saves, checks and restores snapshots."""

    @abstractmethod
    def save(self, dest: Path, cluster_id: str, node: str) -> SnapshotInfo:
        """Write a consistent snapshot of the live datastore to `dest` (atomically: a
        failed save leaves no file at `dest`)."""

    @abstractmethod
    def verify(self, path: Path, cluster_id: str | None) -> SnapshotInfo:
        """Check that `path` is a complete snapshot of this backend's kind and, given a
        cluster_id, of that cluster. Raises SnapshotError; changes nothing."""

    @abstractmethod
    def restore(self, path: Path, cluster_id: str | None) -> RestoreResult:
        """Replace the (stopped) datastore with the snapshot. Verifies first and
        changes nothing if that fails. The restored revision is above every revision
        the replaced datastore reached and all earlier history is compacted, so a
        client holding an older resourceVersion gets 410 Expired and relists."""


def cluster_id_of(ca_cert: Path) -> str:
    """The cluster's identity: the CA certificate's SHA-256, as the K10 token pins it."""
    try:
        return hashlib.sha256(ca_cert.read_bytes()).hexdigest()
    except FileNotFoundError:
        raise SnapshotError(f"no cluster CA at {ca_cert}: this data dir has no cluster (start the server "
                            f"once, or copy the old server's server/tls directory here)") from None


# ---- the snapshot directory ---------------------------------------------------

def default_dir(data_dir: Path) -> Path:
    return data_dir / "server" / "db" / "snapshots"


def snapshot_name(base: str, node: str, now: float | None = None) -> str:
    return f"{base}-{node}-{int(time.time() if now is None else now)}"


@dataclass(frozen=True)
class SnapshotFile:
    name: str
    path: Path
    size: int
    created: int  # unix time: from the name (as k3s orders them), else the file's mtime

    @property
    def location(self) -> str:
        return self.path.resolve().as_uri()


def list_snapshots(directory: Path) -> list[SnapshotFile]:
    """Snapshots in `directory`, oldest first (ties by name). Partial files of a
    save in progress (dot-files) are not snapshots."""
    found = []
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return []
    for entry in entries:
        if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
            continue
        stat = entry.stat()
        match = _TRAILING_TIME.search(entry.name)
        created = int(match.group(1)) if match else int(stat.st_mtime)
        found.append(SnapshotFile(entry.name, Path(entry.path), stat.st_size, created))
    found.sort(key=lambda s: (s.created, s.name))
    return found


def delete_snapshots(directory: Path, names: list[str]) -> tuple[list[str], list[str]]:
    """Delete the named snapshots; returns (deleted, not found). Names are file
    names in `directory`, never paths elsewhere."""
    deleted, missing = [], []
    for name in names:
        path = directory / name
        if "/" in name or name in ("", ".", "..") or not path.is_file():
            missing.append(name)
            continue
        path.unlink()
        deleted.append(name)
    return deleted, missing


def prune_snapshots(directory: Path, base: str, retention: int) -> list[str]:
    """Keep the `retention` newest snapshots whose name starts with `<base>-`;
    delete the older ones (by the time in their names, as k3s does). Returns
    the names deleted."""
    if retention < 1:
        raise SnapshotError(f"snapshot retention must be at least 1, not {retention}")
    ours = [s for s in list_snapshots(directory) if s.name.startswith(base + "-")]
    doomed = ours[:max(0, len(ours) - retention)]
    for snap in doomed:
        snap.path.unlink(missing_ok=True)
    return [s.name for s in doomed]


def ca_path(data_dir: Path) -> Path:
    return data_dir / "server" / "tls" / "server-ca.crt"
