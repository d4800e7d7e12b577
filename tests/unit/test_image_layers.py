"""Layer application: whiteouts, opaque directories, replacing files shared with a parent snapshot."""

from __future__ import annotations

import io
import os
import tarfile

import pytest

from k8py.kubelet.images.layers import LayerError, apply_tar_stream, hardlink_copy
from k8py.kubelet.images.store import chain_ids


def make_tar(entries) -> io.BytesIO:
    """entries: (name, kind, payload) with kind in file|dir|symlink|hardlink."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, kind, payload in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 1_700_000_000
            if kind == "file":
                data = payload.encode()
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
                continue
            if kind == "dir":
                info.type, info.mode = tarfile.DIRTYPE, 0o755
            elif kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, payload
            elif kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, payload
            tar.addfile(info)
    buf.seek(0)
    return buf


def test_whiteouts_and_opaque_dirs(tmp_path):
    lower = tmp_path / "lower"
    lower.mkdir()
    apply_tar_stream(lower, make_tar([
        ("etc", "dir", None), ("etc/keep", "file", "k"), ("etc/gone", "file", "g"),
        ("opt", "dir", None), ("opt/old1", "file", "1"), ("opt/sub", "dir", None), ("opt/sub/old2", "file", "2"),
        ("bin", "dir", None), ("bin/tool", "file", "v1"),
    ]))
    upper = tmp_path / "upper"
    hardlink_copy(lower, upper)
    apply_tar_stream(upper, make_tar([
        ("etc/.wh.gone", "file", ""),
        ("opt", "dir", None), ("opt/new", "file", "n"), ("opt/.wh..wh..opq", "file", ""),
        ("bin/tool", "file", "v2"), ("bin/alias", "hardlink", "bin/tool"), ("bin/link", "symlink", "tool"),
    ]))
    assert (upper / "etc/keep").read_text() == "k"
    assert not (upper / "etc/gone").exists()
    assert sorted(os.listdir(upper / "opt")) == ["new"]          # lower contents hidden, this layer's kept
    assert (upper / "bin/tool").read_text() == "v2"
    assert (upper / "bin/alias").read_text() == "v2"
    assert os.readlink(upper / "bin/link") == "tool"
    # The parent snapshot shares inodes with the child, and must not have changed.
    assert (lower / "bin/tool").read_text() == "v1"
    assert (lower / "etc/gone").exists() and (lower / "opt/sub/old2").exists()
    assert not any(name.startswith(".wh.") for _, _, files in os.walk(upper) for name in files)


def test_entries_cannot_escape_the_root(tmp_path):
    with pytest.raises(LayerError):
        apply_tar_stream(tmp_path, make_tar([("../evil", "file", "x")]))
    apply_tar_stream(tmp_path, make_tar([("up", "symlink", "/")]))
    with pytest.raises(LayerError):
        apply_tar_stream(tmp_path, make_tar([("up/tmp/evil", "file", "x")]))


def test_a_file_replaces_a_directory_and_back(tmp_path):
    apply_tar_stream(tmp_path, make_tar([("x", "dir", None), ("x/y", "file", "1")]))
    apply_tar_stream(tmp_path, make_tar([("x", "file", "now a file")]))
    assert (tmp_path / "x").read_text() == "now a file"
    apply_tar_stream(tmp_path, make_tar([("x", "dir", None), ("x/z", "file", "2")]))
    assert (tmp_path / "x/z").read_text() == "2"


def test_chain_ids_fold_parents():
    a, b = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    chains = chain_ids([a, b])
    assert chains[0] == a and chains[1].startswith("sha256:") and chains[1] not in (a, b)
    assert chain_ids([b, a])[1] != chains[1]
