"""The embedded Store: SQLite in WAL mode used as a revision log.

Tables
  kv    current state: key -> (value, create_rev, mod_rev)
  log   history: one row per revision. `value` is NULL for a deletion; each
        row also carries the previous version (prev_value, prev_mod_rev) so
        an event can be rebuilt from its own row. That costs space for
        updates and deletes, but it makes compaction a plain range delete
        (no row of the log ever points at another row) and watch catch-up a
        single range scan.
  meta  'revision' (last committed revision, so revisions keep growing after
        a restart even when all history is compacted) and 'compacted'.

Writes go through one writer thread that owns the only writing connection.
It takes everything queued while the previous transaction committed and
applies it in one transaction (group commit): a commit costs one WAL append
whether it carries one write or a thousand, which is how many concurrent
clients get high throughput. Each write's condition (key exists, expected
revision) is checked inside that transaction, so it is atomic with the
write. Failed conditions consume no revision.

Durability: WAL with synchronous=NORMAL writes every commit to the WAL file
before the writer is answered, so an acknowledged write survives `kill -9`
of the process (not necessarily a power cut: the WAL is only fsynced at
checkpoints). That is the guarantee k8py makes.

Results go back to the event loop with call_soon_threadsafe, one call per
transaction. That call first hands the batch's events to subscribers (the
watch caches), then resolves the writers' futures, so a client never sees
its write acknowledged before the cache has it.

An open store holds a shared flock on `<db>.lock`; a snapshot restore
(storage/sqlite_snapshot.py) takes it exclusively, so a database is never
replaced under a running server, nor opened while it is being replaced.

Reads (get, list, events_since) run on worker threads with their own
read-only connections: in WAL mode they read a consistent snapshot and never
wait for the writer. The API server only uses them at start-up and for watch
catch-up; the watch cache serves everything else.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import queue
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from k8py.storage.interface import (KV, CompactedError, Event, KeyExistsError,
                                    KeyNotFoundError, RevisionConflictError, Store, StoreClosedError,
                                    StoreError, check_key, check_value, prefix_end)

log = logging.getLogger(__name__)

# Upper bound on writes per transaction: keeps one commit's latency (and the
# size of one delivery to the loop) bounded under a flood of writes.
MAX_BATCH = 1000
# Log rows deleted per compaction step. Each step is queued like a write, so
# writes interleave with a long compaction instead of waiting for all of it.
COMPACT_CHUNK = 5000

SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    create_rev INTEGER NOT NULL,
    mod_rev INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS log (
    rev INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    value BLOB,
    create_rev INTEGER NOT NULL,
    prev_value BLOB,
    prev_mod_rev INTEGER
);
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO meta (name, value) VALUES ('revision', 0), ('compacted', 0);
"""


@dataclass(slots=True)
class _Op:
    """A write queued for the writer thread."""
    kind: str  # create | update | delete | compact
    key: str
    value: bytes | None
    expected: int | None  # expected mod revision; for compact, the target revision
    future: asyncio.Future


_STOP = object()  # queued by close(): the writer finishes what is queued, then exits


def datastore_path(data_dir: Path) -> Path:
    """Where a server with this data dir keeps its database (as k3s: <data-dir>/server/db/)."""
    return Path(data_dir) / "server" / "db" / "state.db"


def lock_path(db_path: Path) -> Path:
    """The file an open store holds a shared lock on (a snapshot restore needs it exclusively)."""
    return db_path.with_name(db_path.name + ".lock")


def _connect(path: str) -> sqlite3.Connection:
    # isolation_level=None: we issue BEGIN/COMMIT ourselves.
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30.0)
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def _meta(conn: sqlite3.Connection) -> tuple[int, int]:
    rows = dict(conn.execute("SELECT name, value FROM meta"))
    return rows["revision"], rows["compacted"]


class _Transaction:
    """The writer thread's view of one transaction: revisions it handed out,
    compaction it did, and the events to publish once it commits."""

    def __init__(self, conn: sqlite3.Connection, revision: int, compacted: int):
        self.conn = conn
        self.revision = revision
        self.compacted = compacted
        self.events: list[Event] = []

    def apply(self, op: _Op):
        """Apply one write. Returns its outcome: a KV, a bool (compaction:
        more to do) or the exception for a failed condition. Raises only
        for database errors, which abort the whole transaction."""
        if op.kind == "create":
            return self._create(op.key, op.value)
        if op.kind == "compact":
            return self._compact(op.expected)
        row = self.conn.execute("SELECT value, create_rev, mod_rev FROM kv WHERE key = ?",
                                (op.key,)).fetchone()
        if row is None:
            return KeyNotFoundError(op.key)
        current = KV(op.key, row[0], row[2], row[1])
        if op.expected is not None and op.expected != current.mod_revision:
            return RevisionConflictError(op.key, op.expected, current)
        if op.kind == "update":
            return self._update(current, op.value)
        return self._delete(current)

    def _create(self, key: str, value: bytes):
        rev = self.revision + 1
        cur = self.conn.execute("INSERT OR IGNORE INTO kv (key, value, create_rev, mod_rev) "
                                "VALUES (?, ?, ?, ?)", (key, value, rev, rev))
        if cur.rowcount == 0:
            return KeyExistsError(key)
        self.conn.execute("INSERT INTO log (rev, key, value, create_rev) VALUES (?, ?, ?, ?)",
                          (rev, key, value, rev))
        return self._publish("PUT", KV(key, value, rev, rev), None)

    def _update(self, current: KV, value: bytes):
        rev = self.revision + 1
        self.conn.execute("UPDATE kv SET value = ?, mod_rev = ? WHERE key = ?", (value, rev, current.key))
        self.conn.execute("INSERT INTO log (rev, key, value, create_rev, prev_value, prev_mod_rev) "
                          "VALUES (?, ?, ?, ?, ?, ?)",
                          (rev, current.key, value, current.create_revision, current.value,
                           current.mod_revision))
        return self._publish("PUT", KV(current.key, value, rev, current.create_revision), current)

    def _delete(self, current: KV):
        rev = self.revision + 1
        self.conn.execute("DELETE FROM kv WHERE key = ?", (current.key,))
        self.conn.execute("INSERT INTO log (rev, key, value, create_rev, prev_value, prev_mod_rev) "
                          "VALUES (?, ?, NULL, ?, ?, ?)",
                          (rev, current.key, current.create_revision, current.value,
                           current.mod_revision))
        return self._publish("DELETE", KV(current.key, current.value, rev, current.create_revision),
                             current)

    def _publish(self, kind: str, kv: KV, prev: KV | None) -> KV:
        self.revision = kv.mod_revision
        self.events.append(Event(kind, kv, prev))
        return kv

    def _compact(self, target: int) -> bool:
        target = min(target, self.revision)
        if target > self.compacted:
            # Recorded before the rows go, in the same transaction: a reader
            # that sees some rows missing also sees that they are compacted.
            self.conn.execute("UPDATE meta SET value = ? WHERE name = 'compacted'", (target,))
            self.compacted = target
        cur = self.conn.execute("DELETE FROM log WHERE rev IN "
                                "(SELECT rev FROM log WHERE rev <= ? ORDER BY rev LIMIT ?)",
                                (target, COMPACT_CHUNK))
        return cur.rowcount == COMPACT_CHUNK


class SqliteStore(Store):
    def __init__(self, path: str | os.PathLike, loop: asyncio.AbstractEventLoop):
        super().__init__()
        self.path = str(path)
        self._loop = loop
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        # (the loop-side _revision/_compacted are Store's, advanced by _deliver)
        # Writer-thread-side state (only the writer thread touches these).
        self._w_revision = 0
        self._w_compacted = 0
        self._closing = False
        self._open_waiter: asyncio.Future = loop.create_future()  # (revision, compacted)
        self._stopped: asyncio.Future = loop.create_future()
        self._readers: list[sqlite3.Connection] = []  # idle read connections
        self._readers_closed = False
        self._readers_lock = threading.Lock()
        self._lock_fd: int | None = None
        self._thread = threading.Thread(target=self._writer_main, name=f"sqlite-writer:{self.path}",
                                        daemon=True)

    async def _start(self) -> None:
        self._hold_lock()
        self._thread.start()
        try:
            self._revision, self._compacted = await self._open_waiter
        except BaseException:
            os.close(self._lock_fd)
            self._lock_fd = None
            raise

    def _hold_lock(self) -> None:
        """A shared lock on `<db>.lock` for the store's lifetime: a snapshot restore
        takes it exclusively, so it cannot replace the database under a running server."""
        fd = os.open(lock_path(Path(self.path)), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise StoreError(f"{self.path} is being restored from a snapshot; start again when that is done")
        self._lock_fd = fd

    # ---- loop side: writes ------------------------------------------------

    def _submit(self, kind: str, key: str, value: bytes | None, expected: int | None) -> asyncio.Future:
        if self._closing:
            raise StoreClosedError("store is closed")
        future = self._loop.create_future()
        self._queue.put(_Op(kind, key, value, expected, future))
        return future

    async def create(self, key: str, value: bytes) -> KV:
        return await self._submit("create", check_key(key), check_value(value), None)

    async def update(self, key: str, value: bytes, expected_revision: int | None = None) -> KV:
        return await self._submit("update", check_key(key), check_value(value), expected_revision)

    async def delete(self, key: str, expected_revision: int | None = None) -> KV:
        return await self._submit("delete", check_key(key), None, expected_revision)

    async def compact(self, revision: int) -> None:
        if revision > self._revision:
            raise ValueError(f"cannot compact to future revision {revision} (current {self._revision})")
        while await self._submit("compact", "", None, revision):
            pass

    def _deliver(self, batch: list[_Op], outcomes: list, events: list[Event], revision: int,
                 compacted: int) -> None:
        """On the loop: publish a committed transaction, then answer its writers."""
        self._revision = max(self._revision, revision)
        self._compacted = max(self._compacted, compacted)
        if events:
            for callback in self._subscribers:
                try:
                    callback(events)
                except Exception:
                    log.exception("store subscriber %r failed", callback)
        for op, outcome in zip(batch, outcomes):
            if op.future.done():  # the writer stopped waiting (cancelled)
                continue
            if isinstance(outcome, BaseException):
                op.future.set_exception(outcome)
            else:
                op.future.set_result(outcome)

    # ---- writer thread ----------------------------------------------------

    def _to_loop(self, fn, *args) -> None:
        try:
            self._loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # loop closed: nobody is waiting any more
            pass

    def _writer_main(self) -> None:
        try:
            conn = _connect(self.path)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(SCHEMA)
            self._w_revision, self._w_compacted = _meta(conn)
        except Exception as err:
            self._to_loop(self._opened, err)
            self._to_loop(_resolve, self._stopped, None)
            return
        self._to_loop(self._opened, (self._w_revision, self._w_compacted))
        try:
            while True:
                batch, stopping = self._next_batch()
                if batch:
                    self._commit(conn, batch)
                if stopping:
                    break
        finally:
            conn.close()
            self._to_loop(_resolve, self._stopped, None)

    def _opened(self, result) -> None:
        if self._open_waiter.done():
            return
        if isinstance(result, BaseException):
            self._open_waiter.set_exception(result)
        else:
            self._open_waiter.set_result(result)

    def _next_batch(self) -> tuple[list[_Op], bool]:
        first = self._queue.get()
        if first is _STOP:
            return [], True
        batch = [first]
        while len(batch) < MAX_BATCH:
            try:
                op = self._queue.get_nowait()
            except queue.Empty:
                break
            if op is _STOP:
                return batch, True
            batch.append(op)
        return batch, False

    def _commit(self, conn: sqlite3.Connection, batch: list[_Op]) -> None:
        try:
            outcomes, events = self._transaction(conn, batch)
        except Exception:
            # Something failed below the level of a write's condition (disk
            # full, I/O error, a bug). Retry one write per transaction so
            # only the writes that really fail report an error.
            log.exception("sqlite batch of %d writes failed; retrying one by one", len(batch))
            outcomes, events = [], []
            for op in batch:
                try:
                    one_outcome, one_events = self._transaction(conn, [op])
                    outcomes += one_outcome
                    events += one_events
                except Exception as err:
                    outcomes.append(StoreError(f"write failed: {err}"))
        self._to_loop(self._deliver, batch, outcomes, events, self._w_revision, self._w_compacted)

    def _transaction(self, conn: sqlite3.Connection, batch: list[_Op]) -> tuple[list, list[Event]]:
        tx = _Transaction(conn, self._w_revision, self._w_compacted)
        conn.execute("BEGIN IMMEDIATE")
        try:
            outcomes = [tx.apply(op) for op in batch]
            if tx.revision != self._w_revision:
                conn.execute("UPDATE meta SET value = ? WHERE name = 'revision'", (tx.revision,))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self._w_revision, self._w_compacted = tx.revision, tx.compacted
        return outcomes, tx.events

    # ---- reads ------------------------------------------------------------

    async def _read(self, fn, *args):
        if self._closing:
            raise StoreClosedError("store is closed")
        return await asyncio.to_thread(self._with_reader, fn, *args)

    def _with_reader(self, fn, *args):
        with self._readers_lock:
            conn = self._readers.pop() if self._readers else None
        if conn is None:
            conn = _connect(self.path)
            conn.execute("PRAGMA query_only = 1")
        try:
            # One read transaction: every query in `fn` sees the same snapshot.
            conn.execute("BEGIN")
            try:
                return fn(conn, *args)
            finally:
                conn.execute("COMMIT")
        finally:
            with self._readers_lock:
                if self._readers_closed:  # the store closed while we read
                    conn.close()
                else:
                    self._readers.append(conn)

    async def get(self, key: str) -> KV | None:
        return await self._read(_read_get, key)

    async def list(self, prefix: str, limit: int = 0,
                   start_after: str | None = None) -> tuple[list[KV], int, bool]:
        return await self._read(_read_list, prefix, limit, start_after)

    async def events_since(self, prefix: str, revision: int) -> list[Event]:
        return await self._read(_read_events, prefix, revision)

    # ---- shutdown ---------------------------------------------------------

    async def close(self) -> None:
        if self._closing:
            await asyncio.shield(self._stopped)
            return
        self._closing = True
        self.stop_compactors()
        self._queue.put(_STOP)
        await asyncio.shield(self._stopped)
        with self._readers_lock:
            readers, self._readers, self._readers_closed = self._readers, [], True
        for conn in readers:
            conn.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def _resolve(future: asyncio.Future, result) -> None:
    if not future.done():
        future.set_result(result)


# ---- read queries (run on a worker thread inside one read transaction) -----

def _key_range(prefix: str) -> tuple[str, list]:
    if not prefix:
        return "1", []
    return "key >= ? AND key < ?", [prefix, prefix_end(prefix)]


def _read_get(conn: sqlite3.Connection, key: str) -> KV | None:
    row = conn.execute("SELECT value, create_rev, mod_rev FROM kv WHERE key = ?", (key,)).fetchone()
    return KV(key, row[0], row[2], row[1]) if row else None


def _read_list(conn: sqlite3.Connection, prefix: str, limit: int,
               start_after: str | None) -> tuple[list[KV], int, bool]:
    revision, _ = _meta(conn)
    where, params = _key_range(prefix)
    if start_after is not None:
        where += " AND key > ?"
        params.append(start_after)
    sql = f"SELECT key, value, create_rev, mod_rev FROM kv WHERE {where} ORDER BY key"
    if limit > 0:
        sql += " LIMIT ?"
        params.append(limit + 1)  # one extra row tells us whether more follow
    items = [KV(k, v, m, c) for k, v, c, m in conn.execute(sql, params)]
    more = limit > 0 and len(items) > limit
    return (items[:limit] if more else items), revision, more


def _read_events(conn: sqlite3.Connection, prefix: str, revision: int) -> list[Event]:
    _, compacted = _meta(conn)
    if revision < compacted:
        raise CompactedError(compacted, revision)
    where, params = _key_range(prefix)
    rows = conn.execute(f"SELECT rev, key, value, create_rev, prev_value, prev_mod_rev FROM log "
                        f"WHERE rev > ? AND {where} ORDER BY rev", [revision, *params])
    events = []
    for rev, key, value, create_rev, prev_value, prev_mod_rev in rows:
        prev = KV(key, prev_value, prev_mod_rev, create_rev) if prev_mod_rev is not None else None
        if value is None:
            events.append(Event("DELETE", KV(key, prev_value, rev, create_rev), prev))
        else:
            events.append(Event("PUT", KV(key, value, rev, create_rev), prev))
    return events


async def open_sqlite_store(path: str | os.PathLike) -> SqliteStore:
    """Open (creating if needed) the database at `path` and start its writer."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    store = SqliteStore(path, asyncio.get_running_loop())
    await store._start()
    return store
