"""An exec or attach session: a process's stdio carried over channel.k8s.io
WebSocket messages.

The process is whatever the runtime returned from exec_stream/attach: it has
`stdin` (a writer or None), `stdout`/`stderr` (readers or None), `resize(cols,
rows)` and `await wait() -> exit code`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiohttp import WSMsgType, web

from k8py.kubelet.streams import channels

log = logging.getLogger("k8py.kubelet.streams")


async def _pump(reader, ws: web.WebSocketResponse, protocol: str, channel: int, send: bool) -> None:
    if reader is None:
        return
    while True:
        chunk = await reader.read(32 * 1024)
        if not chunk:
            return
        if send and not ws.closed:
            try:
                await channels.send(ws, protocol, channel, chunk)
            except (ConnectionResetError, RuntimeError):
                send = False   # client went away: keep draining so the process isn't blocked


async def _client_input(ws: web.WebSocketResponse, process, protocol: str) -> None:
    stdin = getattr(process, "stdin", None)
    async for msg in ws:
        if msg.type not in (WSMsgType.BINARY, WSMsgType.TEXT):
            break
        decoded = channels.decode(protocol, msg.data)
        if decoded is None:
            continue
        channel, payload = decoded
        if channel == channels.STDIN and stdin is not None:
            if payload:
                stdin.write(payload)
                with contextlib.suppress(ConnectionError):
                    await stdin.drain()
        elif channel == channels.RESIZE:
            size = channels.parse_resize(payload)
            if size and hasattr(process, "resize"):
                with contextlib.suppress(Exception):
                    process.resize(*size)
        elif channel == channels.CLOSE and protocol == channels.V5 and payload[:1] == bytes([channels.STDIN]):
            _close_stdin(stdin)
            stdin = None
    _close_stdin(stdin)


def _close_stdin(stdin) -> None:
    if stdin is not None:
        with contextlib.suppress(Exception):
            stdin.close()


async def run_session(ws: web.WebSocketResponse, process, *, protocol: str, stdout: bool, stderr: bool,
                      argv: list[str] | None = None, report_exit: bool = True) -> int | None:
    """Carry the process's stdio until it ends; then send its Status on the error channel."""
    # The lowest writable channel gets an empty message first: clients take it
    # as "the stream is established" (upstream does the same).
    first = channels.STDOUT if stdout else channels.STDERR if stderr else channels.ERROR
    await channels.send(ws, protocol, first)
    input_task = asyncio.create_task(_client_input(ws, process, protocol))
    pumps = asyncio.gather(_pump(getattr(process, "stdout", None), ws, protocol, channels.STDOUT, stdout),
                           _pump(getattr(process, "stderr", None), ws, protocol, channels.STDERR, stderr))
    wait_task = asyncio.ensure_future(process.wait())
    code = None
    try:
        await asyncio.wait({wait_task, input_task}, return_when=asyncio.FIRST_COMPLETED)
        if not wait_task.done():
            # the client went away: an attached container keeps running, an exec'd
            # command sees its stdin close and ends on its own
            detach = getattr(process, "detach", None)
            if detach is not None:
                with contextlib.suppress(Exception):
                    await detach()
            return None
        code = wait_task.result()
        try:
            await asyncio.wait_for(asyncio.shield(pumps), timeout=5)
        except asyncio.TimeoutError:   # a background child kept the pipe open
            pumps.cancel()
        if report_exit and not ws.closed:
            message = channels.error_message(protocol, channels.exit_status(code, argv))
            if message is not None:
                await channels.send(ws, protocol, channels.ERROR, message)
    except (ConnectionResetError, RuntimeError) as err:
        log.debug("stream ended early: %s", err)
    finally:
        if not wait_task.done():
            wait_task.cancel()
        input_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await input_task
        if not pumps.done():
            pumps.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pumps
        await ws.close()
    return code


async def send_error(ws: web.WebSocketResponse, message: str, protocol: str = channels.V5) -> None:
    with contextlib.suppress(Exception):
        await channels.send(ws, protocol, channels.ERROR,
                            channels.error_message(protocol, channels.error_status(message)) or b"")
    await ws.close()
