"""Port-forward sessions: bytes between a client and 127.0.0.1:<port> in the pod.

Two wire forms arrive:
- channel.k8s.io WebSocket (the Python client; v4, its base64 variant, or no
  subprotocol at all): ports given as ?ports=a,b;
  port i uses data channel 2i and error channel 2i+1; the first message on
  each channel is the port number (2 bytes, little-endian).
- kubectl's SPDY/3.1 session tunnelled through WebSocket binary messages:
  for every local connection the client opens an "error" and a "data" stream
  with headers port and requestid.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from aiohttp import WSMsgType, web

from k8py.kubelet.streams import channels, spdy

log = logging.getLogger("k8py.kubelet.streams")

Connector = Callable[[int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]
CHUNK = 32 * 1024


def connect_error(port: int, pod: str, err: Exception) -> str:
    return f"error forwarding port {port} to pod {pod}: {err}"


# ---- channel.k8s.io (v4) ----------------------------------------------------

async def serve_channels(ws: web.WebSocketResponse, ports: list[int], connect: Connector, pod: str,
                         protocol: str = channels.V4) -> None:
    writers: dict[int, asyncio.StreamWriter | None] = {}
    readers: list[asyncio.Task] = []
    send_lock = asyncio.Lock()

    async def send(channel: int, data: bytes) -> None:
        async with send_lock:
            if not ws.closed:
                await channels.send(ws, protocol, channel, data)

    for index, port in enumerate(ports):
        data_ch, err_ch = 2 * index, 2 * index + 1
        await send(data_ch, channels.port_prefix(port))
        await send(err_ch, channels.port_prefix(port))
        try:
            reader, writer = await connect(port)
        except Exception as err:  # the pod refuses: say so on the error channel
            writers[data_ch] = None
            await send(err_ch, connect_error(port, pod, err).encode())
            continue
        writers[data_ch] = writer
        readers.append(asyncio.create_task(_pod_to_channel(reader, send, data_ch)))

    async def close_when_pods_are_done() -> None:
        # v4 has no per-channel close: once every pod connection has ended,
        # closing the WebSocket is how the client learns of the EOF
        if readers:
            await asyncio.gather(*readers, return_exceptions=True)
        await ws.close()

    closer = asyncio.create_task(close_when_pods_are_done())
    try:
        async for msg in ws:
            if msg.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
                if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                    break
                continue
            decoded = channels.decode(protocol, msg.data)
            if decoded is None:
                continue
            channel, payload = decoded
            writer = writers.get(channel)
            if writer is not None and payload:
                writer.write(payload)
                with contextlib.suppress(ConnectionError):
                    await writer.drain()
    finally:
        closer.cancel()
        for task in readers:
            task.cancel()
        for writer in writers.values():
            if writer is not None:
                writer.close()
        await ws.close()


async def _pod_to_channel(reader: asyncio.StreamReader, send, channel: int) -> None:
    with contextlib.suppress(ConnectionError, RuntimeError):
        while chunk := await reader.read(CHUNK):
            await send(channel, chunk)


# ---- SPDY/3.1 tunnelled in WebSocket (kubectl) ------------------------------

@dataclass
class _Pair:
    request_id: str
    port: int = 0
    error_stream: int | None = None
    data_stream: int | None = None
    writer: asyncio.StreamWriter | None = None
    task: asyncio.Task | None = None
    data_buffer: list[bytes] = field(default_factory=list)
    client_done: bool = False


class SpdyTunnel:
    """Serves one kubectl port-forward SPDY session over a conduit (WebSocket or raw)."""

    def __init__(self, conduit, connect: Connector, pod: str, allowed_ports: list[int] | None = None):
        self.conduit = conduit
        self.connect = connect
        self.pod = pod
        self.allowed_ports = allowed_ports
        self.reader = spdy.FrameReader()
        self.writer = spdy.FrameWriter()
        self.pairs: dict[str, _Pair] = {}
        self.by_stream: dict[int, _Pair] = {}
        self._send_lock = asyncio.Lock()
        self._last_stream = 0

    async def _send(self, build: Callable[[], bytes]) -> None:
        # compression state is ordered: build and send under one lock
        async with self._send_lock:
            if not self.conduit.closed:
                await self.conduit.send(build())

    async def serve(self) -> None:
        try:
            async for data in self.conduit.chunks():
                for frame in self.reader.feed(data):
                    await self._handle(frame)
        except spdy.ProtocolError as err:
            log.info("port-forward: SPDY protocol error: %s", err)
            with contextlib.suppress(Exception):
                await self._send(lambda: self.writer.goaway(self._last_stream, 1))
        finally:
            for pair in list(self.pairs.values()):
                self._close_pair(pair)
            await self.conduit.close()

    async def _handle(self, frame) -> None:
        if isinstance(frame, spdy.SynStream):
            await self._syn_stream(frame)
        elif isinstance(frame, spdy.DataFrame):
            await self._data(frame)
        elif isinstance(frame, spdy.RstStream):
            pair = self.by_stream.get(frame.stream_id)
            if pair is not None:
                self._close_pair(pair)
        elif isinstance(frame, spdy.Ping):
            await self._send(lambda: self.writer.ping(frame.id))
        elif isinstance(frame, spdy.GoAway):
            await self.conduit.close()
        # SETTINGS, WINDOW_UPDATE, HEADERS: nothing to do for port-forward

    async def _syn_stream(self, frame: spdy.SynStream) -> None:
        self._last_stream = max(self._last_stream, frame.stream_id)
        headers = frame.headers
        stream_type = headers.get("streamtype", "")
        request_id = headers.get("requestid", "")
        try:
            port = int(headers.get("port", ""))
            if not 0 < port < 65536:
                raise ValueError
        except ValueError:
            await self._send(lambda: self.writer.rst_stream(frame.stream_id, spdy.PROTOCOL_ERROR))
            return
        if stream_type not in ("error", "data"):
            await self._send(lambda: self.writer.rst_stream(frame.stream_id, spdy.PROTOCOL_ERROR))
            return
        await self._send(lambda: self.writer.syn_reply(frame.stream_id, {}))
        pair = self.pairs.setdefault(request_id, _Pair(request_id, port))
        pair.port = port
        if stream_type == "error":
            pair.error_stream = frame.stream_id
        else:
            pair.data_stream = frame.stream_id
        self.by_stream[frame.stream_id] = pair
        if pair.error_stream is not None and pair.data_stream is not None and pair.task is None:
            pair.task = asyncio.create_task(self._forward(pair))

    async def _data(self, frame: spdy.DataFrame) -> None:
        pair = self.by_stream.get(frame.stream_id)
        if pair is None or frame.stream_id != pair.data_stream:
            return   # the client's half of the error stream carries nothing
        if frame.data:
            if pair.writer is None:
                pair.data_buffer.append(frame.data)
            else:
                pair.writer.write(frame.data)
                with contextlib.suppress(ConnectionError):
                    await pair.writer.drain()
        if frame.fin:
            pair.client_done = True
            if pair.writer is not None and pair.writer.can_write_eof():
                with contextlib.suppress(OSError):
                    pair.writer.write_eof()

    async def _forward(self, pair: _Pair) -> None:
        try:
            if self.allowed_ports is not None and pair.port not in self.allowed_ports:
                raise ConnectionRefusedError(f"port {pair.port} is not among the forwarded ports")
            reader, writer = await self.connect(pair.port)
        except Exception as err:
            message = connect_error(pair.port, self.pod, err).encode()
            await self._send(lambda: self.writer.data(pair.error_stream, message, fin=True))
            await self._send(lambda: self.writer.data(pair.data_stream, b"", fin=True))
            self._forget(pair)
            return
        pair.writer = writer
        for chunk in pair.data_buffer:
            writer.write(chunk)
        pair.data_buffer.clear()
        if pair.client_done and writer.can_write_eof():
            writer.write_eof()
        try:
            while chunk := await reader.read(CHUNK):
                await self._send(lambda: self.writer.data(pair.data_stream, chunk))
            await self._send(lambda: self.writer.data(pair.data_stream, b"", fin=True))
            await self._send(lambda: self.writer.data(pair.error_stream, b"", fin=True))
        except (ConnectionError, RuntimeError):
            pass
        finally:
            writer.close()
            self._forget(pair)

    def _close_pair(self, pair: _Pair) -> None:
        if pair.task is not None and not pair.task.done():
            pair.task.cancel()
        if pair.writer is not None:
            pair.writer.close()
        self._forget(pair)

    def _forget(self, pair: _Pair) -> None:
        self.pairs.pop(pair.request_id, None)
        for sid in (pair.error_stream, pair.data_stream):
            if sid is not None and self.by_stream.get(sid) is pair:
                del self.by_stream[sid]
