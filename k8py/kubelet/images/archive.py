"""Offline images: import an OCI layout / docker-archive tarball, or a root filesystem folder."""

from __future__ import annotations

import gzip
import json
import os
import tarfile
import tempfile
from pathlib import Path

from k8py.kubelet.images import mediatypes as mt
from k8py.kubelet.images.platform import host_platform, select_manifest
from k8py.kubelet.images.reference import parse_reference
from k8py.kubelet.images.store import ImageStore
from k8py.kubelet.runtime.interface import ImageError, ImageInfo

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _layer_media_type(path: Path) -> str:
    with open(path, "rb") as f:
        return mt.OCI_LAYER_GZIP if f.read(2) == b"\x1f\x8b" else mt.OCI_LAYER


def _tags(names: list[str], name_override: str | None) -> list[str]:
    if name_override:
        return [str(parse_reference(name_override))]
    return [str(parse_reference(n)) for n in names if n]


def _register_manifest(store: ImageStore, manifest_raw: bytes, tags: list[str]) -> ImageInfo:
    manifest = json.loads(manifest_raw)
    manifest_digest = store.write_blob(manifest_raw)
    layers = [layer["digest"] for layer in manifest.get("layers") or []]
    size = sum(store.blob_path(d).stat().st_size for d in layers) + store.blob_path(manifest["config"]["digest"]).stat().st_size
    return store.register(manifest_digest=manifest_digest, config_digest=manifest["config"]["digest"],
                          layers=layers, size=size, tags=tags,
                          repo_digests=[f"{parse_reference(t).repository}@{manifest_digest}" for t in tags])


def _synth_manifest(store: ImageStore, config_digest: str, layer_digests: list[str]) -> bytes:
    manifest = {
        "schemaVersion": 2, "mediaType": mt.OCI_MANIFEST,
        "config": {"mediaType": mt.OCI_CONFIG, "digest": config_digest,
                   "size": store.blob_path(config_digest).stat().st_size},
        "layers": [{"mediaType": _layer_media_type(store.blob_path(d)), "digest": d,
                    "size": store.blob_path(d).stat().st_size} for d in layer_digests],
    }
    return json.dumps(manifest, separators=(",", ":")).encode()


def import_archive(store: ImageStore, archive: Path, name: str | None = None) -> list[ImageInfo]:
    """Import every image in a `docker save` or OCI-layout tarball (optionally gzipped)."""
    try:
        tar = tarfile.open(archive, "r:*")
    except (tarfile.TarError, OSError) as exc:
        raise ImageError("ErrImageImport", f"{archive}: not a tar archive: {exc}") from exc
    with tar:
        members = {m.name.lstrip("./"): m for m in tar.getmembers()}

        def read(member_name: str) -> bytes:
            m = members.get(member_name.lstrip("./"))
            if m is None:
                raise ImageError("ErrImageImport", f"{archive}: missing {member_name}")
            return tar.extractfile(m).read()

        def ingest(member_name: str, expected: str | None = None) -> str:
            m = members.get(member_name.lstrip("./"))
            if m is None:
                raise ImageError("ErrImageImport", f"{archive}: missing {member_name}")
            if expected and store.has_blob(expected):
                return expected
            return store.ingest_file(tar.extractfile(m), expected)[0]

        if "manifest.json" in members:
            return _import_docker(store, read, ingest, name)
        if "index.json" in members and "oci-layout" in members:
            return _import_oci(store, read, ingest, name)
    raise ImageError("ErrImageImport", f"{archive}: neither a docker archive (manifest.json) nor an OCI layout")


def _import_docker(store, read, ingest, name) -> list[ImageInfo]:
    entries = json.loads(read("manifest.json"))
    result = []
    for entry in entries:
        config_digest = store.write_blob(read(entry["Config"]))
        layer_digests = [ingest(layer) for layer in entry.get("Layers") or []]
        raw = _synth_manifest(store, config_digest, layer_digests)
        tags = _tags(entry.get("RepoTags") or [], name)
        result.append(_register_manifest(store, raw, tags))
    return result


def _import_oci(store, read, ingest, name) -> list[ImageInfo]:
    index = json.loads(read("index.json"))
    result = []

    def blob(digest: str) -> bytes:
        return read(f"blobs/{digest.replace(':', '/')}")

    for desc in index.get("manifests") or []:
        annotations = desc.get("annotations") or {}
        ref_name = annotations.get("io.containerd.image.name") or annotations.get("org.opencontainers.image.ref.name")
        if ref_name and ":" not in ref_name and "/" not in ref_name and name:
            ref_name = f"{name.split(':')[0]}:{ref_name}"
        elif ref_name and "/" not in ref_name and ":" not in ref_name:
            ref_name = None          # a bare tag with nothing to hang it on
        raw = blob(desc["digest"])
        manifest = json.loads(raw)
        if mt.kind_of(manifest, desc.get("mediaType", "")) == "index":
            chosen = select_manifest(manifest)
            if chosen is None:
                raise ImageError("ErrImageImport", f"no manifest for {'/'.join(p for p in host_platform() if p)}")
            raw = blob(chosen["digest"])
            manifest = json.loads(raw)
        config_digest = ingest(f"blobs/{manifest['config']['digest'].replace(':', '/')}", manifest["config"]["digest"])
        for layer in manifest.get("layers") or []:
            ingest(f"blobs/{layer['digest'].replace(':', '/')}", layer["digest"])
        assert config_digest == manifest["config"]["digest"]
        result.append(_register_manifest(store, raw, _tags([ref_name] if ref_name else [], name)))
    return result


def image_config_for(diff_ids: list[str], config: dict | None = None) -> dict:
    os_name, arch, variant = host_platform()
    doc = {"architecture": arch, "os": os_name, "created": "1970-01-01T00:00:00Z",
           "config": config or {"Env": [DEFAULT_PATH]},
           "rootfs": {"type": "layers", "diff_ids": diff_ids}, "history": [{"created_by": "k8py images import"}]}
    if variant:
        doc["variant"] = variant
    return doc


def tar_directory(folder: Path, dest_file) -> None:
    """An uncompressed layer tar of a folder's contents, owners kept numeric, paths relative."""
    with tarfile.open(fileobj=dest_file, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames.sort()
            rel_dir = os.path.relpath(dirpath, folder)
            for entry in sorted(dirnames) + sorted(filenames):
                full = os.path.join(dirpath, entry)
                arc = entry if rel_dir == "." else f"{rel_dir}/{entry}"
                info = tar.gettarinfo(full, arcname=arc)
                info.uname = info.gname = ""
                if info.isreg():
                    with open(full, "rb") as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)
            # symlinked dirs are listed in dirnames but os.walk does not descend into them


def import_rootfs(store: ImageStore, folder: Path, name: str, config: dict | None = None,
                  compress: bool = False) -> ImageInfo:
    """Make a one-layer image of a root filesystem folder and tag it `name`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageError("ErrImageImport", f"{folder}: not a directory")
    tag = str(parse_reference(name))
    with tempfile.TemporaryFile(dir=store.tmp) as layer:
        tar_directory(folder, layer)
        layer.seek(0)
        diff_digest, _ = store.ingest_file(layer)
        if compress:
            layer.seek(0)
            with tempfile.TemporaryFile(dir=store.tmp) as packed:
                with gzip.GzipFile(fileobj=packed, mode="wb", mtime=0) as gz:
                    while chunk := layer.read(1 << 20):
                        gz.write(chunk)
                packed.seek(0)
                layer_digest, _ = store.ingest_file(packed)
        else:
            layer_digest = diff_digest
    config_digest = store.write_blob(json.dumps(image_config_for([diff_digest], config), sort_keys=True).encode())
    raw = _synth_manifest(store, config_digest, [layer_digest])
    return _register_manifest(store, raw, [tag])
