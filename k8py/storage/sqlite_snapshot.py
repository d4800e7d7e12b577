"""Snapshots of the embedded SQLite datastore.

Save: SQLite's online backup API copies the database through one read
transaction, so the copy is the state at one commit even while the server's
writer keeps committing (WAL mode: the reader never blocks the writer, nor
the writer the reader). It runs in any process on the server machine (the
`k8py etcd-snapshot` command, or the server's own schedule), against the data
dir, as k3s' command does. The copy is switched out of WAL mode so it is one
self-contained file, gets a `snapshot_info` table (format, cluster, revision,
node, time, key count), and only then is renamed into place.

Verify (before anything is changed): an SQLite header, a file as long as its
header says (truncation), SQLite's quick_check, the store's tables, a
`snapshot_info` of our format, and the cluster's CA fingerprint.

Restore (server stopped): the snapshot's tables become the new database,
with history dropped and revision = compacted = one above the highest
revision either the replaced database or the snapshot reached (as
`etcdutl snapshot restore --bump-revision --mark-compacted` does for etcd).
Every object keeps the resourceVersion it had in the snapshot; every
resourceVersion a client saw before is older than the compaction, so its
watch or list from there gets 410 Expired and it relists. The replaced
database moves to `server/db/sqlite-old-<unix time>/`, as k3s keeps
`etcd-old-<time>`.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import time
from pathlib import Path

from k8py.storage.sqlite import lock_path
from k8py.storage.snapshot import RestoreResult, SnapshotBackend, SnapshotError, SnapshotInfo

log = logging.getLogger(__name__)

FORMAT = "k8py-sqlite-snapshot/1"
_HEADER = b"SQLite format 3\x00"
_STORE_TABLES = {"kv", "log", "meta"}


class SqliteSnapshots(SnapshotBackend):
    def __init__(self, db_path: Path):
        self.db_path = Path(db_path)

    # ---- save ---------------------------------------------------------------

    def save(self, dest: Path, cluster_id: str, node: str) -> SnapshotInfo:
        if not self.db_path.is_file():
            raise SnapshotError(f"no datastore at {self.db_path} (is --data-dir right?)")
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.with_name(f".{dest.name}.partial")
        partial.unlink(missing_ok=True)
        created = int(time.time())
        try:
            source = sqlite3.connect(self.db_path, timeout=30.0)
            try:
                source.execute("PRAGMA query_only = 1")
                copy = sqlite3.connect(partial)
                try:
                    # Nothing to roll back into and one fsync of our own at the end.
                    copy.execute("PRAGMA synchronous=OFF")
                    copy.execute("PRAGMA journal_mode=OFF")
                    # pages=-1: the whole database in one step, i.e. one read
                    # transaction and one consistent state.
                    source.backup(copy, pages=-1)
                finally:
                    copy.close()
            finally:
                source.close()
            info = _stamp(partial, cluster_id, node, created)
            os.chmod(partial, 0o600)  # it holds every Secret the datastore does
            with open(partial, "rb") as f:
                os.fsync(f.fileno())
            os.replace(partial, dest)
        except sqlite3.Error as err:
            partial.unlink(missing_ok=True)
            raise SnapshotError(f"snapshot of {self.db_path} failed: {err}") from err
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return SnapshotInfo(dest, info.cluster_id, info.revision, info.node, info.created, info.keys)

    # ---- verify -------------------------------------------------------------

    def verify(self, path: Path, cluster_id: str | None) -> SnapshotInfo:
        path = Path(path)
        if not path.is_file():
            raise SnapshotError(f"snapshot {path} does not exist")
        _check_length(path)
        try:
            conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
        except sqlite3.Error as err:
            raise SnapshotError(f"{path} is not a k8py snapshot: {err}") from err
        try:
            check = [row[0] for row in conn.execute("PRAGMA quick_check")]
            if check != ["ok"]:
                raise SnapshotError(f"snapshot {path} is corrupt: {'; '.join(check[:3])}")
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not _STORE_TABLES <= tables or "snapshot_info" not in tables:
                raise SnapshotError(f"{path} is not a k8py snapshot (it lacks the datastore's tables)")
            info = _read_info(conn, path)
        except sqlite3.DatabaseError as err:
            raise SnapshotError(f"{path} is not a k8py snapshot: {err}") from err
        finally:
            conn.close()
        if cluster_id is not None and info.cluster_id != cluster_id:
            raise SnapshotError(f"snapshot {path} belongs to another cluster: its cluster CA has SHA-256 "
                                f"{info.cluster_id}, this data dir's has {cluster_id}")
        return info

    # ---- restore ------------------------------------------------------------

    def restore(self, path: Path, cluster_id: str | None) -> RestoreResult:
        info = self.verify(path, cluster_id)
        db_dir = self.db_path.parent
        db_dir.mkdir(parents=True, exist_ok=True)
        with _exclusive(self.db_path):
            old_revision = self._old_revision()
            revision = max(old_revision, info.revision) + 1
            staged = db_dir / f".{self.db_path.name}.restoring"
            _remove_db_files(staged)
            try:
                _stage(Path(path), staged, revision)
            except BaseException:
                _remove_db_files(staged)
                raise
            old_data = self._set_aside()
            os.replace(staged, self.db_path)
        log.info("restored %s at revision %d (snapshot revision %d, replaced store's %d)",
                 path, revision, info.revision, old_revision)
        return RestoreResult(info, revision, old_data)

    def _old_revision(self) -> int:
        """The highest revision the replaced database handed out (0 if there is none)."""
        if not self.db_path.exists():
            return 0
        try:
            conn = sqlite3.connect(self.db_path, timeout=30.0)
            try:
                (meta,) = conn.execute("SELECT value FROM meta WHERE name = 'revision'").fetchone()
                (logged,) = conn.execute("SELECT COALESCE(MAX(rev), 0) FROM log").fetchone()
                return max(meta, logged)
            finally:
                conn.close()
        except (sqlite3.Error, TypeError) as err:
            raise SnapshotError(
                f"cannot read the revision of the datastore being replaced ({self.db_path}: {err}); "
                f"restoring without it could hand out resourceVersions clients have already seen. "
                f"Move {self.db_path} away if it is beyond repair, then restore again") from err

    def _set_aside(self) -> Path | None:
        """Move the replaced database (with its WAL) to server/db/sqlite-old-<time>/."""
        files = [p for p in _db_files(self.db_path) if p.exists()]
        if not files:
            return None
        old = self.db_path.parent / f"sqlite-old-{int(time.time())}"
        suffix = 0
        while old.exists():
            suffix += 1
            old = self.db_path.parent / f"sqlite-old-{int(time.time())}-{suffix}"
        old.mkdir()
        for p in files:
            os.replace(p, old / p.name)
        return old


def _stamp(partial: Path, cluster_id: str, node: str, created: int) -> SnapshotInfo:
    """Make the fresh copy a self-contained file and record what it is."""
    conn = sqlite3.connect(partial, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=DELETE")
        revision = conn.execute("SELECT value FROM meta WHERE name = 'revision'").fetchone()[0]
        (keys,) = conn.execute("SELECT COUNT(*) FROM kv").fetchone()
        values = {"format": FORMAT, "cluster_id": cluster_id, "revision": str(revision), "node": node,
                  "created": str(created), "keys": str(keys)}
        conn.execute("BEGIN")
        conn.execute("CREATE TABLE snapshot_info (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.executemany("INSERT INTO snapshot_info VALUES (?, ?)", values.items())
        conn.execute("COMMIT")
    finally:
        conn.close()
    return SnapshotInfo(partial, cluster_id, revision, node, created, keys)


def _check_length(path: Path) -> None:
    """A truncated copy is shorter than the page count its header records."""
    with open(path, "rb") as f:
        header = f.read(100)
    if len(header) < 100 or not header.startswith(_HEADER):
        raise SnapshotError(f"{path} is not a k8py snapshot (not an SQLite database)")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    size = path.stat().st_size
    if pages and size < page_size * pages:
        raise SnapshotError(f"snapshot {path} is truncated: {size} bytes of {page_size * pages}")


def _read_info(conn: sqlite3.Connection, path: Path) -> SnapshotInfo:
    values = dict(conn.execute("SELECT name, value FROM snapshot_info"))
    if values.get("format") != FORMAT:
        raise SnapshotError(f"{path} is not a k8py SQLite snapshot (format {values.get('format')!r})")
    try:
        return SnapshotInfo(path, values["cluster_id"], int(values["revision"]), values.get("node", ""),
                            int(values["created"]), int(values.get("keys", 0)))
    except (KeyError, ValueError) as err:
        raise SnapshotError(f"snapshot {path} has a damaged snapshot_info table ({err})") from err


def _stage(snapshot: Path, staged: Path, revision: int) -> None:
    """The new database, next to the old one: the snapshot's state, no history,
    revision and compaction at `revision`."""
    source = sqlite3.connect(f"{snapshot.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
    try:
        target = sqlite3.connect(staged, isolation_level=None)
        try:
            # A scratch file until it is renamed into place: no journal, one fsync at the end.
            target.execute("PRAGMA synchronous=OFF")
            target.execute("PRAGMA journal_mode=OFF")
            source.backup(target)
            target.execute("BEGIN")
            target.execute("DROP TABLE snapshot_info")
            # All history goes (cheaper dropped than deleted row by row); the store
            # creates the empty table again when it opens the database.
            target.execute("DROP TABLE log")
            target.execute("UPDATE meta SET value = ? WHERE name IN ('revision', 'compacted')", (revision,))
            target.execute("COMMIT")
            target.execute("PRAGMA journal_mode=DELETE")
        finally:
            target.close()
    finally:
        source.close()
    with open(staged, "rb") as f:
        os.fsync(f.fileno())


def _db_files(db_path: Path) -> list[Path]:
    return [db_path, db_path.with_name(db_path.name + "-wal"), db_path.with_name(db_path.name + "-shm")]


def _remove_db_files(db_path: Path) -> None:
    for p in _db_files(db_path) + [db_path.with_name(db_path.name + "-journal")]:
        p.unlink(missing_ok=True)


class _exclusive:
    """Hold the store's lock file exclusively: fails at once if a server has the datastore open."""

    def __init__(self, db_path: Path):
        self.path = lock_path(db_path)

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            raise SnapshotError(f"the datastore {self.path.with_suffix('')} is in use by a running server; "
                                f"stop it before restoring") from None
        return self

    def __exit__(self, *exc):
        os.close(self.fd)

