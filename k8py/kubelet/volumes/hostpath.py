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


# type -> (what the path must be, how upstream's FailedMount message names it)
WANTED = {"Directory": ("Directory", "a directory"), "File": ("File", "a file"),
          "Socket": ("Socket", "a socket file"), "CharDevice": ("CharDevice", "a character device"),
          "BlockDevice": ("BlockDevice", "a block device")}


def check(path: str, kind: str) -> None:
    """Create or verify `path` as hostPath `type` says; raise VolumeError with upstream's wording
    ("hostPath type check failed: PATH is not a directory", ...)."""
    if kind in ("", None):
        return
    found = _kind(path)
    if kind == "DirectoryOrCreate":
        if found is None:
            os.makedirs(path, mode=0o755, exist_ok=True)
            return
        kind = "Directory"
    elif kind == "FileOrCreate":
        if found is None:
            # As upstream, the parent must exist: only the file itself is made (mode 0644).
            try:
                fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o644)
            except OSError as e:
                raise VolumeError(f"open {path}: {e.strerror.lower() if e.strerror else e}") from None
            os.close(fd)
            return
        kind = "File"
    wanted = WANTED.get(kind)
    if wanted is None:
        raise VolumeError(f"{kind} is an invalid volume type")
    if found != wanted[0]:
        raise VolumeError(f"hostPath type check failed: {path} is not {wanted[1]}")


async def setup(ctx, pod: dict, volume: dict, target: Path) -> Path:
    source = volume.get("hostPath") or {}
    path = source.get("path", "")
    check(path, source.get("type") or "")
    return Path(path)
