#!/usr/bin/env python3
"""A local image registry for tests: Debian's docker-registry on 127.0.0.1, holding
`busybox` (from busybox-static) and `nginx` (from Debian's nginx-light), plus a
k3s-style registries.yaml that makes it the mirror of docker.io.

    python scripts/test_registry.py [--port 5000] [--dir /tmp/reg]   # runs until Ctrl-C

Tests use `start_registry()` through the fixture in tests/e2e/registry.py.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import hashlib
import io
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from k8py.kubelet.images import mediatypes as mt  # noqa: E402
from k8py.kubelet.images.archive import tar_directory  # noqa: E402
from k8py.kubelet.images.mirrors import Endpoint  # noqa: E402
from k8py.kubelet.images.platform import host_platform  # noqa: E402
from k8py.kubelet.images.registry import RegistryClient  # noqa: E402

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PASSWD = ("root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
          "www-data:x:33:33:www-data:/var/www:/bin/false\nnginx:x:101:101:nginx:/nonexistent:/bin/false\n"
          "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
GROUP = "root:x:0:\ndaemon:x:1:\nwww-data:x:33:\nnginx:x:101:\nnogroup:x:65534:\nnobody:x:65534:\n"
NGINX_CONF = """user nginx;
worker_processes 1;
error_log /var/log/nginx/error.log notice;
pid /run/nginx.pid;
events { worker_connections 1024; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log /var/log/nginx/access.log;
    sendfile on;
    keepalive_timeout 65;
    include /etc/nginx/conf.d/*.conf;
}
"""
NGINX_DEFAULT_SITE = """server {
    listen 80;
    listen [::]:80;
    server_name localhost;
    location / {
        root /usr/share/nginx/html;
        index index.html index.htm;
    }
}
"""
NGINX_INDEX = """<!DOCTYPE html>
<html>
<head><title>Welcome to nginx!</title></head>
<body>
<h1>Welcome to nginx!</h1>
<p>If you see this page, the nginx web server is successfully installed and working.</p>
</body>
</html>
"""


@dataclass
class TestRegistry:
    process: subprocess.Popen
    port: int
    directory: Path
    mirrors_config: Path
    scheme: str = "http"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _base_rootfs(root: Path) -> None:
    """busybox and its applets (as /bin/<applet> symlinks), /etc/passwd and friends."""
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "tmp", "root", "var", "dev", "proc", "sys", "home"):
        (root / d).mkdir(parents=True, exist_ok=True)
    os.chmod(root / "tmp", 0o1777)
    shutil.copy2("/bin/busybox", root / "bin/busybox")
    applets = subprocess.run(["/bin/busybox", "--list-full"], capture_output=True, text=True, check=True).stdout
    for applet in applets.split():
        target = root / applet
        if applet == "bin/busybox" or target.exists():
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to("/bin/busybox")
    (root / "etc/passwd").write_text(PASSWD)
    (root / "etc/group").write_text(GROUP)
    (root / "etc/nsswitch.conf").write_text("passwd: files\ngroup: files\nhosts: files dns\n")


def build_busybox(root: Path) -> dict:
    _base_rootfs(root)
    return {"Env": [DEFAULT_PATH], "Cmd": ["sh"]}


def _copy_with_libs(root: Path, binary: str) -> None:
    """Copy a dynamically linked binary and every library ldd names to the same paths."""
    dest = root / binary.lstrip("/")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(binary, dest)
    out = subprocess.run(["ldd", binary], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        path = parts[2] if "=>" in parts and len(parts) > 2 else parts[0]
        if not path.startswith("/"):
            continue
        for name in {path, os.path.realpath(path)}:
            target = root / name.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                shutil.copy2(os.path.realpath(path), target)


def build_nginx(root: Path) -> dict:
    if not Path("/usr/sbin/nginx").exists():
        raise RuntimeError("nginx is not installed (apt-get install nginx-light)")
    _base_rootfs(root)
    _copy_with_libs(root, "/usr/sbin/nginx")
    conf = root / "etc/nginx"
    (conf / "conf.d").mkdir(parents=True)
    (conf / "nginx.conf").write_text(NGINX_CONF)
    (conf / "conf.d/default.conf").write_text(NGINX_DEFAULT_SITE)
    shutil.copy2("/etc/nginx/mime.types", conf / "mime.types")
    html = root / "usr/share/nginx/html"
    html.mkdir(parents=True)
    (html / "index.html").write_text(NGINX_INDEX)
    logs = root / "var/log/nginx"
    logs.mkdir(parents=True)
    (logs / "access.log").symlink_to("/dev/stdout")     # as the official image does: logs reach `kubectl logs`
    (logs / "error.log").symlink_to("/dev/stderr")
    for d in ("var/lib/nginx/body", "var/lib/nginx/proxy", "var/lib/nginx/fastcgi", "var/lib/nginx/uwsgi",
              "var/lib/nginx/scgi", "var/cache/nginx", "run"):
        (root / d).mkdir(parents=True, exist_ok=True)
    return {"Env": [DEFAULT_PATH, "NGINX_VERSION=debian"], "Cmd": ["nginx", "-g", "daemon off;"],
            "ExposedPorts": {"80/tcp": {}}, "StopSignal": "SIGQUIT"}


def layer_of(root: Path) -> tuple[bytes, str]:
    """(gzipped layer, diff id) of a folder."""
    raw = io.BytesIO()
    tar_directory(root, raw)
    data = raw.getvalue()
    return gzip.compress(data, compresslevel=1, mtime=0), "sha256:" + hashlib.sha256(data).hexdigest()


def image_documents(layer: bytes, diff_id: str, config: dict, docker: bool) -> tuple[bytes, dict]:
    os_name, arch, variant = host_platform()
    cfg = {"architecture": arch, "os": os_name, "config": config, "created": "2024-01-01T00:00:00Z",
           "rootfs": {"type": "layers", "diff_ids": [diff_id]}}
    cfg_raw = json.dumps(cfg, sort_keys=True).encode()
    manifest = {"schemaVersion": 2,
                "mediaType": mt.DOCKER_MANIFEST if docker else mt.OCI_MANIFEST,
                "config": {"mediaType": mt.DOCKER_CONFIG if docker else mt.OCI_CONFIG,
                           "digest": "sha256:" + hashlib.sha256(cfg_raw).hexdigest(), "size": len(cfg_raw)},
                "layers": [{"mediaType": mt.DOCKER_LAYER_GZIP if docker else mt.OCI_LAYER_GZIP,
                            "digest": "sha256:" + hashlib.sha256(layer).hexdigest(), "size": len(layer)}]}
    return cfg_raw, manifest


async def push_image(url: str, path: str, tag: str, root: Path, config: dict, docker: bool, as_index: bool) -> None:
    """Push a one-layer image; with `as_index` behind a manifest list naming this platform and a foreign one."""
    layer, diff_id = layer_of(root)
    cfg_raw, manifest = image_documents(layer, diff_id, config, docker)
    endpoint = Endpoint(url, url.split("://")[1])
    async with RegistryClient(endpoint, path) as client:
        await client.push_blob(layer)
        await client.push_blob(cfg_raw)
        media = manifest["mediaType"]
        if not as_index:
            await client.push_manifest(tag, manifest, media)
            return
        digest = await client.push_manifest(f"{tag}-{host_platform()[1]}", manifest, media)
        body = json.dumps(manifest, separators=(",", ":")).encode()
        os_name, arch, variant = host_platform()
        plat = {"os": os_name, "architecture": arch, **({"variant": variant} if variant else {})}
        foreign = {"os": "linux", "architecture": "s390x" if arch != "s390x" else "ppc64le"}
        index = {"schemaVersion": 2, "mediaType": mt.DOCKER_LIST if docker else mt.OCI_INDEX, "manifests": [
            # A foreign platform first, so picking the first entry would be wrong.
            {"mediaType": media, "digest": digest, "size": len(body), "platform": foreign},
            {"mediaType": media, "digest": digest, "size": len(body), "platform": plat},
            {"mediaType": media, "digest": digest, "size": len(body),
             "platform": {"os": "unknown", "architecture": "unknown"}},
        ]}
        await client.push_manifest(tag, index, index["mediaType"])


def _wait_ready(url: str, process: subprocess.Popen, timeout: float = 15, ca_file: Path | None = None) -> None:
    context = ssl.create_default_context(cafile=str(ca_file)) if ca_file else None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"docker-registry exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/v2/", timeout=1, context=context) as resp:
                if resp.status == 200:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code == 401:          # serving, and asking for credentials
                return
            time.sleep(0.05)
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("docker-registry did not become ready")


def start_registry(directory: Path, port: int | None = None, images: bool = True,
                   auth: dict | None = None, tls: tuple[Path, Path] | None = None,
                   listen_host: str = "127.0.0.1") -> TestRegistry:
    """Start docker-registry; `auth` is its `auth:` config section (htpasswd or token) if any,
    `tls` a (certificate, key) pair to serve HTTPS with. `listen_host` other than 127.0.0.1
    only inside a network namespace a test made (other nodes there pull from it)."""
    directory.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    config = directory / "registry.yml"
    config.write_text(json.dumps({
        "version": 0.1, "log": {"level": "error", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(directory / "storage")}, "delete": {"enabled": True}},
        "http": {"addr": f"{listen_host}:{port}",
                 **({"tls": {"certificate": str(tls[0]), "key": str(tls[1])}} if tls else {})},
        **({"auth": auth} if auth else {}),
    }))
    log = open(directory / "registry.log", "ab")
    process = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=log, stderr=log,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    registry = TestRegistry(process, port, directory, directory / "registries.yaml", "https" if tls else "http")
    try:
        _wait_ready(registry.url, process, ca_file=tls[0] if tls else None)
        if images:
            asyncio.run(push_test_images(registry.url, directory))
    except BaseException:
        registry.stop()
        raise
    # Hermetic: a missing image is "not found" here, never looked for on the real Docker Hub.
    registry.mirrors_config.write_text(
        f'mirrors:\n  docker.io:\n    endpoint: ["{registry.url}"]\ndisable_default_endpoint: true\n')
    return registry


async def push_test_images(url: str, directory: Path) -> None:
    with tempfile.TemporaryDirectory(dir=directory) as work:
        busybox = Path(work) / "busybox"
        config = build_busybox(busybox)
        await push_image(url, "library/busybox", "latest", busybox, config, docker=True, as_index=True)
        await push_image(url, "library/busybox", "1.36", busybox, config, docker=True, as_index=False)
        nginx = Path(work) / "nginx"
        config = build_nginx(nginx)
        await push_image(url, "library/nginx", "latest", nginx, config, docker=False, as_index=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--listen-host", default="127.0.0.1",
                        help="address to serve on (mirror config still says 127.0.0.1); wider only in a test netns")
    args = parser.parse_args()
    directory = args.dir or Path(tempfile.mkdtemp(prefix="k8py-registry-"))
    # Block the stop signals first: sigwait only collects signals that are blocked.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    registry = start_registry(directory, args.port, listen_host=args.listen_host)
    print(f"registry {registry.url}; mirror config {registry.mirrors_config}", flush=True)
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        registry.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
