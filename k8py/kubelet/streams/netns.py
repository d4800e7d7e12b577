"""Opening a TCP connection from inside a pod's network namespace.

setns(2) switches only the calling thread, and a socket stays in the
namespace it was created in: a worker thread enters the pod's namespace,
connects, and switches back. No helper processes, no socat.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import socket
import threading

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
_lock = threading.Lock()


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _connect_in(netns_path: str | None, host: str, port: int, timeout: float) -> socket.socket:
    if not netns_path:
        return socket.create_connection((host, port), timeout=timeout)
    with _lock:  # keep it simple: one namespace switch at a time
        own = os.open(f"/proc/self/task/{threading.get_native_id()}/ns/net", os.O_RDONLY)
        target = os.open(netns_path, os.O_RDONLY)
        try:
            _setns(target)
            try:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            finally:
                _setns(own)
        finally:
            os.close(target)
            os.close(own)
    try:
        sock.settimeout(timeout)
        sock.connect((host, port))   # the socket belongs to the pod's namespace already
        sock.settimeout(None)
        sock.setblocking(False)
        return sock
    except BaseException:
        sock.close()
        raise


async def open_connection(netns_path: str | None, port: int, host: str = "127.0.0.1",
                          timeout: float = 5.0) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    sock = await asyncio.to_thread(_connect_in, netns_path, host, port, timeout)
    sock.setblocking(False)
    return await asyncio.open_connection(sock=sock)
