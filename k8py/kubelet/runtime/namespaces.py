"""Persistent namespaces for a pod sandbox: bind-mounted nsfs files, no pause process.

net, ipc and uts namespaces live as long as their bind mounts do. A PID
namespace dies with its init, so a shared one is held by a tiny `sleep`
running as its PID 1, started in its own session so it outlives the kubelet.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from pathlib import Path

MNT_DETACH = 2
_libc = ctypes.CDLL(None, use_errno=True)


def create(ns_dir: Path, kinds: list[str], hostname: str | None) -> dict[str, str]:
    """Unshare the given namespace kinds (net/ipc/uts) into files under ns_dir; set the hostname."""
    ns_dir.mkdir(parents=True, exist_ok=True)
    if not kinds:
        return {}
    paths = {kind: str(ns_dir / kind) for kind in kinds}
    for path in paths.values():
        Path(path).touch()
    args = ["unshare"] + [f"--{kind}={path}" for kind, path in paths.items()]
    if "uts" in kinds and hostname:
        # A fresh UTS namespace is named after the host until told otherwise.
        args += ["sh", "-c", 'printf %s "$0" > /proc/sys/kernel/hostname', hostname]
    else:
        args += ["true"]
    result = subprocess.run(args, capture_output=True, text=True)
    if result.returncode != 0:
        release(paths.values())
        raise OSError(f"unshare failed: {result.stderr.strip()}")
    return paths


def release(paths) -> None:
    for path in paths:
        if not path:
            continue
        _libc.umount2(str(path).encode(), MNT_DETACH)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def start_pid_holder() -> int:
    """PID 1 of a new PID namespace; returns its host PID."""
    proc = subprocess.Popen(["unshare", "--pid", "--fork", "--kill-child", "sleep", "infinity"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        text = children.read_text().split() if children.exists() else []
        if text:
            return int(text[0])
        time.sleep(0.005)
    proc.kill()
    raise OSError("the PID namespace holder did not start")


def stop_pid_holder(pid: int | None) -> None:
    if not pid:
        return
    try:
        parent = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return
    for target in (pid, parent):     # unshare --kill-child exits once its child dies; kill both anyway
        try:
            os.kill(target, signal.SIGKILL)
        except ProcessLookupError:
            pass


def mount_tmpfs(target: Path, size: str = "64m") -> None:
    target.mkdir(parents=True, exist_ok=True)
    if _libc.mount(b"shm", str(target).encode(), b"tmpfs", 0x2 | 0x4 | 0x8,   # nosuid, nodev, noexec
                   f"mode=1777,size={size}".encode()) != 0:
        raise OSError(ctypes.get_errno(), f"mounting tmpfs on {target}")


def mount_overlay(target: Path, lower: Path, upper: Path, work: Path) -> None:
    for d in (target, upper, work):
        d.mkdir(parents=True, exist_ok=True)
    options = f"lowerdir={lower},upperdir={upper},workdir={work}".encode()
    if _libc.mount(b"overlay", str(target).encode(), b"overlay", 0, options) != 0:
        raise OSError(ctypes.get_errno(), f"mounting overlay on {target}: {os.strerror(ctypes.get_errno())}")


def unmount(target: Path) -> None:
    _libc.umount2(str(target).encode(), MNT_DETACH)


def is_mounted(target: Path) -> bool:
    text = Path("/proc/self/mountinfo").read_text()
    needle = f" {target} "
    return any(needle in line for line in text.splitlines())
