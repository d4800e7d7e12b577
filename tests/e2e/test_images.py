"""Image store against a real local registry (docker-registry): pulls, imports, removal."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile

import pytest

from k8py.kubelet.images.archive import import_archive, import_rootfs
from k8py.kubelet.images.store import ImageStore
from k8py.kubelet.runtime.interface import ImageError


pytest_plugins = ["tests.e2e.registry"]     # the session's image_registry fixture


@pytest.fixture
def store(tmp_path, image_registry):
    return ImageStore(tmp_path / "data", image_registry.mirrors_config)


async def test_short_names_pull_through_the_docker_io_mirror(store):
    busybox = await store.pull("busybox")
    assert busybox.repo_tags == ["docker.io/library/busybox:latest"]
    assert busybox.config["Cmd"] == ["sh"]
    rootfs = store.rootfs_path("busybox")
    assert os.readlink(rootfs / "bin/sh") == "/bin/busybox"
    nginx = await store.pull("docker.io/library/nginx:latest")
    assert nginx.config["Cmd"] == ["nginx", "-g", "daemon off;"]
    assert (store.rootfs_path(nginx.id) / "usr/sbin/nginx").exists()
    assert {i.id for i in store.list()} == {busybox.id, nginx.id}
    # The same image under a second tag shares every blob and snapshot.
    blobs_before = sorted(os.listdir(store.blobs))
    again = await store.pull("busybox:1.36")
    assert again.id == busybox.id
    assert sorted(store.get("busybox:1.36").repo_tags) == ["docker.io/library/busybox:1.36",
                                                           "docker.io/library/busybox:latest"]
    assert len(os.listdir(store.snapshots)) == 2
    assert set(blobs_before) <= set(os.listdir(store.blobs))


async def test_pull_by_registry_host_and_by_digest(store, image_registry):
    direct = await store.pull(f"{image_registry.host}/library/busybox")
    digest = direct.repo_digests[0].split("@")[1]
    by_digest = await store.pull(f"{image_registry.host}/library/busybox@{digest}")
    assert by_digest.id == direct.id
    assert store.get(f"{image_registry.host}/library/busybox@{digest}").id == direct.id
    assert store.get(direct.id[7:19]).id == direct.id


async def test_missing_images_fail_with_err_image_pull(store, image_registry):
    with pytest.raises(ImageError) as err:
        await store.pull(f"{image_registry.host}/library/nothing-here:1")
    assert err.value.reason == "ErrImagePull"
    assert err.value.message.endswith(f"{image_registry.host}/library/nothing-here:1: not found")
    with pytest.raises(ImageError) as err:          # through the mirror, which alone is asked
        await store.pull("no-such-image")
    assert err.value.message == ('failed to pull and unpack image "docker.io/library/no-such-image:latest": '
                                 'failed to resolve reference "docker.io/library/no-such-image:latest": '
                                 'docker.io/library/no-such-image:latest: not found')
    with pytest.raises(ImageError) as err:
        await store.pull("Not/Valid")
    assert err.value.reason == "InvalidImageName"


async def test_remove_untags_then_collects_garbage(store):
    info = await store.pull("busybox")
    await store.pull("busybox:1.36")
    store.remove("busybox:1.36")
    assert store.get("busybox:1.36") is None and store.get("busybox").id == info.id
    store.remove("busybox")
    assert store.list() == [] and os.listdir(store.blobs) == [] and os.listdir(store.snapshots) == []
    store.remove("busybox")          # idempotent


def _tar_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_import_docker_archive(tmp_path):
    layer1 = _tar_bytes({"hello.txt": b"one"})
    layer2 = _tar_bytes({"hello.txt": b"two", ".wh.nothing": b""})
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/hello"]},
                         "rootfs": {"type": "layers", "diff_ids": [_sha(layer1), _sha(layer2)]}}).encode()
    archive = tmp_path / "saved.tar"
    files = {"manifest.json": json.dumps([{"Config": "cfg.json", "RepoTags": ["example/hello:v1"],
                                           "Layers": ["l1/layer.tar", "l2/layer.tar"]}]).encode(),
             "cfg.json": config, "l1/layer.tar": layer1, "l2/layer.tar": layer2}
    archive.write_bytes(_tar_bytes(files))
    store = ImageStore(tmp_path / "data")
    [info] = import_archive(store, archive)
    assert info.id == _sha(config) and info.repo_tags == ["docker.io/example/hello:v1"]
    assert (store.rootfs_path("example/hello:v1") / "hello.txt").read_text() == "two"


def test_import_oci_layout_with_an_index(tmp_path):
    layer = _tar_bytes({"etc/os-release": b"ID=k8py\n"})
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [_sha(layer)]}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"digest": _sha(config), "size": len(config)},
                           "layers": [{"digest": _sha(layer), "size": len(layer),
                                       "mediaType": "application/vnd.oci.image.layer.v1.tar"}]}).encode()
    index = {"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": _sha(manifest),
        "size": len(manifest), "annotations": {"io.containerd.image.name": "registry.local/tools/os:2"}}]}
    files = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}', "index.json": json.dumps(index).encode()}
    for blob in (layer, config, manifest):
        files[f"blobs/sha256/{_sha(blob)[7:]}"] = blob
    archive = tmp_path / "oci.tar"
    archive.write_bytes(_tar_bytes(files))
    store = ImageStore(tmp_path / "data")
    [info] = import_archive(store, archive)
    assert info.repo_tags == ["registry.local/tools/os:2"]
    assert info.repo_digests == [f"registry.local/tools/os@{_sha(manifest)}"]
    assert (store.rootfs_path(info.id) / "etc/os-release").read_text() == "ID=k8py\n"


def test_import_rootfs_folder_and_reject_garbage(tmp_path):
    folder = tmp_path / "rootfs"
    (folder / "bin").mkdir(parents=True)
    (folder / "bin/run").write_text("#!/bin/sh\necho hi\n")
    os.symlink("run", folder / "bin/alias")
    store = ImageStore(tmp_path / "data")
    info = import_rootfs(store, folder, "local/tool:dev", {"Entrypoint": ["/bin/run"]})
    assert info.config == {"Entrypoint": ["/bin/run"]}
    rootfs = store.rootfs_path("local/tool:dev")
    assert (rootfs / "bin/run").read_text().endswith("echo hi\n") and os.readlink(rootfs / "bin/alias") == "run"
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"not a tar at all")
    with pytest.raises(ImageError):
        import_archive(store, junk)


async def test_a_registry_answering_garbage_is_err_image_pull(tmp_path):
    from aiohttp import web

    async def html(request):
        return web.Response(text="<html>a captive portal</html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", html)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(ImageError) as err:
            await ImageStore(tmp_path / "data").pull(f"127.0.0.1:{port}/some/image")
        assert err.value.reason == "ErrImagePull" and "invalid manifest" in err.value.message
    finally:
        await runner.cleanup()


async def test_multi_layer_pull_applies_whiteouts(tmp_path, image_registry, registry_script):
    import gzip

    from k8py.kubelet.images.mirrors import Endpoint
    from k8py.kubelet.images.registry import RegistryClient

    base = _tar_bytes({"etc/keep": b"1", "etc/drop": b"2", "opt/old/file": b"3"})
    top = _tar_bytes({"etc/.wh.drop": b"", "opt/old/.wh..wh..opq": b"", "opt/old/new": b"4"})
    layers = [gzip.compress(base), gzip.compress(top)]
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["sh"]},
                         "rootfs": {"type": "layers", "diff_ids": [_sha(base), _sha(top)]}}).encode()
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": _sha(config),
                           "size": len(config)},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": _sha(blob),
                            "size": len(blob)} for blob in layers]}
    async with RegistryClient(Endpoint(image_registry.url, image_registry.host), "test/layered") as client:
        for blob in [*layers, config]:
            await client.push_blob(blob)
        await client.push_manifest("v1", manifest, manifest["mediaType"])
    store = ImageStore(tmp_path / "data", image_registry.mirrors_config)
    info = await store.pull(f"{image_registry.host}/test/layered:v1")
    assert info.size == sum(len(b) for b in layers) + len(config)
    rootfs = store.rootfs_path(info.id)
    assert (rootfs / "etc/keep").read_text() == "1" and not (rootfs / "etc/drop").exists()
    assert os.listdir(rootfs / "opt/old") == ["new"]
    assert len(os.listdir(store.snapshots)) == 2             # one snapshot per layer chain
