"""Image references, platform selection, mirrors config, credentials, auth challenges."""

from __future__ import annotations

import base64

import pytest

from k8py.kubelet.images import credentials
from k8py.kubelet.images.mirrors import MirrorConfig
from k8py.kubelet.images.platform import select_manifest
from k8py.kubelet.images.reference import parse_reference, split_repo_tag
from k8py.kubelet.images.registry import parse_challenge
from k8py.kubelet.runtime.interface import ImageError

D = "sha256:" + "a" * 64


@pytest.mark.parametrize("given,expected", [
    ("nginx", "docker.io/library/nginx:latest"),
    ("busybox:1.36", "docker.io/library/busybox:1.36"),
    ("library/busybox", "docker.io/library/busybox:latest"),
    ("bitnami/redis:7", "docker.io/bitnami/redis:7"),
    ("index.docker.io/library/nginx", "docker.io/library/nginx:latest"),
    ("registry.k8s.io/pause:3.9", "registry.k8s.io/pause:3.9"),
    ("localhost/foo", "localhost/foo:latest"),
    ("127.0.0.1:5000/a/b/c:v1", "127.0.0.1:5000/a/b/c:v1"),
    (f"nginx@{D}", f"docker.io/library/nginx@{D}"),
    (f"quay.io/x/y:1@{D}", f"quay.io/x/y:1@{D}"),
])
def test_references_normalise_like_docker(given, expected):
    assert str(parse_reference(given)) == expected


def test_locator_prefers_the_digest():
    assert parse_reference(f"nginx:1@{D}").locator == D
    assert parse_reference("nginx").locator == "latest"


@pytest.mark.parametrize("bad", ["", "Nginx", "nginx:", "nginx:bad tag", "a" * 64, "nginx@sha256:xyz",
                                 "foo//bar", "-foo", "docker.io/UPPER/x"])
def test_bad_references_are_invalid_image_names(bad):
    with pytest.raises(ImageError) as err:
        parse_reference(bad)
    assert err.value.reason == "InvalidImageName"


def test_split_repo_tag_for_listing():
    assert split_repo_tag("docker.io/library/nginx:1.25") == ("docker.io/library/nginx", "1.25")


def _desc(os_name, arch, variant=None, digest="x"):
    plat = {"os": os_name, "architecture": arch}
    if variant:
        plat["variant"] = variant
    return {"digest": digest, "platform": plat}


def test_manifest_list_picks_this_platform_not_the_first_entry():
    index = {"manifests": [_desc("linux", "s390x", digest="s"), _desc("unknown", "unknown", digest="att"),
                           _desc("linux", "amd64", digest="amd")]}
    assert select_manifest(index, ("linux", "amd64", ""))["digest"] == "amd"
    assert select_manifest(index, ("linux", "riscv64", "")) is None


def test_manifest_list_prefers_the_exact_variant():
    index = {"manifests": [_desc("linux", "arm64", digest="plain"), _desc("linux", "arm64", "v8", digest="v8"),
                           _desc("linux", "arm", "v6", digest="v6")]}
    assert select_manifest(index, ("linux", "arm64", "v8"))["digest"] == "v8"
    assert select_manifest({"manifests": index["manifests"][:1]}, ("linux", "arm64", "v8"))["digest"] == "plain"
    assert select_manifest(index, ("linux", "arm", "v7")) is None


def test_mirrors_come_before_the_registry_itself(tmp_path):
    cfg = tmp_path / "registries.yaml"
    cfg.write_text('mirrors:\n  docker.io:\n    endpoint: ["http://127.0.0.1:5000/v2/", "mirror.example:443"]\n'
                   'configs:\n  "127.0.0.1:5000":\n    auth: {username: u, password: p}\n')
    eps = MirrorConfig.load(cfg).endpoints("docker.io")
    assert [e.url for e in eps] == ["http://127.0.0.1:5000", "https://mirror.example:443",
                                    "https://registry-1.docker.io"]
    assert eps[0].auth == {"username": "u", "password": "p"} and eps[1].auth == {}
    assert [e.url for e in MirrorConfig.load(cfg).endpoints("quay.io")] == ["https://quay.io"]
    assert [e.url for e in MirrorConfig.load(None).endpoints("docker.io")] == ["https://registry-1.docker.io"]
    # Loopback registries may be plain HTTP: HTTPS first, then HTTP.
    assert [e.url for e in MirrorConfig.load(None).endpoints("127.0.0.1:5000")] == ["https://127.0.0.1:5000",
                                                                                   "http://127.0.0.1:5000"]


def test_hermetic_mirrors_skip_the_real_registry(tmp_path):
    cfg = tmp_path / "r.yaml"
    cfg.write_text('mirrors:\n  docker.io:\n    endpoint: ["http://127.0.0.1:5000"]\ndisable_default_endpoint: true\n')
    assert [e.url for e in MirrorConfig.load(cfg).endpoints("docker.io")] == ["http://127.0.0.1:5000"]
    assert [e.url for e in MirrorConfig.load(cfg).endpoints("quay.io")] == ["https://quay.io"]


def test_wildcard_mirror_applies_to_every_registry(tmp_path):
    cfg = tmp_path / "r.yaml"
    cfg.write_text('mirrors:\n  "*":\n    endpoint: ["http://127.0.0.1:9"]\n')
    assert MirrorConfig.load(cfg).endpoints("ghcr.io")[0].url == "http://127.0.0.1:9"


def test_dockerconfigjson_entries_match_registry_hosts():
    auth = base64.b64encode(b"alice:s3cret").decode()
    found = credentials.flatten([
        {"auths": {"https://index.docker.io/v1/": {"auth": auth}}},
        {"127.0.0.1:5000": {"username": "bob", "password": "pw"}},
        {"server": "https://ghcr.io", "username": "carol", "password": "x"},
        {"quay.io": {"auth": "!!notbase64"}},
    ])
    assert credentials.lookup(found, "docker.io") == ("alice", "s3cret")
    assert credentials.lookup(found, "registry-1.docker.io") == ("alice", "s3cret")
    assert credentials.lookup(found, "127.0.0.1:5000") == ("bob", "pw")
    assert credentials.lookup(found, "ghcr.io") == ("carol", "x")
    assert credentials.lookup(found, "quay.io") is None


def test_www_authenticate_challenges_parse():
    scheme, params = parse_challenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
                                     'scope="repository:library/nginx:pull"')
    assert scheme == "bearer"
    assert params == {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                      "scope": "repository:library/nginx:pull"}
    assert parse_challenge('Basic realm="Registry Realm"') == ("basic", {"realm": "Registry Realm"})
