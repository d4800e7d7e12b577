"""ImageStore: the node's images, content-addressed under `<root>/images`.

    blobs/sha256/<hex>        manifests, configs and layer blobs, shared by every image
    snapshots/<chain hex>/    the unpacked root filesystem of a layer chain; each
                              chain starts as a hard-link copy of its parent chain
    index.json                image records (by config digest) and tags -> image id

Several processes (the agent, `k8py images`) may use one store: changes to the
index happen under an flock and re-read the file first.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from k8py.kubelet.images import credentials as creds_mod
from k8py.kubelet.images import mediatypes as mt
from k8py.kubelet.images.layers import LayerError, apply_layer, hardlink_copy
from k8py.kubelet.images.mirrors import MirrorConfig
from k8py.kubelet.images.platform import host_platform, select_manifest
from k8py.kubelet.images.reference import parse_reference
from k8py.kubelet.images.registry import RegistryClient, RegistryError
from k8py.kubelet.runtime.interface import ImageError, ImageInfo, ImageService


def chain_ids(diff_ids: list[str]) -> list[str]:
    """OCI ChainIDs: each layer's id folded with everything beneath it."""
    chains: list[str] = []
    for d in diff_ids:
        if not chains:
            chains.append(d)
        else:
            chains.append("sha256:" + hashlib.sha256(f"{chains[-1]} {d}".encode()).hexdigest())
    return chains


def _hex(digest: str) -> str:
    algo, _, value = digest.partition(":")
    if algo != "sha256" or len(value) != 64 or not all(c in "0123456789abcdef" for c in value):
        raise ValueError(f"unsupported digest {digest!r}")
    return value


class ImageStore(ImageService):
    def __init__(self, root_dir: Path, mirrors_config: Path | None = None):
        self.root = Path(root_dir) / "images"
        self.blobs = self.root / "blobs" / "sha256"
        self.snapshots = self.root / "snapshots"
        self.tmp = self.root / "tmp"
        for d in (self.blobs, self.snapshots, self.tmp):
            d.mkdir(parents=True, exist_ok=True)
        self.index_path = self.root / "index.json"
        self.mirrors_config = mirrors_config
        self.mirrors = MirrorConfig.load(mirrors_config)
        self._pull_locks: dict[str, asyncio.Lock] = {}
        self._unpack_lock = asyncio.Lock()

    # --- index ---

    def _read_index(self) -> dict:
        try:
            data = json.loads(self.index_path.read_text())
        except (FileNotFoundError, ValueError):
            data = {}
        data.setdefault("images", {})
        data.setdefault("tags", {})
        return data

    @contextmanager
    def _mutate(self):
        with open(self.root / "index.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = self._read_index()
            yield data
            tmp = self.index_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
            os.replace(tmp, self.index_path)

    # --- blobs ---

    def blob_path(self, digest: str) -> Path:
        return self.blobs / _hex(digest)

    def has_blob(self, digest: str) -> bool:
        return self.blob_path(digest).exists()

    def write_blob(self, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        path = self.blob_path(digest)
        if not path.exists():
            tmp = self._tmp_file()
            tmp.write_bytes(data)
            os.replace(tmp, path)
        return digest

    def ingest_file(self, src, expected: str | None = None) -> tuple[str, int]:
        """Copy a readable stream into the blob store, hashing on the way; returns (digest, size)."""
        tmp = self._tmp_file()
        hasher, size = hashlib.sha256(), 0
        with open(tmp, "wb") as out:
            while chunk := src.read(1 << 20):
                hasher.update(chunk)
                out.write(chunk)
                size += len(chunk)
        digest = "sha256:" + hasher.hexdigest()
        if expected and expected != digest:
            tmp.unlink()
            raise ImageError("ErrImagePull", f"blob digest mismatch: expected {expected}, got {digest}")
        os.replace(tmp, self.blob_path(digest))
        return digest, size

    def _tmp_file(self) -> Path:
        fd, name = tempfile.mkstemp(dir=self.tmp)
        os.close(fd)
        return Path(name)

    # --- snapshots ---

    def snapshot_path(self, chain_id: str) -> Path:
        return self.snapshots / _hex(chain_id)

    def _unpack_sync(self, layers: list[str], diff_ids: list[str]) -> None:
        chains = chain_ids(diff_ids)
        parent: Path | None = None
        for blob, want_diff, chain in zip(layers, diff_ids, chains):
            target = self.snapshot_path(chain)
            if not target.exists():
                work = Path(tempfile.mkdtemp(dir=self.tmp))
                tree = work / "rootfs"
                try:
                    if parent is None:
                        tree.mkdir(mode=0o755)
                    else:
                        hardlink_copy(parent, tree)
                    got = apply_layer(tree, self.blob_path(blob))
                    if got != want_diff:
                        raise ImageError("ErrImagePull",
                                         f"layer {blob} unpacks to {got}, but the image config says {want_diff}")
                    try:
                        os.rename(tree, target)
                    except OSError:
                        if not target.exists():    # else another process unpacked the same chain first
                            raise
                except LayerError as exc:
                    raise ImageError("ErrImagePull", f"failed to unpack layer {blob}: {exc}") from exc
                finally:
                    shutil.rmtree(work, ignore_errors=True)
            parent = target

    def rootfs_path(self, reference_or_id: str) -> Path:
        """The unpacked root filesystem of an image (read-only: containers overlay it)."""
        record = self._record(reference_or_id)
        if record is None:
            raise ImageError("ErrImageNeverPull", f'image "{reference_or_id}" is not present')
        chains = chain_ids(record["diff_ids"])
        if not chains:
            empty = self.snapshots / "empty"
            empty.mkdir(exist_ok=True)
            return empty
        path = self.snapshot_path(chains[-1])
        if not path.exists():
            self._unpack_sync(record["layers"], record["diff_ids"])
        return path

    # --- records ---

    def _record(self, reference: str) -> dict | None:
        data = self._read_index()
        images = data["images"]
        if reference.startswith("sha256:") and reference in images:
            return images[reference]
        if len(reference) >= 12 and all(c in "0123456789abcdef" for c in reference):
            matches = [i for i in images if i[7:].startswith(reference)]
            if len(matches) == 1:
                return images[matches[0]]
        try:
            ref = parse_reference(reference)
        except ImageError:
            return None
        if ref.digest:
            for record in images.values():
                if f"{ref.repository}@{ref.digest}" in record["repo_digests"] or record.get("manifest") == ref.digest:
                    return record
            return None
        image_id = data["tags"].get(str(ref))
        return images.get(image_id) if image_id else None

    @staticmethod
    def _info(record: dict) -> ImageInfo:
        return ImageInfo(id=record["id"], repo_tags=list(record["repo_tags"]),
                         repo_digests=list(record["repo_digests"]), size=record["size"],
                         config=dict(record.get("config") or {}))

    def register(self, *, manifest_digest: str, config_digest: str, layers: list[str], size: int,
                 tags: list[str], repo_digests: list[str]) -> ImageInfo:
        """Record an image whose blobs are all stored, unpack it, and point `tags` at it."""
        image_config = json.loads(self.blob_path(config_digest).read_bytes())
        diff_ids = list((image_config.get("rootfs") or {}).get("diff_ids") or [])
        if len(diff_ids) != len(layers):
            raise ImageError("ErrImagePull", f"image config lists {len(diff_ids)} layers, manifest {len(layers)}")
        self._unpack_sync(layers, diff_ids)
        with self._mutate() as data:
            for tag in tags:           # a tag moves: take it off the image that had it
                old = data["tags"].get(tag)
                if old and old != config_digest and old in data["images"]:
                    other = data["images"][old]
                    other["repo_tags"] = [t for t in other["repo_tags"] if t != tag]
                data["tags"][tag] = config_digest
            record = data["images"].get(config_digest) or {
                "id": config_digest, "repo_tags": [], "repo_digests": [], "created": time.time()}
            record.update(manifest=manifest_digest, layers=layers, diff_ids=diff_ids, size=size,
                          config=image_config.get("config") or {}, user_config=None)
            record.pop("user_config")
            record["repo_tags"] = sorted(set(record["repo_tags"]) | set(tags))
            record["repo_digests"] = sorted(set(record["repo_digests"]) | set(repo_digests))
            data["images"][config_digest] = record
        return self._info(record)

    # --- ImageService ---

    def get(self, reference: str) -> ImageInfo | None:
        record = self._record(reference)
        return self._info(record) if record else None

    def list(self) -> list[ImageInfo]:
        return [self._info(r) for r in self._read_index()["images"].values()]

    def remove(self, reference: str) -> None:
        record = self._record(reference)
        if record is None:
            return
        with self._mutate() as data:
            current = data["images"].get(record["id"])
            if current is None:
                return
            try:
                named = str(parse_reference(reference))
            except ImageError:
                named = None
            if named in current["repo_tags"] and len(current["repo_tags"]) > 1:
                current["repo_tags"].remove(named)        # untag only, like `crictl rmi` of one of many tags
                data["tags"].pop(named, None)
                return
            for tag in current["repo_tags"]:
                data["tags"].pop(tag, None)
            del data["images"][record["id"]]
            self._collect_garbage(data)

    def _collect_garbage(self, data: dict) -> None:
        keep_blobs, keep_chains = set(), set()
        for rec in data["images"].values():
            keep_blobs.update([rec["id"], rec["manifest"], *rec["layers"], *rec.get("extra_blobs", [])])
            keep_chains.update(_hex(c) for c in chain_ids(rec["diff_ids"]))
        for blob in self.blobs.iterdir():
            if "sha256:" + blob.name not in keep_blobs:
                blob.unlink(missing_ok=True)
        for snap in self.snapshots.iterdir():
            if snap.name != "empty" and snap.name not in keep_chains:
                shutil.rmtree(snap, ignore_errors=True)

    async def pull(self, reference: str, credentials: list[dict] | None = None) -> ImageInfo:
        ref = parse_reference(reference)
        lock = self._pull_locks.setdefault(str(ref), asyncio.Lock())
        async with lock:
            return await self._pull(ref, credentials)

    async def _pull(self, ref, credentials) -> ImageInfo:
        name = str(ref)
        auths = creds_mod.flatten(credentials)
        errors: list[str] = []
        not_found = False
        for endpoint in self.mirrors.endpoints(ref.domain):
            pair = creds_mod.lookup(auths, endpoint.host, ref.domain)
            async with RegistryClient(endpoint, ref.path, pair) as client:
                try:
                    return await self._pull_from(client, ref)
                except RegistryError as exc:
                    not_found = not_found or exc.status == 404
                    errors.append(f"{endpoint.url}: {exc}")
                except (ValueError, KeyError, TypeError, AttributeError) as exc:
                    # A registry answering with something that is not a valid manifest.
                    errors.append(f"{endpoint.url}: invalid manifest: {exc!r}")
        if not_found:       # a registry that answered said so: that is the news, not a failed fallback
            detail = f"{name}: not found"
        else:
            detail = "; ".join(errors)
        raise ImageError("ErrImagePull", f'failed to pull and unpack image "{name}": '
                                         f'failed to resolve reference "{name}": {detail}')

    async def _pull_from(self, client: RegistryClient, ref) -> ImageInfo:
        raw, content_type, top_digest = await client.get_manifest(ref.locator)
        manifest = json.loads(raw)
        extra_blobs = [self.write_blob(raw)]
        if mt.kind_of(manifest, content_type) == "index":
            chosen = select_manifest(manifest)
            if chosen is None:
                want = "/".join(p for p in host_platform() if p)
                raise RegistryError(f"no match for platform {want} in manifest {top_digest}: not found", 404)
            raw, content_type, manifest_digest = await client.get_manifest(chosen["digest"])
            manifest = json.loads(raw)
            self.write_blob(raw)
        else:
            manifest_digest = top_digest
        if mt.kind_of(manifest, content_type) != "manifest":
            raise RegistryError(f"unsupported manifest type {manifest.get('mediaType') or content_type!r}")
        config_digest = manifest["config"]["digest"]
        layers = [layer["digest"] for layer in manifest.get("layers") or []]
        parallel = asyncio.Semaphore(3)      # like containerd's default max concurrent downloads

        async def fetch(digest: str) -> None:
            if self.has_blob(digest):
                return
            async with parallel:
                tmp = self._tmp_file()
                try:
                    await client.fetch_blob(digest, tmp)
                    os.replace(tmp, self.blob_path(digest))
                finally:
                    tmp.unlink(missing_ok=True)

        await asyncio.gather(*(fetch(d) for d in dict.fromkeys([config_digest, *layers])))
        size = sum(int(layer.get("size") or 0) for layer in manifest.get("layers") or [])
        size += int(manifest["config"].get("size") or 0)
        tag = [str(ref)] if ref.tag else []
        async with self._unpack_lock:
            info = await asyncio.to_thread(
                self.register, manifest_digest=manifest_digest, config_digest=config_digest, layers=layers,
                size=size, tags=tag, repo_digests=[f"{ref.repository}@{top_digest}"])
        if top_digest != manifest_digest:
            with self._mutate() as data:
                rec = data["images"][config_digest]
                rec["extra_blobs"] = sorted(set(rec.get("extra_blobs", [])) | set(extra_blobs))
        return info
