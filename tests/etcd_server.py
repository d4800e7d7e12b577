"""A real etcd (Debian's etcd-server) for tests: one member on free loopback ports, its data
in a temporary folder, stopped by PID."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Etcd:
    process: subprocess.Popen
    data_dir: Path
    client_port: int
    tls: tuple[Path, Path, Path] | None = None  # (CA, client certificate, client key)

    @property
    def endpoint(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.client_port}"

    def etcdctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        tls = [f"--cacert={self.tls[0]}", f"--cert={self.tls[1]}", f"--key={self.tls[2]}"] if self.tls else []
        result = subprocess.run(["etcdctl", f"--endpoints={self.endpoint}", *tls, *args], capture_output=True,
                                text=True, timeout=30, env={**os.environ, "ETCDCTL_API": "3"})
        if check and result.returncode != 0:
            raise AssertionError(f"etcdctl {' '.join(args)} failed: {result.stdout}{result.stderr}")
        return result

    def wipe(self) -> None:
        """Delete every key (revisions go on growing: tests compare revisions relative to a start)."""
        self.etcdctl("del", "", "--from-key")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_etcd(data_dir: Path, timeout: float = 30.0, pki=None, member: str = "member") -> Etcd:
    """With `pki` (k8py.apimachinery.certs.PKI) etcd serves TLS with the PKI's serving
    certificate and asks clients for a certificate the PKI's CA signed (--client-cert-auth).
    etcd's data dir is <data_dir>/<member>."""
    data_dir.mkdir(parents=True, exist_ok=True)
    client, peer = _free_port(), _free_port()
    scheme, tls_flags, tls = "http", [], None
    if pki is not None:
        scheme, tls = "https", (pki.ca_cert, pki.admin_cert, pki.admin_key)
        tls_flags = ["--cert-file", str(pki.server_cert), "--key-file", str(pki.server_key),
                     "--client-cert-auth", "--trusted-ca-file", str(pki.ca_cert)]
    log = open(data_dir / "etcd.log", "ab")
    process = subprocess.Popen(
        ["etcd", "--name", "test", "--data-dir", str(data_dir / member),
         "--listen-client-urls", f"{scheme}://127.0.0.1:{client}",
         "--advertise-client-urls", f"{scheme}://127.0.0.1:{client}", *tls_flags,
         "--listen-peer-urls", f"http://127.0.0.1:{peer}", "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
         "--initial-cluster", f"test=http://127.0.0.1:{peer}", "--logger", "zap", "--log-level", "warn"],
        stdout=log, stderr=subprocess.STDOUT)
    log.close()
    etcd = Etcd(process, data_dir, client, tls)
    deadline = time.monotonic() + timeout
    while etcd.etcdctl("endpoint", "health", check=False).returncode != 0:
        if process.poll() is not None or time.monotonic() > deadline:
            etcd.stop()
            raise AssertionError(f"etcd did not start: {(data_dir / 'etcd.log').read_text()[-2000:]}")
        time.sleep(0.1)
    return etcd
