"""Docker config `auths` entries (from imagePullSecrets) matched to a registry host."""

from __future__ import annotations

import base64
from urllib.parse import urlsplit

_DOCKER_HUB_ALIASES = {"index.docker.io", "registry-1.docker.io", "docker.io", "registry.hub.docker.com"}


def _host_of(key: str) -> str:
    key = key.strip()
    host = urlsplit(key).netloc if "://" in key else key.split("/", 1)[0]
    return "docker.io" if host in _DOCKER_HUB_ALIASES else host


def _username_password(entry: dict) -> tuple[str, str] | None:
    if entry.get("username") or entry.get("password"):
        return entry.get("username", ""), entry.get("password", "")
    if entry.get("auth"):
        try:
            user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return user, password
    return None


def flatten(credentials: list[dict] | None) -> dict[str, tuple[str, str]]:
    """Accept whole `auths` maps or single entries carrying a `server`/`registry` key."""
    found: dict[str, tuple[str, str]] = {}
    for item in credentials or []:
        if not isinstance(item, dict):
            continue
        if "auths" in item and isinstance(item["auths"], dict):
            item = item["auths"]
        server = item.get("server") or item.get("registry") or item.get("serveraddress")
        if server and isinstance(server, str):
            pair = _username_password(item)
            if pair:
                found.setdefault(_host_of(server), pair)
            continue
        for key, entry in item.items():
            if isinstance(entry, dict):
                pair = _username_password(entry)
                if pair:
                    found.setdefault(_host_of(key), pair)
    return found


def lookup(creds: dict[str, tuple[str, str]], *hosts: str) -> tuple[str, str] | None:
    for host in hosts:
        if _host_of(host) in creds:
            return creds[_host_of(host)]
    return None
