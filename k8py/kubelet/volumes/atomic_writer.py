"""Write a volume's files so readers never see a half-updated set.

The upstream layout: the payload lives in a timestamped folder `..<stamp>`,
`..data` is a symlink to it, and each visible name is a symlink through
`..data`. An update writes a new folder and swaps `..data` with one rename, so
a reader sees either the old set or the new one.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

DATA = "..data"


def current_payload(target: Path) -> dict[str, tuple[bytes, int]]:
    """What is there now: relative path -> (content, mode)."""
    data = target / DATA
    if not data.is_symlink():
        return {}
    root = target / os.readlink(data)
    out = {}
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            out[str(p.relative_to(root))] = (p.read_bytes(), p.stat().st_mode & 0o7777)
    return out


def write(target: Path, payload: dict[str, tuple[bytes, int]], uid: int | None = None,
          gid: int | None = None) -> bool:
    """Make `target` show exactly `payload`; returns False when it already did."""
    target.mkdir(parents=True, exist_ok=True)
    if current_payload(target) == payload:
        return False
    stamp = f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{time.time_ns() % 10**9}"
    new_dir = target / stamp
    new_dir.mkdir(mode=0o755)
    for rel, (content, mode) in payload.items():
        path = new_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        os.chmod(path, mode)
        if uid is not None or gid is not None:
            os.chown(path, -1 if uid is None else uid, -1 if gid is None else gid)
    old_dir = os.readlink(target / DATA) if (target / DATA).is_symlink() else None
    tmp_link = target / "..data_tmp"
    if tmp_link.is_symlink() or tmp_link.exists():
        tmp_link.unlink()
    os.symlink(stamp, tmp_link)
    os.replace(tmp_link, target / DATA)          # the one atomic step
    wanted_top = {rel.split("/", 1)[0] for rel in payload}
    for name in wanted_top:
        link = target / name
        if not link.is_symlink():
            if link.exists():
                shutil.rmtree(link) if link.is_dir() else link.unlink()
            os.symlink(f"{DATA}/{name}", link)
    for entry in os.listdir(target):
        if entry.startswith(".."):
            continue
        if entry not in wanted_top and (target / entry).is_symlink():
            (target / entry).unlink()
    if old_dir and old_dir != stamp:
        shutil.rmtree(target / old_dir, ignore_errors=True)
    return True
