"""What every benchmark needs: a free port, a pinned `k8py server` ready to serve,
and a process's RSS and CPU time from /proc."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far: what a phase cost, however busy the machine is."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pinned(cmd: list[str], core: int) -> list[str]:
    """`cmd` on one core (taskset), where there are two or more to share out."""
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", str(core), *cmd]
    return cmd


def start_server(data_dir: Path, port: int, token: str, extra: tuple[str, ...] = (),
                 wait_for_kubeconfig: bool = True, timeout: float = 30) -> tuple[subprocess.Popen, float]:
    """A `k8py server` without a node agent, pinned to core 0; returns once /readyz answers
    (and its kubeconfig is written, unless told not to wait for that), with the seconds it took.

    `token` is the join token of the benches' hollow agents and, through a --token-file entry,
    the benches' own admin bearer token (a join token alone grants no more than joining)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    token_file = data_dir / "bench-admin-token.csv"
    token_file.write_text(f'{token},system:admin,bench-admin,"system:masters"\n')
    cmd = [sys.executable, "-m", "k8py", "server", "--data-dir", str(data_dir), "--https-listen-port",
           str(port), "--token", token, "--token-file", str(token_file), "--disable-agent", *extra]
    ctx = ssl._create_unverified_context()
    started = time.monotonic()
    proc = subprocess.Popen(pinned(cmd, 0), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    kubeconfig = data_dir / "kubeconfig.yaml"
    while time.monotonic() - started < timeout:
        try:
            with urllib.request.urlopen(f"https://127.0.0.1:{port}/readyz", context=ctx, timeout=0.5) as r:
                if r.status == 200 and (kubeconfig.exists() or not wait_for_kubeconfig):
                    return proc, time.monotonic() - started
        except Exception:
            pass
        time.sleep(0.01)
    proc.kill()
    raise SystemExit("server did not become ready")


async def wait_nodes_ready(client, count: int) -> None:
    """Until `count` nodes are Ready (hollow agents registering), at most two minutes."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        nodes = (await client.resource("v1", "nodes").list()).get("items") or []
        ready = [n for n in nodes if any(c.get("type") == "Ready" and c.get("status") == "True"
                                         for c in (n.get("status") or {}).get("conditions") or [])]
        if len(ready) >= count:
            return
        await asyncio.sleep(0.5)
    raise SystemExit(f"hollow nodes did not become Ready ({count} wanted)")
