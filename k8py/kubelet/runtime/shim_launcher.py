"""Starts container shims: forked from a long-lived shim zygote, or (if that is unavailable)
as a fresh `python -m k8py.kubelet.runtime.shim <bundle>`.

A fresh interpreter plus the shim's imports cost tens of milliseconds per container,
more than `runc run` itself; the zygote (`shim.serve`) pays for them once and forks.
Either way the shim reports one line, `ok <pid>` or `err <message>`, on a pipe the
launcher reads, and then lives on its own (its own session, reparented away from the
agent), so restarting the agent never touches running containers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

log = logging.getLogger("k8py.kubelet.runtime")

PACKAGE_PARENT = str(Path(__file__).resolve().parents[3])     # the directory holding k8py/


def _shim_command(*args: str) -> list[str]:
    # -S: no site-packages scan; the shim needs only the stdlib and this package.
    return [sys.executable, "-S", "-m", "k8py.kubelet.runtime.shim", *args]


def _shim_env() -> dict:
    return {**os.environ, "PYTHONPATH": PACKAGE_PARENT}


async def _read_line(fd: int, timeout: float) -> bytes | None:
    """The first line written to the (non-blocking) pipe `fd`; None on timeout. Closes fd."""
    loop = asyncio.get_running_loop()
    buf = bytearray()
    done = loop.create_future()

    def readable() -> None:
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        buf.extend(chunk)
        if (not chunk or b"\n" in buf) and not done.done():
            done.set_result(None)

    loop.add_reader(fd, readable)
    try:
        await asyncio.wait_for(done, timeout)
    except asyncio.TimeoutError:
        return None
    finally:
        loop.remove_reader(fd)
        os.close(fd)
    return bytes(buf).split(b"\n", 1)[0]


class ShimLauncher:
    def __init__(self) -> None:
        self._zygote: subprocess.Popen | None = None
        self._control: socket.socket | None = None
        self._zygote_failed = False       # could not be started: use fresh interpreters

    def _ensure_zygote(self) -> socket.socket | None:
        if self._zygote is not None and self._zygote.poll() is None and self._control is not None:
            return self._control
        self.close()
        if self._zygote_failed:
            return None
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            # Its own session: a signal to the agent's process group must not reach it (or,
            # through it, a shim in the instant before that shim's setsid).
            self._zygote = subprocess.Popen(_shim_command("--serve"), stdin=theirs, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL, start_new_session=True,
                                            cwd="/", env=_shim_env())
        except OSError as exc:
            log.warning("shim zygote did not start (%s); starting shims one interpreter each", exc)
            self._zygote_failed = True
            ours.close()
            return None
        finally:
            theirs.close()
        self._control = ours
        return ours

    def _request(self, bundle: Path, report_w: int) -> bool:
        """Hand one start to the zygote; False when no zygote takes it."""
        for _ in range(2):          # a zygote that died is replaced once
            control = self._ensure_zygote()
            if control is None:
                return False
            try:
                socket.send_fds(control, [str(bundle).encode()], [report_w])
                return True
            except OSError as exc:
                log.info("shim zygote went away (%s); starting a new one", exc)
                self.close()
        return False

    async def start(self, bundle: Path, timeout: float) -> str:
        """Start the shim for `bundle`; its report line ('' when it said nothing)."""
        report_r, report_w = os.pipe()
        try:
            handed = self._request(bundle, report_w)
        finally:
            os.close(report_w)      # the zygote has its own copy now (or there is none)
        if not handed:
            os.close(report_r)
            return await self._start_fresh(bundle, timeout)
        os.set_blocking(report_r, False)
        line = await _read_line(report_r, timeout)
        if line is None:
            return "err the container shim did not report in time"
        return line.decode(errors="replace").strip()

    async def _start_fresh(self, bundle: Path, timeout: float) -> str:
        shim_log = open(bundle / "shim.log", "ab")
        try:
            proc = await asyncio.create_subprocess_exec(
                *_shim_command(str(bundle)), stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                stderr=shim_log, start_new_session=True, cwd=str(bundle), env=_shim_env())
        finally:
            shim_log.close()
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), timeout)
        except asyncio.TimeoutError:
            line = b"err the container shim did not report in time"
        await proc.wait()            # only the launcher: the shim itself forked away
        return line.decode(errors="replace").strip()

    def close(self) -> None:
        """Let the zygote go (it exits when its control socket closes); shims are unaffected."""
        if self._control is not None:
            self._control.close()
            self._control = None
        if self._zygote is not None:
            try:
                self._zygote.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self._zygote.kill()
                self._zygote.wait()
            self._zygote = None
