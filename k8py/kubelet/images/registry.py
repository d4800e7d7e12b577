"""A small OCI distribution client: manifests and blobs, anonymous, Bearer and Basic auth.

Auth follows the registry's 401 challenge (`WWW-Authenticate: Bearer
realm=...,service=...,scope=...` or `Basic`), caching one token per repository
and scope for the client's lifetime. Pushing exists for the test registry.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import ssl
from pathlib import Path

import aiohttp

from k8py.kubelet.images.mediatypes import ACCEPT
from k8py.kubelet.images.mirrors import Endpoint

_CHALLENGE_PARAM = re.compile(r'(\w+)\s*=\s*(?:"([^"]*)"|([^\s,]+))')


class RegistryError(Exception):
    def __init__(self, message: str, status: int = 0):
        super().__init__(message)
        self.status = status


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    params = {m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3))
              for m in _CHALLENGE_PARAM.finditer(rest)}
    return scheme.lower(), params


def _ssl_context(tls: dict) -> ssl.SSLContext | bool:
    if not tls:
        return True
    ctx = ssl.create_default_context(cafile=tls.get("ca_file") or None)
    if tls.get("cert_file"):
        ctx.load_cert_chain(tls["cert_file"], tls.get("key_file") or None)
    if tls.get("insecure_skip_verify"):
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class RegistryClient:
    def __init__(self, endpoint: Endpoint, repository_path: str, credentials: tuple[str, str] | None = None,
                 session: aiohttp.ClientSession | None = None, timeout: float = 300):
        self.endpoint = endpoint
        self.path = repository_path
        if credentials is None and endpoint.auth:
            auth = endpoint.auth
            if auth.get("username") or auth.get("password"):
                credentials = (auth.get("username", ""), auth.get("password", ""))
            elif auth.get("auth"):
                user, _, pw = base64.b64decode(auth["auth"]).decode().partition(":")
                credentials = (user, pw)
        self.credentials = credentials
        self._identity_token = endpoint.auth.get("identitytoken")
        self._authorization: str | None = None
        self._own_session = session is None
        self._session = session or aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout, sock_connect=10))
        self._ssl = _ssl_context(endpoint.tls) if endpoint.url.startswith("https") else None

    async def close(self) -> None:
        if self._own_session:
            await self._session.close()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()

    def _url(self, suffix: str) -> str:
        return f"{self.endpoint.url}/v2/{self.path}/{suffix}"

    def _basic(self) -> str:
        raw = f"{self.credentials[0]}:{self.credentials[1]}".encode()
        return "Basic " + base64.b64encode(raw).decode()

    async def _authenticate(self, challenge: str, scope_actions: str) -> bool:
        scheme, params = parse_challenge(challenge)
        if scheme == "basic":
            if not self.credentials:
                return False
            self._authorization = self._basic()
            return True
        if scheme != "bearer" or "realm" not in params:
            return False
        query = {"scope": params.get("scope") or f"repository:{self.path}:{scope_actions}"}
        if params.get("service"):
            query["service"] = params["service"]
        headers = {"Authorization": self._basic()} if self.credentials else {}
        if self._identity_token:
            body = {"grant_type": "refresh_token", "refresh_token": self._identity_token,
                    "service": params.get("service", ""), "scope": query["scope"], "client_id": "k8py"}
            req = self._session.post(params["realm"], data=body, ssl=self._ssl)
        else:
            req = self._session.get(params["realm"], params=query, headers=headers, ssl=self._ssl)
        async with req as resp:
            if resp.status in (401, 403):
                raise RegistryError(f"failed to fetch anonymous token: unexpected status from GET request "
                                    f"to {params['realm']}: {resp.status} {resp.reason}", resp.status)
            if resp.status >= 300:
                raise RegistryError(f"token server {params['realm']} answered {resp.status}", resp.status)
            data = await resp.json(content_type=None)
        token = data.get("token") or data.get("access_token")
        if not token:
            raise RegistryError(f"token server {params['realm']} returned no token")
        self._authorization = "Bearer " + token
        return True

    async def _request(self, method: str, url: str, *, headers: dict | None = None, data=None,
                       scope: str = "pull", allow_redirects: bool = True):
        """Send, answering one auth challenge; the caller must release the response."""
        for attempt in range(2):
            hdrs = dict(headers or {})
            if self._authorization:
                hdrs["Authorization"] = self._authorization
            try:
                resp = await self._session.request(method, url, headers=hdrs, data=data, ssl=self._ssl,
                                                   allow_redirects=allow_redirects)
            except (aiohttp.ClientError, OSError) as exc:
                raise RegistryError(f"{method} {url}: {exc}") from exc
            if resp.status == 401 and attempt == 0 and "WWW-Authenticate" in resp.headers:
                challenge = resp.headers["WWW-Authenticate"]
                resp.release()
                if await self._authenticate(challenge, scope):
                    continue
                raise RegistryError(f"{method} {url}: 401 Unauthorized", 401)
            return resp
        raise RegistryError(f"{method} {url}: authentication failed", 401)

    async def get_manifest(self, locator: str, accept: str = ACCEPT) -> tuple[bytes, str, str]:
        """(raw bytes, content type, digest) of the manifest named by tag or digest."""
        resp = await self._request("GET", self._url(f"manifests/{locator}"), headers={"Accept": accept})
        async with resp:
            if resp.status == 404:
                raise RegistryError("not found", 404)
            if resp.status >= 300:
                raise RegistryError(f"unexpected status {resp.status} fetching manifest {locator}: "
                                    f"{(await resp.text())[:200]}", resp.status)
            body = await resp.read()
            content_type = resp.headers.get("Content-Type", "")
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if locator.startswith("sha256:") and locator != digest:
            raise RegistryError(f"manifest digest mismatch: wanted {locator}, got {digest}")
        return body, content_type, digest

    async def fetch_blob(self, digest: str, dest: Path) -> int:
        """Stream a blob to `dest`, verifying its sha256; returns its size."""
        resp = await self._request("GET", self._url(f"blobs/{digest}"))
        async with resp:
            if resp.status >= 300:
                raise RegistryError(f"unexpected status {resp.status} fetching blob {digest}", resp.status)
            hasher = hashlib.sha256()
            size = 0
            with open(dest, "wb") as out:
                async for chunk in resp.content.iter_chunked(1 << 20):
                    hasher.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
        if digest.startswith("sha256:") and "sha256:" + hasher.hexdigest() != digest:
            dest.unlink(missing_ok=True)
            raise RegistryError(f"blob {digest} failed verification")
        return size

    # --- push (used by the test registry) ---

    async def blob_exists(self, digest: str) -> bool:
        resp = await self._request("HEAD", self._url(f"blobs/{digest}"), scope="pull,push")
        async with resp:
            return resp.status == 200

    async def push_blob(self, data: bytes, digest: str | None = None) -> str:
        digest = digest or "sha256:" + hashlib.sha256(data).hexdigest()
        if await self.blob_exists(digest):
            return digest
        resp = await self._request("POST", self._url("blobs/uploads/"), scope="pull,push")
        async with resp:
            if resp.status != 202:
                raise RegistryError(f"starting upload: {resp.status} {await resp.text()}", resp.status)
            location = resp.headers["Location"]
        if location.startswith("/"):
            location = self.endpoint.url + location
        sep = "&" if "?" in location else "?"
        resp = await self._request("PUT", f"{location}{sep}digest={digest}", data=data,
                                   headers={"Content-Type": "application/octet-stream"}, scope="pull,push")
        async with resp:
            if resp.status != 201:
                raise RegistryError(f"finishing upload: {resp.status} {await resp.text()}", resp.status)
        return digest

    async def push_manifest(self, reference: str, manifest: dict, media_type: str) -> str:
        body = json.dumps(manifest, separators=(",", ":")).encode()
        resp = await self._request("PUT", self._url(f"manifests/{reference}"), data=body,
                                   headers={"Content-Type": media_type}, scope="pull,push")
        async with resp:
            if resp.status != 201:
                raise RegistryError(f"pushing manifest: {resp.status} {await resp.text()}", resp.status)
        return "sha256:" + hashlib.sha256(body).hexdigest()
