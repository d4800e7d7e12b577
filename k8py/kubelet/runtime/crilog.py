"""The CRI container log format, written line by line with size-based rotation.

    2016-10-06T00:17:09.669794202Z stdout F a full line
    2016-10-06T00:17:09.669794202Z stdout P the first 16 KiB of a longer one

Timestamps are RFC3339Nano in UTC (Go drops trailing zeros from the fraction).
A rotated file is renamed `<log>.<UTC yyyymmdd-hhmmss>` as the kubelet does, and
only the newest `max_files - 1` rotated files are kept.
"""

from __future__ import annotations

import os
import time

MAX_LINE = 16 * 1024


def rfc3339nano(ns: int | None = None) -> str:
    ns = time.time_ns() if ns is None else ns
    seconds, frac = divmod(ns, 1_000_000_000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    if frac:
        text += "." + f"{frac:09d}".rstrip("0")
    return text + "Z"


def format_line(stream: str, tag: str, content: bytes, ns: int | None = None) -> bytes:
    return f"{rfc3339nano(ns)} {stream} {tag} ".encode() + content + b"\n"


class LineSplitter:
    """Turns a byte stream into (tag, line) records: F at newlines and EOF, P every MAX_LINE bytes."""

    def __init__(self, max_line: int = MAX_LINE):
        self.buffer = b""
        self.max_line = max_line

    def feed(self, data: bytes) -> list[tuple[str, bytes]]:
        self.buffer += data
        out = []
        while True:
            newline = self.buffer.find(b"\n")
            if newline != -1 and newline <= self.max_line:
                line, self.buffer = self.buffer[:newline], self.buffer[newline + 1:]
                out.append(("F", line[:-1] if line.endswith(b"\r") else line))
            elif len(self.buffer) > self.max_line or (newline != -1 and newline > self.max_line):
                out.append(("P", self.buffer[:self.max_line]))
                self.buffer = self.buffer[self.max_line:]
            else:
                return out

    def flush(self) -> list[tuple[str, bytes]]:
        rest, self.buffer = self.buffer, b""
        return [("F", rest)] if rest else []


class RotatingLog:
    def __init__(self, path: str, max_size: int = 10 * 1024 * 1024, max_files: int = 5):
        self.path = path
        self.max_size = max_size
        self.max_files = max(1, max_files)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        self.size = os.fstat(self.fd).st_size

    def write(self, record: bytes) -> None:
        if self.max_size and self.size + len(record) > self.max_size and self.size > 0:
            self.rotate()
        os.write(self.fd, record)
        self.size += len(record)

    def rotate(self) -> None:
        os.close(self.fd)
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        target = f"{self.path}.{stamp}"
        n = 1
        while os.path.exists(target):          # several rotations in one second
            target = f"{self.path}.{stamp}.{n}"
            n += 1
        os.rename(self.path, target)
        directory, base = os.path.split(self.path)
        rotated = sorted((f for f in os.listdir(directory or ".") if f.startswith(base + ".")),
                         key=lambda f: os.stat(os.path.join(directory, f)).st_mtime_ns)
        for old in rotated[: max(0, len(rotated) - (self.max_files - 1))]:
            os.unlink(os.path.join(directory, old))
        self.fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        self.size = 0

    def close(self) -> None:
        os.close(self.fd)


def parse_line(line: bytes) -> tuple[str, str, str, bytes] | None:
    """(timestamp, stream, tag, content) of one CRI log line, or None if it is not one."""
    parts = line.rstrip(b"\n").split(b" ", 3)
    if len(parts) < 3:
        return None
    content = parts[3] if len(parts) == 4 else b""
    return parts[0].decode(), parts[1].decode(), parts[2].decode(), content
