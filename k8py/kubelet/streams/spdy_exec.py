"""exec and attach over a plain SPDY/3.1 connection (client-go before
WebSockets, and kubectl's fallback when a WebSocket upgrade fails).

The client opens one stream per channel, named by the `streamtype` header:
error, stdin, stdout, stderr, resize. Once the ones it asked for exist, the
process runs: stdin DATA feeds it (FIN closes its stdin), its output goes out
as DATA on stdout/stderr, resize carries JSON {"Width","Height"} objects, and
the error stream ends with the Status (v4; the error text before v4).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Awaitable, Callable

from k8py.kubelet.streams import channels, spdy

log = logging.getLogger("k8py.kubelet.streams")

STREAM_WAIT_SECONDS = 30
CHUNK = 32 * 1024


class SpdyExec:
    def __init__(self, conduit, *, protocol: str, want: dict[str, bool], argv: list[str] | None,
                 start: Callable[[], Awaitable], report_exit: bool = True):
        self.conduit = conduit
        self.protocol = protocol
        self.want = want
        self.argv = argv
        self.start = start
        self.report_exit = report_exit
        self.reader, self.writer = spdy.FrameReader(), spdy.FrameWriter()
        self.streams: dict[str, int] = {}
        self.by_id: dict[int, str] = {}
        self._lock = asyncio.Lock()
        self._all_streams = asyncio.Event()
        self.process = None
        self._stdin_closed = False
        self._resize_buffer = b""
        self._early_size: tuple[int, int] | None = None   # a size sent before the process started

    def expected(self) -> set[str]:
        names = {"error"} | {k for k in ("stdin", "stdout", "stderr") if self.want.get(k)}
        return names

    async def _send(self, build: Callable[[], bytes]) -> None:
        async with self._lock:
            if not self.conduit.closed:
                await self.conduit.send(build())

    async def serve(self) -> None:
        frames_task = asyncio.create_task(self._read_frames())
        try:
            try:
                await asyncio.wait_for(self._all_streams.wait(), STREAM_WAIT_SECONDS)
            except asyncio.TimeoutError:
                log.info("exec over SPDY: the client never opened its streams")
                return
            try:
                self.process = await self.start()
            except Exception as err:  # tell the client on the error stream
                await self._finish_error(channels.error_status(f"failed to start: {err}"))
                return
            if self._early_size is not None:
                self._apply_size(*self._early_size)
            await self._run()
        finally:
            frames_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await frames_task
            await self.conduit.close()

    async def _run(self) -> None:
        pumps = [asyncio.create_task(self._pump(getattr(self.process, name, None), name))
                 for name in ("stdout", "stderr")]
        code = await self.process.wait()
        try:
            await asyncio.wait_for(asyncio.gather(*pumps), 5)
        except asyncio.TimeoutError:
            for task in pumps:
                task.cancel()
        status = channels.exit_status(code, self.argv) if self.report_exit else channels.success_status()
        await self._finish_error(status)

    async def _finish_error(self, status: dict) -> None:
        error_id = self.streams.get("error")
        if error_id is None:
            return
        message = channels.error_message(self.protocol, status)
        await self._send(lambda: self.writer.data(error_id, message or b"", fin=True))
        for name in ("stdout", "stderr"):
            sid = self.streams.get(name)
            if sid is not None and not self.want.get(name):
                await self._send(lambda: self.writer.data(sid, b"", fin=True))
        await self._send(lambda: self.writer.goaway(max(self.by_id or [0])))

    async def _pump(self, reader, name: str) -> None:
        sid = self.streams.get(name)
        if reader is None:
            if sid is not None:
                await self._send(lambda: self.writer.data(sid, b"", fin=True))
            return
        with contextlib.suppress(ConnectionError, RuntimeError):
            while chunk := await reader.read(CHUNK):
                if sid is not None:
                    await self._send(lambda: self.writer.data(sid, chunk))
        if sid is not None:
            await self._send(lambda: self.writer.data(sid, b"", fin=True))

    async def _read_frames(self) -> None:
        async for data in self.conduit.chunks():
            for frame in self.reader.feed(data):
                await self._handle(frame)
        # the client hung up: stdin ends
        self._close_stdin()

    async def _handle(self, frame) -> None:
        if isinstance(frame, spdy.SynStream):
            name = frame.headers.get("streamtype", "")
            if name not in ("error", "stdin", "stdout", "stderr", "resize"):
                await self._send(lambda: self.writer.rst_stream(frame.stream_id, spdy.PROTOCOL_ERROR))
                return
            self.streams[name] = frame.stream_id
            self.by_id[frame.stream_id] = name
            await self._send(lambda: self.writer.syn_reply(frame.stream_id, {}))
            if self.expected() <= set(self.streams):
                self._all_streams.set()
        elif isinstance(frame, spdy.DataFrame):
            name = self.by_id.get(frame.stream_id)
            if name == "stdin":
                await self._stdin(frame.data, frame.fin)
            elif name == "resize":
                self._resize(frame.data)
        elif isinstance(frame, spdy.Ping):
            await self._send(lambda: self.writer.ping(frame.id))
        elif isinstance(frame, (spdy.GoAway,)):
            self._close_stdin()
        elif isinstance(frame, spdy.RstStream) and self.by_id.get(frame.stream_id) == "stdin":
            self._close_stdin()

    async def _stdin(self, data: bytes, fin: bool) -> None:
        while self.process is None:          # input may come before the process exists
            await asyncio.sleep(0.01)
        stdin = getattr(self.process, "stdin", None)
        if stdin is not None and data and not self._stdin_closed:
            stdin.write(data)
            with contextlib.suppress(ConnectionError):
                await stdin.drain()
        if fin:
            self._close_stdin()

    def _close_stdin(self) -> None:
        if self._stdin_closed:
            return
        stdin = getattr(self.process, "stdin", None) if self.process is not None else None
        if self.process is None:
            return
        self._stdin_closed = True
        if stdin is not None:
            with contextlib.suppress(Exception):
                stdin.close()

    def _resize(self, data: bytes) -> None:
        self._resize_buffer += data
        decoder = json.JSONDecoder()
        text = self._resize_buffer.decode(errors="replace")
        pos = 0
        while True:
            while pos < len(text) and text[pos].isspace():
                pos += 1
            try:
                size, end = decoder.raw_decode(text, pos)
            except ValueError:
                break
            pos = end
            if isinstance(size, dict):
                try:
                    cols, rows = int(size.get("Width", 0)), int(size.get("Height", 0))
                except (TypeError, ValueError):
                    continue
                if self.process is None:
                    self._early_size = (cols, rows)
                else:
                    self._apply_size(cols, rows)
        self._resize_buffer = text[pos:].encode()

    def _apply_size(self, cols: int, rows: int) -> None:
        if hasattr(self.process, "resize"):
            with contextlib.suppress(Exception):
                self.process.resize(cols, rows)
