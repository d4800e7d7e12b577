"""Applying an image layer (a tar, maybe gzipped) on top of a directory.

OCI whiteouts: `.wh.<name>` deletes `<name>` from the layers below and
`.wh..wh..opq` empties its directory of everything the lower layers put there.
Snapshots below share inodes with this one (hard-link copies), so a file is
always unlinked before it is rewritten, never written through.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import stat
import tarfile
from pathlib import Path

WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"


class LayerError(Exception):
    pass


def _safe_relpath(name: str) -> str | None:
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise LayerError(f"layer entry escapes the root: {name!r}")
    return "/".join(parts) or None


def _remove(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        pass


def _inside(root: Path, rel: str) -> Path:
    """The host path of `rel`, refusing to follow symlinks in the parent chain out of root."""
    path = root / rel
    parent = path.parent.resolve()
    root_resolved = root.resolve()
    if parent != root_resolved and root_resolved not in parent.parents:
        raise LayerError(f"layer entry {rel!r} resolves outside the root")
    return parent / path.name


def _apply_metadata(path: Path, m: tarfile.TarInfo, is_root: bool) -> None:
    if is_root:
        try:
            os.lchown(path, m.uid, m.gid)
        except OSError:
            pass
    if not m.issym():
        os.chmod(path, stat.S_IMODE(m.mode))
    try:
        os.utime(path, (m.mtime, m.mtime), follow_symlinks=False)
    except OSError:
        pass
    for key, value in (m.pax_headers or {}).items():
        if key.startswith("SCHILY.xattr."):
            try:
                os.setxattr(path, key[len("SCHILY.xattr."):], value.encode("latin-1"), follow_symlinks=False)
            except (OSError, UnicodeEncodeError):
                pass


def open_layer(path: Path):
    """A file object yielding the uncompressed tar stream of a layer blob."""
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic[:2] == b"\x1f\x8b":
        return gzip.open(path, "rb")
    if magic == b"\x28\xb5\x2f\xfd":
        raise LayerError("zstd-compressed layers are not supported")
    return open(path, "rb")


def diff_id(path: Path) -> str:
    """sha256 of the uncompressed layer: the id the image config's rootfs lists."""
    hasher = hashlib.sha256()
    with open_layer(path) as f:
        while chunk := f.read(1 << 20):
            hasher.update(chunk)
    return "sha256:" + hasher.hexdigest()


class _HashingReader:
    """Hashes what the tar reader consumes, so applying a layer also yields its diff id."""

    def __init__(self, raw):
        self.raw = raw
        self.hasher = hashlib.sha256()

    def read(self, size=-1):
        data = self.raw.read(size)
        self.hasher.update(data)
        return data

    def drain(self) -> str:
        while chunk := self.raw.read(1 << 20):
            self.hasher.update(chunk)
        return "sha256:" + self.hasher.hexdigest()


def apply_layer(root: Path, layer_blob: Path) -> str:
    """Apply the layer blob onto `root`; returns the layer's diff id (uncompressed sha256)."""
    with open_layer(layer_blob) as raw:
        reader = _HashingReader(raw)
        apply_tar_stream(root, reader)
        return reader.drain()


def apply_tar_stream(root: Path, stream) -> None:
    is_root = os.geteuid() == 0
    written: set[str] = set()          # paths this layer created: an opaque marker keeps them
    directories: list[tuple[Path, tarfile.TarInfo]] = []
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for m in tar:
            rel = _safe_relpath(m.name)
            if rel is None:
                if m.isdir():
                    directories.append((root, m))
                continue
            base = rel.rsplit("/", 1)[-1]
            parent_rel = rel.rsplit("/", 1)[0] if "/" in rel else ""
            if base == OPAQUE_MARKER:
                target_dir = _inside(root, parent_rel) if parent_rel else root
                if target_dir.is_dir():
                    for child in target_dir.iterdir():
                        child_rel = f"{parent_rel}/{child.name}" if parent_rel else child.name
                        if child_rel not in written:
                            _remove(child)
                continue
            if base.startswith(WHITEOUT_PREFIX):
                victim = base[len(WHITEOUT_PREFIX):]
                _remove(_inside(root, f"{parent_rel}/{victim}" if parent_rel else victim))
                continue
            path = _inside(root, rel)
            path.parent.mkdir(parents=True, exist_ok=True)
            written.add(rel)
            exists = os.path.lexists(path)
            if m.isdir():
                if exists and not (path.is_dir() and not path.is_symlink()):
                    _remove(path)
                    exists = False
                if not exists:
                    path.mkdir(mode=0o755)
                directories.append((path, m))
                continue
            if exists:
                _remove(path)
            if m.isreg():
                src = tar.extractfile(m)
                with open(path, "wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
            elif m.issym():
                os.symlink(m.linkname, path)
            elif m.islnk():
                link_rel = _safe_relpath(m.linkname)
                if link_rel is None:
                    raise LayerError(f"bad hard link target in {m.name!r}")
                os.link(_inside(root, link_rel), path)
                continue                # metadata belongs to the target
            elif m.ischr() or m.isblk():
                if not is_root:
                    continue
                kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK
                os.mknod(path, kind | stat.S_IMODE(m.mode), os.makedev(m.devmajor, m.devminor))
            elif m.isfifo():
                os.mkfifo(path, stat.S_IMODE(m.mode))
            else:
                continue
            _apply_metadata(path, m, is_root)
    # Directory times last: creating their children would have moved them.
    for path, m in reversed(directories):
        _apply_metadata(path, m, is_root)


def hardlink_copy(src: Path, dest: Path) -> None:
    """A new tree sharing every file's inode with `src` (cp -al): cheap snapshot of a parent chain."""
    import subprocess
    subprocess.run(["cp", "-a", "-l", str(src), str(dest)], check=True)
