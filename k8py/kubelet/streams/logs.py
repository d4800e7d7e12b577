"""Reading CRI container log files for `kubectl logs`.

Each line of the file is `<RFC3339Nano> <stdout|stderr> <F|P> <content>`;
a `P` (partial) entry continues in the next entry, `F` ends the line. The
options are the PodLogOptions ones: tailLines, sinceSeconds/sinceTime,
timestamps, limitBytes, follow (keep reading until the container stops,
surviving rotation of the file).
"""

from __future__ import annotations

import asyncio
import datetime
import os
import time
from dataclasses import dataclass
from typing import AsyncIterator, Awaitable, Callable


@dataclass
class LogOptions:
    follow: bool = False
    tail_lines: int | None = None
    since_seconds: int | None = None
    since_time: str | None = None
    timestamps: bool = False
    limit_bytes: int | None = None

    def since(self, now: float) -> float | None:
        """The earliest entry time to show, as unix seconds."""
        if self.since_seconds is not None:
            return now - self.since_seconds
        if self.since_time:
            return parse_time(self.since_time)
        return None


@dataclass
class Entry:
    time: str          # as written, RFC3339Nano
    stream: str
    partial: bool
    content: bytes

    @property
    def seconds(self) -> float:
        return parse_time(self.time)


def parse_time(value: str) -> float:
    """RFC3339 with up to nanoseconds -> unix seconds (microsecond precision)."""
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    if "." in text:
        head, rest = text.split(".", 1)
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits):]
        text = f"{head}.{digits[:6].ljust(6, '0')}{zone}"
    return datetime.datetime.fromisoformat(text).timestamp()


def parse_line(line: bytes) -> Entry | None:
    """One file line (without its newline); None for a line that is not CRI format."""
    parts = line.split(b" ", 3)
    if len(parts) < 3 or parts[1] not in (b"stdout", b"stderr") or parts[2] not in (b"F", b"P"):
        return None
    return Entry(parts[0].decode(errors="replace"), parts[1].decode(), parts[2] == b"P",
                 parts[3] if len(parts) == 4 else b"")


def render(entry: Entry, timestamps: bool) -> bytes:
    body = entry.content if entry.partial else entry.content + b"\n"
    return (entry.time.encode() + b" " + body) if timestamps else body


class _Budget:
    def __init__(self, limit: int | None):
        self.left = limit

    def take(self, chunk: bytes) -> bytes:
        if self.left is None:
            return chunk
        chunk = chunk[:self.left]
        self.left -= len(chunk)
        return chunk

    @property
    def spent(self) -> bool:
        return self.left is not None and self.left <= 0


def _complete_lines(entries: list[Entry]) -> list[list[Entry]]:
    """Group entries into logical lines (partials followed by their final part)."""
    lines, current = [], []
    for entry in entries:
        current.append(entry)
        if not entry.partial:
            lines.append(current)
            current = []
    if current:
        lines.append(current)
    return lines


def read_existing(path: str, options: LogOptions, now: float) -> tuple[list[Entry], int, int | None]:
    """Entries already in the file that pass since/tail; returns (entries, offset read to, inode)."""
    try:
        with open(path, "rb") as f:
            inode = os.fstat(f.fileno()).st_ino
            raw = f.read()
    except FileNotFoundError:
        return [], 0, None
    end = raw.rfind(b"\n") + 1           # a half-written last line is read later
    since = options.since(now)
    entries = []
    for line in raw[:end].split(b"\n"):
        entry = parse_line(line) if line else None
        if entry is None:
            continue
        if since is not None and entry.seconds < since:
            continue
        entries.append(entry)
    if options.tail_lines is not None:
        lines = _complete_lines(entries)
        keep = lines[-options.tail_lines:] if options.tail_lines > 0 else []
        entries = [e for group in keep for e in group]
    return entries, end, inode


async def stream_log(path: str, options: LogOptions,
                     still_running: Callable[[], Awaitable[bool]] | None = None,
                     poll_interval: float = 0.1) -> AsyncIterator[bytes]:
    """Yield the log's bytes as the user should see them."""
    budget = _Budget(options.limit_bytes)
    entries, offset, _inode = await asyncio.to_thread(read_existing, path, options, time.time())
    out = b"".join(render(e, options.timestamps) for e in entries)
    if out:
        chunk = budget.take(out)
        if chunk:
            yield chunk
    if not options.follow or budget.spent:
        return
    follower = _Follower(path, offset)
    pending = b""
    idle = 0
    try:
        while True:
            data = await asyncio.to_thread(follower.read)
            if not data:
                idle += 1
                # ask the runtime only every few idle polls: the file is the fast path;
                # once the container has stopped, one last read catches its final words
                if still_running is not None and idle % 5 == 0 and not await still_running():
                    data = await asyncio.to_thread(follower.read)
                    if not data:
                        return
                else:
                    await asyncio.sleep(poll_interval)
                    continue
            idle = 0
            pending += data
            complete, newline, pending = pending.rpartition(b"\n")
            if not newline:
                continue
            rendered = [render(entry, options.timestamps) for entry in
                        (parse_line(line) for line in complete.split(b"\n") if line) if entry is not None]
            chunk = budget.take(b"".join(rendered))
            if chunk:
                yield chunk
            if budget.spent:
                return
    finally:
        follower.close()


class _Follower:
    """Reads a growing file; when it is rotated (renamed and replaced), drains
    the old file through the open handle, then moves on to the new one."""

    def __init__(self, path: str, offset: int):
        self.path = path
        self.file = None
        self.offset = offset

    def _open(self) -> bool:
        try:
            self.file = open(self.path, "rb")
        except FileNotFoundError:
            return False
        if os.fstat(self.file.fileno()).st_size < self.offset:
            self.offset = 0
        self.file.seek(self.offset)
        return True

    def read(self) -> bytes:
        if self.file is None and not self._open():
            return b""
        data = self.file.read(1 << 20)
        if data:
            self.offset += len(data)
            return data
        try:
            replaced = os.stat(self.path).st_ino != os.fstat(self.file.fileno()).st_ino
        except FileNotFoundError:
            return b""
        if replaced:
            self.file.close()
            self.file, self.offset = None, 0
            return self.read() if self._open() else b""
        if os.fstat(self.file.fileno()).st_size < self.offset:   # truncated in place
            self.offset = 0
            self.file.seek(0)
        return b""

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
