"""Interactive processes for exec and attach: what the kubelet's streaming server drives.

ExecProcess has `.stdin` (an asyncio StreamWriter, or None), `.stdout` and
`.stderr` (StreamReaders), `.resize(cols, rows)` and `await .wait() -> exit code`.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import signal
import struct
import termios

from k8py.kubelet.runtime.shim import (FRAME_CLOSE_STDIN, FRAME_EXIT, FRAME_RESIZE, FRAME_STDERR,
                                       FRAME_STDIN, FRAME_STDOUT, frame)


def _set_winsize(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class _FdWriter:
    """Just enough of StreamWriter over the non-blocking pty master for exec's stdin.

    Writes are buffered and flushed when the fd is writable, so a process that stops
    reading its terminal never blocks the event loop."""

    def __init__(self, fd: int):
        self.fd = fd
        self.closed = False
        self.buffer = bytearray()
        self.loop = asyncio.get_running_loop()
        self.flushed = asyncio.Event()
        self.flushed.set()

    def _flush(self) -> None:
        try:
            while self.buffer:
                self.buffer = self.buffer[os.write(self.fd, self.buffer):]
        except BlockingIOError:
            return
        except OSError:                   # the process (and its terminal) went away
            self.buffer.clear()
        self.loop.remove_writer(self.fd)
        self.flushed.set()

    def write(self, data: bytes) -> None:
        if self.closed or not data:
            return
        idle = not self.buffer
        self.buffer += data
        if idle:
            self.flushed.clear()
            self._flush()
            if self.buffer:
                self.loop.add_writer(self.fd, self._flush)

    async def drain(self) -> None:
        await self.flushed.wait()

    def close(self) -> None:
        if not self.closed:     # a tty has no half-close: send EOF (^D) the way a terminal would
            self.write(b"\x04")
            self.closed = True

    def write_eof(self) -> None:
        self.close()

    def can_write_eof(self) -> bool:
        return True

    def is_closing(self) -> bool:
        return self.closed

    async def wait_closed(self) -> None:
        return None


class ExecProcess:
    def __init__(self, stdin, stdout: asyncio.StreamReader, stderr: asyncio.StreamReader, waiter, resizer=None):
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self._waiter = waiter
        self._resizer = resizer

    def resize(self, cols: int, rows: int) -> None:
        if self._resizer:
            self._resizer(cols, rows)

    async def wait(self) -> int:
        return await self._waiter()


async def exec_pipes(argv: list[str], stdin: bool) -> ExecProcess:
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    return ExecProcess(proc.stdin, proc.stdout, proc.stderr, proc.wait)


async def exec_tty(argv: list[str], stdin: bool, cols: int = 80, rows: int = 24) -> ExecProcess:
    """runc in the foreground with a pty of ours as its terminal; it relays to the container's pty."""
    master, slave = pty.openpty()
    _set_winsize(slave, cols, rows)
    proc = await asyncio.create_subprocess_exec(*argv, stdin=slave, stdout=slave, stderr=slave,
                                                start_new_session=True)
    os.close(slave)
    os.set_blocking(master, False)
    loop = asyncio.get_running_loop()
    stdout = asyncio.StreamReader()
    stderr = asyncio.StreamReader()
    stderr.feed_eof()

    def readable():
        try:
            data = os.read(master, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data:
            stdout.feed_data(data)
        else:
            loop.remove_reader(master)
            stdout.feed_eof()

    loop.add_reader(master, readable)

    async def wait() -> int:
        code = await proc.wait()
        for _ in range(100):                 # let the last output through before closing
            if stdout.at_eof():
                break
            await asyncio.sleep(0.01)
        loop.remove_reader(master)
        loop.remove_writer(master)
        if not stdout.at_eof():
            stdout.feed_eof()
        try:
            os.close(master)
        except OSError:
            pass
        return code

    def resize(c: int, r: int) -> None:
        try:
            _set_winsize(master, c, r)
            proc.send_signal(signal.SIGWINCH)
        except (OSError, ProcessLookupError):
            pass

    def nudge() -> None:
        if proc.returncode is None:
            try:
                proc.send_signal(signal.SIGWINCH)
            except ProcessLookupError:
                pass

    # runc copies our size to the container's pty once, racing the handover of that pty;
    # when it loses, the process sees a 0x0 terminal. A few early SIGWINCHs make it copy again.
    for delay in (0.02, 0.1, 0.3, 1.0):
        loop.call_later(delay, nudge)
    return ExecProcess(_FdWriter(master) if stdin else None, stdout, stderr, wait, resize)


class _AttachWriter:
    """Frames to the shim on a socket of their own (a dup of the attach socket).

    A container that ends right after reading its input makes the shim close
    the socket while its last output and exit frame are still unread here; a
    write to it then fails with EPIPE. Through the reading transport, that
    failure would close the transport and lose that output (a StreamReader
    raises its error before handing out what it holds), so writes go around
    it, and their failures only mean the shim is gone.
    """

    def __init__(self, sock):
        self.sock = sock
        self.pending = bytearray()
        self.closed = False
        self._flushing: asyncio.Task | None = None

    def queue(self, payload: bytes) -> None:
        """Send a frame after those before it (one sender: frames never interleave)."""
        if self.closed:
            return
        self.pending += payload
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        while self.pending and not self.closed:
            data, self.pending = bytes(self.pending), bytearray()
            try:
                await asyncio.get_running_loop().sock_sendall(self.sock, data)
            except OSError:
                self.shut()

    def write(self, data: bytes) -> None:
        self.queue(frame(FRAME_STDIN, bytes(data)))

    async def drain(self) -> None:
        if self._flushing is not None:
            await asyncio.wait({self._flushing})     # a send given up (shim gone) is no error here

    def close(self) -> None:
        self.queue(frame(FRAME_CLOSE_STDIN, b""))

    def shut(self) -> None:
        if self.closed:
            return
        self.closed = True
        flushing = self._flushing
        if flushing is not None and not flushing.done() and flushing is not asyncio.current_task():
            # its send still watches the socket: cancel it, and close once it has let go
            flushing.cancel()
            asyncio.get_running_loop().call_soon(self.sock.close)
        else:
            self.sock.close()

    def write_eof(self) -> None:
        self.close()

    def can_write_eof(self) -> bool:
        return True

    def is_closing(self) -> bool:
        return self.closed

    async def wait_closed(self) -> None:
        return None


async def attach_socket(path: str, stdin: bool, status) -> ExecProcess:
    """Connect to a container's shim: frames in, demultiplexed stdout/stderr out."""
    reader, writer = await asyncio.open_unix_connection(path)
    sender = _AttachWriter(writer.get_extra_info("socket").dup())
    sender.sock.setblocking(False)
    stdout, stderr = asyncio.StreamReader(), asyncio.StreamReader()
    result: dict = {}

    async def pump():
        try:
            while True:
                head = await reader.readexactly(5)
                kind, length = struct.unpack(">BI", head)
                payload = await reader.readexactly(length)
                if kind == FRAME_STDOUT:
                    stdout.feed_data(payload)
                elif kind == FRAME_STDERR:
                    stderr.feed_data(payload)
                elif kind == FRAME_EXIT:
                    result["code"] = int(payload or b"0") if payload.strip().lstrip(b"-").isdigit() else 0
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            stdout.feed_eof()
            stderr.feed_eof()
            writer.close()
            sender.shut()

    task = asyncio.create_task(pump())

    async def wait() -> int:
        await task
        if "code" in result:
            return result["code"]
        return await status()

    def resize(c: int, r: int) -> None:
        sender.queue(frame(FRAME_RESIZE, f"{c} {r}".encode()))

    return ExecProcess(sender if stdin else None, stdout, stderr, wait, resize)
