"""Snapshots of an etcd datastore (`--datastore-endpoint` or the `--cluster-init` member).

Save: etcd's Maintenance.Snapshot stream (the member's bolt database at one
revision, consistent while writes go on) is written to a hidden partial file,
checked as etcdctl checks it (etcd appends the SHA-256 of the database: the
file is 512-byte pages plus that 32-byte hash), read with `etcdctl snapshot
status` for its revision, then renamed into place. Same names, directory,
`ls` and `prune` as the SQLite backend (k8py.storage.snapshot).

Which cluster: before streaming, save writes the cluster CA fingerprint to
the key CLUSTER_ID_KEY (`/k8py/cluster-id`, outside `/registry/` so no
resource sees it) if it is absent, and refuses if it holds another cluster's.
The key is inside the snapshot, so the file alone says which cluster it is
of; verify finds the key's record in the bolt file.

Restore (`--cluster-init` only, server stopped: refused while etcd holds its
WAL locks). The replaced member is first run alone on loopback to read the
revision it reached (its WAL replayed: a crash loses nothing of it). Then
`etcdutl snapshot restore
--bump-revision --mark-compacted` when the installed etcd has it (3.5+).
With etcd 3.4 (Debian bookworm), `etcdctl snapshot restore` into a staging
dir, then a temporary etcd on loopback raises the revision above the replaced
member's by writing one throwaway key (many writes in flight, one revision
each: etcd has no other way to skip revisions) and compacts at the new
revision, which is what --bump-revision --mark-compacted guarantee. A gap
larger than MAX_BUMP is refused. The replaced member's data moves to
`server/db/etcd-old-<unix time>`, as k3s does.

An external datastore is not restored by k8py, as k3s does not: the operator
restores it with etcd's own tools.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import fcntl
import hashlib
import json
import logging
import mmap
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import grpc
from aetcd import rpc

from k8py.storage.etcd.connection import Connection, EtcdConfig
from k8py.storage.snapshot import RestoreResult, SnapshotBackend, SnapshotError, SnapshotInfo

log = logging.getLogger(__name__)

CLUSTER_ID_KEY = b"/k8py/cluster-id"
HASH_LEN = 32  # sha256 appended by etcd's snapshot stream
PAGE = 512
STREAM_TIMEOUT_S = 600.0
MAX_BUMP = 1_000_000  # revisions: ~2,700 writes a second on a busy 2-core machine, ~6 minutes
BUMP_IN_FLIGHT = 256


def _etcd_tool() -> tuple[list[str], bool]:
    """(command prefix, has --bump-revision) of the offline snapshot tool installed."""
    if shutil.which("etcdutl"):
        help_text = subprocess.run(["etcdutl", "snapshot", "restore", "--help"], capture_output=True,
                                   text=True).stdout
        return ["etcdutl"], "--bump-revision" in help_text
    if shutil.which("etcdctl"):
        return ["etcdctl"], False
    raise SnapshotError("neither etcdutl nor etcdctl is installed (Debian's etcd-client)")


def _run_tool(*args: str) -> subprocess.CompletedProcess:
    tool, _ = _etcd_tool()
    return subprocess.run([*tool, *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "ETCDCTL_API": "3"})


class EtcdSnapshots(SnapshotBackend):
    def __init__(self, config: EtcdConfig | None, member_dir: Path | None = None,
                 member_name: str | None = None, peer_url: str | None = None, unreachable: str = ""):
        """`config` reaches the live cluster (save); `member_dir` is the --cluster-init
        member's data dir (restore), None for an external datastore."""
        self.config = config
        self.member_dir = member_dir
        self.member_name = member_name or socket.gethostname()
        self.peer_url = peer_url or "http://127.0.0.1:2380"
        self.unreachable = unreachable or "no endpoint"  # why config is None

    # ---- save ---------------------------------------------------------------

    def save(self, dest: Path, cluster_id: str, node: str) -> SnapshotInfo:
        if self.config is None:
            raise SnapshotError(f"cannot reach the --cluster-init etcd member: {self.unreachable}")
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.with_name(f".{dest.name}.partial")
        partial.unlink(missing_ok=True)
        created = int(time.time())
        try:
            _run(self._stream, partial, cluster_id)
            info = self._inspect(partial, cluster_id)
            keys = _run(self._objects_at, info.revision)
            os.replace(partial, dest)
        except grpc.aio.AioRpcError as err:
            partial.unlink(missing_ok=True)
            raise SnapshotError(f"snapshot of etcd {','.join(self.config.endpoints)} failed: "
                                f"{err.details() or err.code()}") from err
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return SnapshotInfo(dest, cluster_id, info.revision, node, created, keys)

    async def _objects_at(self, revision: int) -> int:
        """How many API objects the snapshot holds: the /registry/ keys at its revision."""
        connection = Connection(self.config)
        try:
            response = await connection.call("KV", "Range", rpc.RangeRequest(
                key=b"/registry/", range_end=b"/registry0", count_only=True, revision=revision))
            return response.count
        except grpc.aio.AioRpcError:  # compacted meanwhile: the count is only for the operator's eyes
            return 0
        finally:
            await connection.close()

    async def _stream(self, partial: Path, cluster_id: str) -> None:
        connection = Connection(self.config)
        try:
            await _record_cluster_id(connection, cluster_id)
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds every Secret
            with os.fdopen(fd, "wb") as f:
                async for response in connection.stub("Maintenance").Snapshot(
                        rpc.SnapshotRequest(), timeout=STREAM_TIMEOUT_S):
                    f.write(response.blob)
                f.flush()
                os.fsync(f.fileno())
        finally:
            await connection.close()

    # ---- verify -------------------------------------------------------------

    def verify(self, path: Path, cluster_id: str | None) -> SnapshotInfo:
        path = Path(path)
        if not path.is_file():
            raise SnapshotError(f"snapshot {path} does not exist")
        return self._inspect(path, cluster_id)

    def _inspect(self, path: Path, cluster_id: str | None) -> SnapshotInfo:
        _check_hash(path)
        status = _run_tool("snapshot", "status", str(path), "-w", "json")
        try:
            values = json.loads(status.stdout.strip().splitlines()[-1]) if status.returncode == 0 else None
        except (ValueError, IndexError):
            values = None
        if not values or "revision" not in values:
            raise SnapshotError(f"{path} is not an etcd snapshot: {status.stderr.strip()[-300:]}")
        found = _find_cluster_id(path)
        if found is None:
            raise SnapshotError(f"snapshot {path} does not say which cluster it is of (no {CLUSTER_ID_KEY.decode()} "
                                f"key: it was not taken by k8py etcd-snapshot)")
        if cluster_id is not None and found != cluster_id:
            raise SnapshotError(f"snapshot {path} belongs to another cluster: its cluster CA has SHA-256 "
                                f"{found}, this data dir's has {cluster_id}")
        return SnapshotInfo(path, found, int(values["revision"]), "", int(path.stat().st_mtime),
                            int(values.get("totalKey", 0)))

    # ---- restore ------------------------------------------------------------

    def restore(self, path: Path, cluster_id: str | None) -> RestoreResult:
        if self.member_dir is None:
            raise SnapshotError("k8py does not restore an external datastore (--datastore-endpoint), as k3s "
                                "does not: restore it with etcd's own tools (etcdutl snapshot restore), "
                                "then start the server against it without --cluster-reset")
        info = self.verify(path, cluster_id)
        member_dir = self.member_dir
        db_root = member_dir.parent
        db_root.mkdir(parents=True, exist_ok=True)
        _check_stopped(member_dir)
        old_revision = _run(_member_revision, member_dir, self.member_name)
        staged = Path(tempfile.mkdtemp(prefix=".etcd-restoring-", dir=db_root))
        try:
            revision = self._restore_into(Path(path), staged / "data", info.revision, old_revision)
            old_data = None
            if member_dir.exists():
                old_data = db_root / f"etcd-old-{int(time.time())}"
                suffix = 0
                while old_data.exists():
                    suffix += 1
                    old_data = db_root / f"etcd-old-{int(time.time())}-{suffix}"
                os.replace(member_dir, old_data)
            os.replace(staged / "data", member_dir)
        finally:
            shutil.rmtree(staged, ignore_errors=True)
        log.info("restored %s at revision %d (snapshot revision %d, replaced member's %d)",
                 path, revision, info.revision, old_revision)
        return RestoreResult(info, revision, old_data)

    def _restore_into(self, snapshot: Path, data: Path, snap_revision: int, old_revision: int) -> int:
        tool, bumps = _etcd_tool()
        gap = max(0, old_revision - snap_revision) + 1
        if not bumps and gap > MAX_BUMP:
            raise SnapshotError(f"the replaced member reached revision {old_revision}, {gap} above the snapshot's: "
                                f"more than this etcd ({tool[0]} has no --bump-revision) can skip "
                                f"(limit {MAX_BUMP}); install etcd 3.5+ (etcdutl) to restore it")
        flags = [f"--data-dir={data}", f"--name={self.member_name}",
                 f"--initial-cluster={self.member_name}={self.peer_url}",
                 f"--initial-advertise-peer-urls={self.peer_url}"]
        if bumps:
            flags += [f"--bump-revision={gap + 1000}", "--mark-compacted"]
        result = _run_tool("snapshot", "restore", str(snapshot), *flags)
        if result.returncode != 0:
            raise SnapshotError(f"{tool[0]} snapshot restore failed: {result.stderr.strip()[-500:]}")
        if bumps:
            return snap_revision + gap + 1000
        return _run(_bump_offline, data, self.member_name, old_revision)


# ---- helpers ---------------------------------------------------------------

def _run(coroutine_function, *args):
    """Run a coroutine to the end from synchronous code; on a thread of its own when the
    caller's thread already runs a loop (the backend's methods are synchronous, as SQLite's)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine_function(*args))
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine_function(*args)).result()


async def _record_cluster_id(connection: Connection, cluster_id: str) -> None:
    """Put the cluster id into the keyspace unless there; refuse another cluster's."""
    absent = rpc.Compare(key=CLUSTER_ID_KEY, target=rpc.Compare.CompareTarget.CREATE,
                         result=rpc.Compare.CompareResult.EQUAL, create_revision=0)
    txn = rpc.TxnRequest(compare=[absent],
                         success=[rpc.RequestOp(request_put=rpc.PutRequest(key=CLUSTER_ID_KEY,
                                                                           value=cluster_id.encode()))],
                         failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=CLUSTER_ID_KEY))])
    response = await connection.call("KV", "Txn", txn, write=True)
    if not response.succeeded:
        kvs = response.responses[0].response_range.kvs
        held = kvs[0].value.decode(errors="replace") if kvs else ""
        if held != cluster_id:
            raise SnapshotError(f"this etcd holds another cluster's data ({CLUSTER_ID_KEY.decode()} is {held}, "
                                f"this data dir's cluster CA has SHA-256 {cluster_id}): wrong --data-dir or "
                                f"--datastore-endpoint?")


def _check_hash(path: Path) -> None:
    """etcd's snapshot is whole 512-byte bolt pages followed by their SHA-256."""
    size = path.stat().st_size
    if size < PAGE + HASH_LEN or size % PAGE != HASH_LEN:
        raise SnapshotError(f"{path} is not a complete etcd snapshot ({size} bytes: truncated, or not a "
                            f"snapshot)")
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        remaining = size - HASH_LEN
        while remaining:
            chunk = f.read(min(remaining, 1 << 20))
            if not chunk:
                break
            digest.update(chunk)
            remaining -= len(chunk)
        trailer = f.read(HASH_LEN)
    if digest.digest() != trailer:
        raise SnapshotError(f"{path} fails its SHA-256 check (truncated, damaged, or not an etcd snapshot)")


def _find_cluster_id(path: Path) -> str | None:
    """The cluster id key's value as of the snapshot's revision, read from the bolt file.

    etcd keeps every version of a key in its "key" bucket: the bolt key is the revision
    (8 bytes main, "_", 8 bytes sub, "t" if a deletion), and the value right after it is
    an mvccpb.KeyValue (field 1 key, varint fields 2-4, field 5 value; a deletion has
    the key only). The newest version wins; a deleted key says nothing."""
    needle = b"\x0a" + bytes([len(CLUSTER_ID_KEY)]) + CLUSTER_ID_KEY
    newest: tuple[int, str | None] = (-1, None)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:  # etcd's go to GBs
        start = data.find(needle)
        while start >= 0:
            found = _version_at(data, start, len(needle))
            if found is not None and found[0] > newest[0]:
                newest = found
            start = data.find(needle, start + 1)
    return newest[1]


def _version_at(data, start: int, needle_len: int) -> tuple[int, str | None] | None:
    """(main revision, value or None for a deletion) of the record at `start`, if it is one."""
    tombstone = data[start - 1:start] == b"t"
    rev_end = start - 1 if tombstone else start
    if rev_end < 17 or data[rev_end - 9:rev_end - 8] != b"_":
        return None
    revision = int.from_bytes(data[rev_end - 17:rev_end - 9], "big")
    if tombstone:
        return revision, None
    i = start + needle_len
    try:
        while data[i] in (0x10, 0x18, 0x20):  # create_revision, mod_revision, version
            i += 1
            while data[i] & 0x80:
                i += 1
            i += 1
        if data[i] == 0x2a and data[i + 1] < 0x80:
            return revision, data[i + 2:i + 2 + data[i + 1]].decode("ascii")
    except (IndexError, UnicodeDecodeError):
        pass
    return None


def _check_stopped(member_dir: Path) -> None:
    """Refuse while an etcd runs on `member_dir`: etcd holds (OFD) locks on its WAL files,
    which conflict with the POSIX lock tried here (and released at once)."""
    for wal in sorted((member_dir / "member" / "wal").glob("*.wal")):
        fd = os.open(wal, os.O_RDWR)
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise SnapshotError(f"the etcd member in {member_dir} is running: stop the server "
                                f"before restoring") from None
        finally:
            os.close(fd)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def _temporary_member(data: Path, name: str):
    """The member in `data` run alone, on loopback ports of its own, for our requests only.
    Its WAL is replayed, so what it reports is what it had committed, crash or not."""
    url = f"http://127.0.0.1:{_free_port()}"
    # The member keeps the peer URL it was restored with; only its listeners are ours.
    process = subprocess.Popen(
        ["etcd", "--name", name, "--data-dir", str(data), "--listen-client-urls", url,
         "--advertise-client-urls", url, "--listen-peer-urls", f"http://127.0.0.1:{_free_port()}",
         "--log-level", "error", "--logger", "zap"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    connection = Connection(EtcdConfig.parse(url))
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while True:
            try:
                await connection.call("KV", "Range", rpc.RangeRequest(key=b"\0", count_only=True))
                break
            except grpc.aio.AioRpcError:
                if process.poll() is not None or loop.time() > deadline:
                    raise SnapshotError(f"the etcd member in {data} did not start: "
                                        + (process.stderr.read().decode(errors="replace")[-500:]
                                           if process.poll() is not None else "timed out")) from None
                await asyncio.sleep(0.1)
        yield connection
    finally:
        await connection.close()
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def _member_revision(member_dir: Path, name: str) -> int:
    """The revision the replaced member reached (0 without one)."""
    if not member_dir.exists():
        return 0
    if not (member_dir / "member" / "wal").is_dir():
        raise SnapshotError(f"{member_dir} is not an etcd member's data dir (no member/wal): move it away, "
                            f"then restore again")
    try:
        async with _temporary_member(member_dir, name) as connection:
            response = await connection.call("KV", "Range", rpc.RangeRequest(key=b"\0", count_only=True))
            return response.header.revision
    except SnapshotError as err:
        raise SnapshotError(f"cannot read the revision of the member being replaced ({err}); restoring "
                            f"without it could hand out resourceVersions clients have already seen. Move "
                            f"{member_dir} away if it is beyond repair, then restore again") from None


async def _bump_offline(data: Path, name: str, above: int) -> int:
    """Raise the restored member's revision above `above` and compact there. Returns
    the new revision."""
    async with _temporary_member(data, name) as connection:
        response = await connection.call("KV", "Range", rpc.RangeRequest(key=b"\0", count_only=True))
        key = b"/k8py/restore-revision-bump"
        needed = max(0, above - response.header.revision) + 1
        semaphore = asyncio.Semaphore(BUMP_IN_FLIGHT)

        async def put() -> None:
            async with semaphore:
                await connection.call("KV", "Put", rpc.PutRequest(key=key), write=True)

        for first in range(0, needed, 10_000):
            await asyncio.gather(*(put() for _ in range(min(10_000, needed - first))))
            if needed > 50_000:
                log.warning("raising the restored revision: %d of %d writes", min(needed, first + 10_000), needed)
        response = await connection.call("KV", "DeleteRange", rpc.DeleteRangeRequest(key=key), write=True)
        revision = response.header.revision
        await connection.call("KV", "Compact", rpc.CompactionRequest(revision=revision, physical=True), write=True)
        return revision
