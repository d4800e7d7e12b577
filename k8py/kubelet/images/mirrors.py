"""k3s-style `registries.yaml`: mirrors per registry and per-host auth/TLS.

    mirrors:
      docker.io:
        endpoint: ["http://127.0.0.1:5000"]
    configs:
      "127.0.0.1:5000":
        auth: {username: u, password: p}
        tls: {insecure_skip_verify: true, ca_file: /path/ca.crt}

Endpoints are tried in order; the registry's own endpoint comes last, as in
k3s. A `"*"` mirror applies to every registry without its own entry. A
top-level `disable_default_endpoint: true` (k3s's `--disable-default-registry-endpoint`
as a file setting) drops that last fallback for mirrored registries, so a
hermetic setup never reaches out to the real registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import yaml


@dataclass
class Endpoint:
    url: str                 # scheme://host[:port], no trailing /v2
    host: str                # host[:port], the key `configs` uses
    auth: dict = field(default_factory=dict)
    tls: dict = field(default_factory=dict)


def default_endpoints(domain: str) -> list[str]:
    """Where a registry itself answers. Loopback registries may speak plain HTTP, as
    Docker and containerd allow: HTTPS is tried first, then HTTP."""
    if domain == "docker.io":
        return ["https://registry-1.docker.io"]
    host = domain.rsplit(":", 1)[0] if not domain.startswith("[") else domain.split("]")[0] + "]"
    if host in ("localhost", "[::1]") or host.startswith("127."):
        return [f"https://{domain}", f"http://{domain}"]
    return [f"https://{domain}"]


def _clean_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if "://" not in url:
        url = "https://" + url
    if url.endswith("/v2"):
        url = url[:-3]
    return url


class MirrorConfig:
    def __init__(self, mirrors: dict | None = None, configs: dict | None = None,
                 disable_default_endpoint: bool = False):
        self.mirrors = mirrors or {}
        self.configs = configs or {}
        self.disable_default_endpoint = disable_default_endpoint

    @classmethod
    def load(cls, path: Path | None) -> "MirrorConfig":
        if path is None or not Path(path).exists():
            return cls()
        data = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping with mirrors/configs")
        return cls(data.get("mirrors") or {}, data.get("configs") or {},
                   bool(data.get("disable_default_endpoint")))

    def _host_config(self, host: str) -> dict:
        return self.configs.get(host) or self.configs.get("*") or {}

    def endpoints(self, domain: str) -> list[Endpoint]:
        mirror = self.mirrors.get(domain)
        if mirror is None:
            mirror = self.mirrors.get("*") or {}
        urls = [_clean_url(u) for u in (mirror.get("endpoint") or [])]
        own = default_endpoints(domain)
        if not (urls and self.disable_default_endpoint):
            urls += [u for u in own if u not in urls]
        result = []
        for url in urls:
            host = urlsplit(url).netloc
            cfg = self.configs.get(host) or (self.configs.get(domain) if url in own else None) or self._host_config(host)
            result.append(Endpoint(url, host, dict(cfg.get("auth") or {}), dict(cfg.get("tls") or {})))
        return result
