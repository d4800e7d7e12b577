"""Taking over an aiohttp server connection after `101 Switching Protocols`
for upgrades aiohttp does not know (it handles only WebSocket): SPDY/3.1,
which kubectl and client-go fall back to for exec, attach and port-forward.

This leans on two aiohttp internals, kept to this one place: the request
handler's payload-parser hook (the one WebSocket uses) receives every byte
after the request, and the handler's response is marked as already sent.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import AsyncIterator

from aiohttp import web



class RawConduit:
    """Bytes in from a queue the HTTP server feeds, out through the transport."""

    def __init__(self, transport: asyncio.Transport, incoming: asyncio.Queue):
        self.transport = transport
        self.incoming = incoming

    @property
    def closed(self) -> bool:
        return self.transport.is_closing()

    async def chunks(self) -> AsyncIterator[bytes]:
        while True:
            data = await self.incoming.get()
            if not data:
                return
            yield data

    async def send(self, data: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(data)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            self.transport.close()


class _Feeder:
    """Stands where aiohttp's WebSocket reader would: gets the raw bytes."""

    def __init__(self, queue: asyncio.Queue):
        self.queue = queue

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        if data:
            self.queue.put_nowait(bytes(data))
        return False, b""

    def feed_eof(self) -> None:
        self.queue.put_nowait(b"")


class SwitchedResponse(web.StreamResponse):
    """What the handler returns once it has spoken the upgraded protocol: the
    101 went out by hand, so aiohttp must send nothing more."""

    def __init__(self):
        super().__init__(status=101)
        self.force_close()   # no keep-alive: the connection belonged to the session

    async def prepare(self, request):
        return None

    async def write_eof(self, data: bytes = b"") -> None:
        return None


def switch_protocols(request: web.Request, headers: dict[str, str]) -> RawConduit:
    protocol, transport = request.protocol, request.transport
    if protocol is None or transport is None:
        raise ConnectionResetError("the client went away")
    queue: asyncio.Queue = asyncio.Queue()
    protocol._upgraded = True            # aiohttp only flags websocket/tcp upgrades itself
    protocol.set_parser(_Feeder(queue))  # every later byte comes to us
    head = "HTTP/1.1 101 Switching Protocols\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    transport.write(head.encode())
    return RawConduit(transport, queue)
