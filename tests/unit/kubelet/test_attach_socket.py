"""The kubelet's side of a container shim's attach socket (k8py.kubelet.runtime.streams)."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading

from k8py.kubelet.runtime.shim import FRAME_EXIT, FRAME_STDIN, FRAME_STDOUT, frame
from k8py.kubelet.runtime.streams import attach_socket


def _read_frame(conn: socket.socket) -> tuple[int, bytes]:
    head = b""
    while len(head) < 5:
        head += conn.recv(5 - len(head))
    kind, length = struct.unpack(">BI", head)
    payload = b""
    while len(payload) < length:
        payload += conn.recv(length - len(payload))
    return kind, payload


async def test_output_of_a_container_that_ends_as_its_input_arrives_is_not_lost(tmp_path):
    """The shim answers the last input line, reports the exit and closes the socket before the
    client's next frame (closing stdin) is written: that write fails, and must not cost the
    output and exit code already on their way."""
    path = str(tmp_path / "attach.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    got_input, closed = threading.Event(), threading.Event()
    received = []

    def shim():
        conn, _ = listener.accept()
        with conn:
            received.append(_read_frame(conn))
            got_input.set()
            conn.sendall(frame(FRAME_STDOUT, b"got hello\n") + frame(FRAME_EXIT, b"0"))
        closed.set()

    thread = threading.Thread(target=shim, daemon=True)
    thread.start()
    try:
        async def no_status():
            raise AssertionError("the exit code came with the output")
        process = await attach_socket(path, True, no_status)
        process.stdin.write(b"hello\n")
        await process.stdin.drain()
        await asyncio.to_thread(closed.wait, 10)
        process.stdin.close()           # at once, before the loop reads what the shim sent
        await process.stdin.drain()
        assert await asyncio.wait_for(process.stdout.read(), 10) == b"got hello\n"
        assert await asyncio.wait_for(process.wait(), 10) == 0
        assert received == [(FRAME_STDIN, b"hello\n")]
    finally:
        thread.join(10)
        listener.close()
