"""`k8py server --cluster-init`: one etcd member run and supervised by the server.

The etcd binary (Debian's etcd-server) runs as our child process with its
data in <data-dir>/server/db/etcd, its client URL on 127.0.0.1 only, TLS
from the cluster CA (the API server's serving certificate, and client
certificates required: the API server presents its own `etcd-client`
certificate). If etcd exits it is started again (with back-off); if the
server dies, the kernel stops etcd too (PR_SET_PDEATHSIG), so a kill -9 of the
server leaves no etcd behind.

Peers: this member's peer URL is on 127.0.0.1 in plain HTTP, since nothing
else can join it yet (joining more servers is not built).
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import shutil
import signal
import socket
import subprocess
from pathlib import Path

from aetcd import rpc

from k8py.storage.etcd.connection import Connection, EtcdConfig, EtcdUnavailableError

log = logging.getLogger(__name__)

READY_TIMEOUT_S = 60.0
RESTART_BACKOFF_S = (0.5, 10.0)  # first, largest
CLIENT_URL_FILE = "etcd-client-url"  # next to the member's data dir


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it when the server's main thread goes."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


class ManagedMember:
    def __init__(self, data_dir: Path, *, ca: Path, serving: tuple[Path, Path], client: tuple[Path, Path],
                 client_port: int = 2379, peer_port: int = 2380, name: str | None = None):
        self.data_dir = data_dir
        self.name = name or socket.gethostname()
        self.client_url = f"https://127.0.0.1:{client_port}"
        self.peer_url = f"http://127.0.0.1:{peer_port}"
        self.ca, self.serving, self.client = ca, serving, client
        self.process: subprocess.Popen | None = None
        self._supervisor: asyncio.Task | None = None
        self._stopping = False

    @property
    def config(self) -> EtcdConfig:
        """How the API server reaches this member."""
        return EtcdConfig.parse(self.client_url, self.ca, *self.client)

    def _command(self) -> list[str]:
        return ["etcd", "--name", self.name, "--data-dir", str(self.data_dir),
                "--listen-client-urls", self.client_url, "--advertise-client-urls", self.client_url,
                "--listen-peer-urls", self.peer_url, "--initial-advertise-peer-urls", self.peer_url,
                "--initial-cluster", f"{self.name}={self.peer_url}",
                "--cert-file", str(self.serving[0]), "--key-file", str(self.serving[1]),
                "--client-cert-auth", "--trusted-ca-file", str(self.ca),
                "--logger", "zap", "--log-outputs", str(self.data_dir.parent / "etcd.log"), "--log-level", "warn"]

    def _spawn(self) -> None:
        if shutil.which("etcd") is None:
            raise EtcdUnavailableError("no etcd binary on PATH: install Debian's etcd-server "
                                       "(scripts/system-deps.sh does)")
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Spawned from the loop's thread: PDEATHSIG follows the thread that forked.
        self.process = subprocess.Popen(self._command(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent)
        log.info("etcd member %s started (pid %d), client %s", self.name, self.process.pid, self.client_url)

    async def start(self) -> None:
        """Start etcd and return once it answers requests."""
        self._spawn()
        # Where `k8py etcd-snapshot` (another process) finds this member.
        (self.data_dir.parent / CLIENT_URL_FILE).write_text(self.client_url + "\n")
        self._supervisor = asyncio.get_running_loop().create_task(self._supervise(), name="etcd-member")
        await self._wait_ready()

    async def _wait_ready(self) -> None:
        connection = Connection(self.config)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_TIMEOUT_S
        try:
            while True:
                try:
                    await connection.call("KV", "Range", rpc.RangeRequest(key=b"\0", count_only=True))
                    return
                except Exception as err:
                    if loop.time() > deadline:
                        raise EtcdUnavailableError(f"etcd at {self.client_url} did not become ready "
                                                   f"(log: {self.data_dir.parent / 'etcd.log'}): {err}") from None
                    await asyncio.sleep(0.2)
        finally:
            await connection.close()

    async def _supervise(self) -> None:
        delay = RESTART_BACKOFF_S[0]
        while not self._stopping:
            process = self.process
            code = await asyncio.to_thread(process.wait)
            if self._stopping:
                return
            log.error("etcd member %s exited with %s; restarting in %.1fs", self.name, code, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RESTART_BACKOFF_S[1])
            if not self._stopping:
                self._spawn()

    async def stop(self) -> None:
        self._stopping = True
        process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(process.wait, 15)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait)
        if self._supervisor is not None:
            self._supervisor.cancel()
