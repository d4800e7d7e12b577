"""A tiny stand-in for the runc runtime's streaming side: "containers" are
local processes, so the kubelet server's protocols can be tested without
images. Everything else about the runtime is out of scope here."""

from __future__ import annotations

import asyncio
import fcntl
import os
import pty
import struct
import termios
import time

from k8py.kubelet.runtime.interface import (LABEL_CONTAINER_NAME, LABEL_POD_NAME, LABEL_POD_NAMESPACE,
                                            LABEL_POD_UID, LABEL_RESTART_COUNT, ContainerStatus, Sandbox)


class _PtyReader:
    def __init__(self, fd: int):
        self.fd = fd

    async def read(self, n: int) -> bytes:
        loop = asyncio.get_running_loop()
        ready = asyncio.Event()
        loop.add_reader(self.fd, ready.set)
        try:
            await ready.wait()
        finally:
            loop.remove_reader(self.fd)
        try:
            return os.read(self.fd, n)
        except OSError:   # EIO once the child side has closed
            return b""


class _PtyWriter:
    def __init__(self, fd: int):
        self.fd = fd

    def write(self, data: bytes) -> None:
        os.write(self.fd, data)

    async def drain(self) -> None:
        return None

    def close(self) -> None:
        os.write(self.fd, b"\x04")   # ^D: end of input on a terminal


class LocalProcess:
    """The ExecProcess shape: stdin/stdout/stderr, resize, wait."""

    def __init__(self, proc: asyncio.subprocess.Process, master: int | None = None):
        self.proc, self.master = proc, master
        if master is None:
            self.stdin, self.stdout, self.stderr = proc.stdin, proc.stdout, proc.stderr
        else:
            self.stdin, self.stdout, self.stderr = _PtyWriter(master), _PtyReader(master), None
        self.sizes: list[tuple[int, int]] = []

    def resize(self, cols: int, rows: int) -> None:
        self.sizes.append((cols, rows))
        if self.master is not None:
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    async def wait(self) -> int:
        return await self.proc.wait()


class FakeRuntime:
    def __init__(self):
        self.containers: dict[str, ContainerStatus] = {}
        self.sandboxes: list[Sandbox] = []
        self.attached: dict[str, list[str]] = {}     # container id -> argv run on attach
        self.processes: list[asyncio.subprocess.Process] = []
        self.usage: dict = {}                           # container id -> ContainerStats

    def add_container(self, pod: dict, name: str, log_path: str = "", state: str = "running",
                      restart_count: int = 0, attach_argv: list[str] | None = None) -> str:
        meta = pod["metadata"]
        cid = f"{meta['name']}-{name}-{restart_count}"
        self.containers[cid] = ContainerStatus(
            id=cid, sandbox_id="sb-" + meta["uid"], name=name, state=state, log_path=log_path,
            created_at=time.time() + restart_count,
            labels={LABEL_POD_UID: meta["uid"], LABEL_POD_NAME: meta["name"],
                    LABEL_POD_NAMESPACE: meta["namespace"], LABEL_CONTAINER_NAME: name,
                    LABEL_RESTART_COUNT: str(restart_count)})
        if attach_argv:
            self.attached[cid] = attach_argv
        return cid

    async def list_containers(self):
        return list(self.containers.values())

    async def list_sandboxes(self):
        return list(self.sandboxes)

    async def container_status(self, container_id: str) -> ContainerStatus:
        return self.containers[container_id]

    async def exec_stream(self, container_id: str, argv: list[str], tty: bool, stdin: bool) -> LocalProcess:
        if container_id not in self.containers:
            raise RuntimeError(f"no container {container_id}")
        if tty:
            master, slave = pty.openpty()
            proc = await asyncio.create_subprocess_exec(*argv, stdin=slave, stdout=slave, stderr=slave,
                                                        start_new_session=True)
            os.close(slave)
            self.processes.append(proc)
            return LocalProcess(proc, master)
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        self.processes.append(proc)
        return LocalProcess(proc)

    async def attach(self, container_id: str, stdin: bool = True) -> LocalProcess:
        return await self.exec_stream(container_id, self.attached[container_id], tty=False, stdin=stdin)

    async def stats(self, container_id: str):
        return self.usage.get(container_id)

    async def cleanup(self) -> None:
        for proc in self.processes:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
