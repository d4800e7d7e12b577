"""A byte pipe a SPDY session runs over: WebSocket binary messages (kubectl's
tunnel) or the raw connection left after an HTTP `Upgrade: SPDY/3.1`."""

from __future__ import annotations

from typing import AsyncIterator

from aiohttp import WSMsgType, web



class WebSocketConduit:
    def __init__(self, ws: web.WebSocketResponse):
        self.ws = ws

    @property
    def closed(self) -> bool:
        return self.ws.closed

    async def chunks(self) -> AsyncIterator[bytes]:
        async for msg in self.ws:
            if msg.type == WSMsgType.BINARY:
                yield msg.data
            elif msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                return

    async def send(self, data: bytes) -> None:
        if not self.ws.closed:
            await self.ws.send_bytes(data)

    async def close(self) -> None:
        await self.ws.close()
