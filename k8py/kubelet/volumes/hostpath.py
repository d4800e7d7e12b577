"""hostPath: a path on the node, checked against the volume's `type`."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from k8py.kubelet.volumes.base import VolumeError


def _kind(path: str) -> str | None:
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return None
    for test, name in ((stat.S_ISDIR, "Directory"), (stat.S_ISREG, "File"), (stat.S_ISSOCK, "Socket"),
                       (stat.S_ISCHR, "CharDevice"), (stat.S_ISBLK, "BlockDevice")):
        if test(mode):
            return name
    return "other"


def check(path: str, kind: str) -> None:
    """Create or verify `path` as hostPath `type` says; raise VolumeError with upstream wording."""
    found = _kind(path)
    if kind in ("", None):
        return
    if kind == "DirectoryOrCreate":
        if found is None:
            os.makedirs(path, mode=0o755, exist_ok=True)
        elif found != "Directory":
            raise VolumeError(f"hostPath type check failed: {path} is not a directory")
        return
    if kind == "FileOrCreate":
        if found is None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o644)
            os.close(fd)
        elif found != "File":
            raise VolumeError(f"hostPath type check failed: {path} is not a file")
        return
    wanted = {"Directory": ("Directory", "directory"), "File": ("File", "file"),
              "Socket": ("Socket", "socket"), "CharDevice": ("CharDevice", "character device"),
              "BlockDevice": ("BlockDevice", "block device")}.get(kind)
    if wanted is None:
        raise VolumeError(f"hostPath type check failed: unknown type {kind}")
    if found is None:
        raise VolumeError(f"hostPath type check failed: {path} is not a {wanted[1]}")
    if found != wanted[0]:
        raise VolumeError(f"hostPath type check failed: {path} is not a {wanted[1]}")


async def setup(ctx, pod: dict, volume: dict, target: Path) -> Path:
    source = volume.get("hostPath") or {}
    path = source.get("path", "")
    check(path, source.get("type") or "")
    return Path(path)
