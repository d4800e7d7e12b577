"""The audit log backend: JSON lines appended by a thread, rotated as upstream's lumberjack does.

Requests hand their encoded events to `AuditLog.write`, which only collects
them: every 50 ms (or every 1,000 events) the collected batch goes to a
writer thread, which writes it at once. The event loop never waits for the
disk, and the thread wakes (and takes the GIL) once per batch, not per event. With a maximum size, a write that would
take the file past it first renames the file to `<name>-<UTC time>.<ext>`
(time as 2006-01-02T15-04-05.000) and starts a new one; then backups beyond
`max_backups`, or older than `max_age_days`, are removed.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import os
import queue
import sys
import threading
from pathlib import Path

log = logging.getLogger(__name__)

MAX_QUEUED = 100_000  # events waiting for the writer before new ones are dropped
BATCH_WAIT_S = 0.05
BATCH_MAX = 1000
BACKUP_TIME = "%Y-%m-%dT%H-%M-%S"
_STOP = object()


class AuditLog:
    def __init__(self, path: str, max_age_days: int = 0, max_backups: int = 0, max_size_mb: int = 0):
        self.path = path
        self.max_age_days = max_age_days
        self.max_backups = max_backups
        self.max_size = max_size_mb * 1024 * 1024
        self._queue: queue.SimpleQueue = queue.SimpleQueue()  # batches (lists of lines) for the thread
        self._pending: list[bytes] = []  # collected on the event loop
        self._queued = 0  # lines handed to the thread and not written yet (approximate)
        self._dropped = 0
        self._file = None
        self._size = 0
        if path != "-":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._open()
        self._thread = threading.Thread(target=self._run, name="audit-log", daemon=True)
        self._thread.start()

    # ---- the request side ---------------------------------------------------

    def write(self, line: bytes) -> None:
        """Collect one event (a JSON line with its newline). Never blocks."""
        if self._queued + len(self._pending) >= MAX_QUEUED:
            if not self._dropped:
                log.warning("audit log writer is behind: dropping events")
            self._dropped += 1
            return
        self._pending.append(line)
        if len(self._pending) >= BATCH_MAX:
            self._hand_over()
        elif len(self._pending) == 1:
            try:
                asyncio.get_running_loop().call_later(BATCH_WAIT_S, self._hand_over)
            except RuntimeError:  # no event loop (a tool, a test): straight to the thread
                self._hand_over()

    def _hand_over(self) -> None:
        if self._pending:
            batch, self._pending = self._pending, []
            self._queued += len(batch)
            self._queue.put(batch)

    def close(self) -> None:
        """Write what is collected, then stop."""
        self._hand_over()
        self._queue.put(_STOP)
        self._thread.join(timeout=10)
        if self._file is not None:
            self._file.close()
            self._file = None

    # ---- the writer thread --------------------------------------------------

    def _run(self) -> None:
        while True:
            batch = self._queue.get()
            if batch is _STOP:
                return
            try:
                self._write(batch)
            except OSError as err:
                log.error("cannot write the audit log %s: %s", self.path, err)
            self._queued -= len(batch)

    def _write(self, lines: list[bytes]) -> None:
        if self.path == "-":
            sys.stdout.buffer.write(b"".join(lines))
            sys.stdout.buffer.flush()
            return
        chunk: list[bytes] = []
        size = 0
        for line in lines:
            if self.max_size and self._size + size + len(line) > self.max_size and (self._size or size):
                self._flush(chunk)
                chunk, size = [], 0
                self._rotate()
            chunk.append(line)
            size += len(line)
        self._flush(chunk)

    def _flush(self, chunk: list[bytes]) -> None:
        if chunk:
            data = b"".join(chunk)
            self._file.write(data)
            self._file.flush()
            self._size += len(data)

    def _open(self) -> None:
        self._file = open(self.path, "ab")
        self._size = self._file.tell()

    def _rotate(self) -> None:
        self._file.close()
        now = datetime.datetime.now(datetime.timezone.utc)
        stem, ext = os.path.splitext(self.path)
        stamp = now.strftime(BACKUP_TIME) + f".{now.microsecond // 1000:03d}"
        backup = f"{stem}-{stamp}{ext}"
        n = 1
        while os.path.exists(backup):  # two rotations within a millisecond
            backup = f"{stem}-{stamp}{n}{ext}"
            n += 1
        os.rename(self.path, backup)
        self._open()
        self._remove_old_backups(now)

    def backups(self) -> list[str]:
        """Rotated files, newest first."""
        folder, base = os.path.split(self.path)
        stem, ext = os.path.splitext(base)
        found = []
        for name in os.listdir(folder or "."):
            if name.startswith(stem + "-") and name.endswith(ext):
                when = _backup_time(_middle(name, self.path))
                if when is not None:
                    found.append((when, os.path.join(folder, name)))
        return [path for _, path in sorted(found, reverse=True)]

    def _remove_old_backups(self, now: datetime.datetime) -> None:
        backups = self.backups()
        doomed = set(backups[self.max_backups:]) if self.max_backups else set()
        if self.max_age_days:
            cutoff = now - datetime.timedelta(days=self.max_age_days)
            doomed |= {p for p in backups if _backup_time(_middle(p, self.path)) < cutoff}
        for path in doomed:
            try:
                os.remove(path)
            except OSError as err:
                log.warning("cannot remove old audit log %s: %s", path, err)


def _middle(backup: str, path: str) -> str:
    stem, ext = os.path.splitext(os.path.basename(path))
    name = os.path.basename(backup)
    return name[len(stem) + 1:len(name) - len(ext)] if ext else name[len(stem) + 1:]


def _backup_time(text: str) -> datetime.datetime | None:
    try:
        when = datetime.datetime.strptime(text[:23], BACKUP_TIME + ".%f")
    except ValueError:
        return None
    return when.replace(tzinfo=datetime.timezone.utc)
