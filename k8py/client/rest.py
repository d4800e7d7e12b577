"""An asyncio REST client for the Kubernetes API (ours or any other).

Components (scheduler, controllers, kubelet, proxy) reach the API server only
through this client, so each of them could run on another machine. Objects are
plain dicts in their JSON wire form; errors arrive as ApiError carrying the
server's Status.
"""

from __future__ import annotations

import asyncio
import base64
import ssl
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import aiohttp
import orjson
import yaml

PATCH_CONTENT_TYPES = {
    "json": "application/json-patch+json",
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
    "apply": "application/apply-patch+yaml",
}


class ApiError(Exception):
    """A non-2xx answer; `status` is the server's Status object (or a synthesised one)."""

    def __init__(self, status: dict):
        self.status = status
        self.code = int(status.get("code") or 0)
        self.reason = status.get("reason", "")
        super().__init__(f"{self.code} {self.reason}: {status.get('message', '')}")

    @property
    def not_found(self) -> bool:
        return self.code == 404

    @property
    def conflict(self) -> bool:
        return self.code == 409

    @property
    def already_exists(self) -> bool:
        return self.reason == "AlreadyExists"


def api_path(group_version: str, plural: str, namespace: str | None = None, name: str | None = None,
             subresource: str | None = None) -> str:
    path = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
    if namespace:
        path += f"/namespaces/{quote(namespace, safe='')}"
    path += f"/{plural}"
    if name:
        path += f"/{quote(name, safe='')}"
    if subresource:
        path += f"/{subresource}"
    return path


class Client:
    def __init__(self, server: str, *, token: str | None = None, ca_file: str | None = None,
                 ca_data: str | None = None, cert_file: str | None = None, key_file: str | None = None,
                 insecure: bool = False, user_agent: str = "k8py", qps_timeout: float = 30.0):
        self.server = server.rstrip("/")
        self.token = token
        self.user_agent = user_agent
        self.timeout = qps_timeout
        self.ssl = self._ssl_context(ca_file, ca_data, cert_file, key_file, insecure) \
            if self.server.startswith("https") else None
        self._trust = {"ca_file": ca_file, "ca_data": ca_data, "insecure": insecure}
        self._session: aiohttp.ClientSession | None = None

    @staticmethod
    def _ssl_context(ca_file, ca_data, cert_file, key_file, insecure) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=ca_file, cadata=ca_data)
        if insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if cert_file:
            ctx.load_cert_chain(cert_file, key_file)
        return ctx

    def reload_client_certificate(self, cert_file: str, key_file: str) -> None:
        """Present a renewed client certificate on every new connection from now on."""
        if self.ssl is not None:
            self.ssl.load_cert_chain(cert_file, key_file)

    def with_token(self, token: str, user_agent: str | None = None) -> Client:
        """A client of the same server, trusting the same CA, that presents only this bearer token."""
        return Client(self.server, token=token, user_agent=user_agent or self.user_agent, **self._trust)

    def set_token(self, token: str) -> None:
        """Send a renewed bearer token with every request from now on."""
        self.token = token
        if self._session is not None and not self._session.closed:
            self._session.headers["Authorization"] = f"Bearer {token}"

    @classmethod
    def from_kubeconfig(cls, path: str | Path, context: str | None = None, **kwargs) -> Client:
        config = yaml.safe_load(Path(path).read_text())
        context_name = context or config.get("current-context")
        ctx = _named(config.get("contexts"), context_name)["context"]
        cluster = _named(config.get("clusters"), ctx["cluster"])["cluster"]
        user = _named(config.get("users"), ctx["user"])["user"] if ctx.get("user") else {}
        ca_data = base64.b64decode(cluster["certificate-authority-data"]).decode() \
            if cluster.get("certificate-authority-data") else None
        client = cls(cluster["server"], token=user.get("token"), ca_file=cluster.get("certificate-authority"),
                     ca_data=ca_data, insecure=bool(cluster.get("insecure-skip-tls-verify")), **kwargs)
        if client.ssl is not None:
            _load_user_certificate(client.ssl, user)
        return client

    @classmethod
    def for_local_server(cls, data_dir: Path, url: str, **kwargs) -> Client:
        """A client for components inside `k8py server`: the admin client certificate on disk."""
        tls = Path(data_dir) / "server" / "tls"
        return cls(url, ca_file=str(tls / "server-ca.crt"), cert_file=str(tls / "client-admin.crt"),
                   key_file=str(tls / "client-admin.key"), **kwargs)

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            headers = {"User-Agent": self.user_agent, "Accept": "application/json"}
            if self.token:
                headers["Authorization"] = f"Bearer {self.token}"
            connector = aiohttp.TCPConnector(ssl=self.ssl if self.ssl is not None else False, limit=64)
            self._session = aiohttp.ClientSession(headers=headers, connector=connector,
                                                  json_serialize=lambda o: orjson.dumps(o).decode())
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def resource(self, group_version: str, plural: str, namespace: str | None = None) -> ResourceClient:
        return ResourceClient(self, group_version, plural, namespace)

    async def request(self, method: str, path: str, body=None, params: dict | None = None,
                      content_type: str | None = None, timeout: float | None = None) -> dict:
        headers = {}
        data = None
        if body is not None:
            if isinstance(body, (bytes, str)):
                data = body
            else:
                data = orjson.dumps(body)
            headers["Content-Type"] = content_type or "application/json"
        params = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        try:
            async with self.session.request(method, self.server + path, data=data, params=params,
                                            headers=headers,
                                            timeout=aiohttp.ClientTimeout(total=timeout or self.timeout)) as resp:
                raw = await resp.read()
                return _decode(resp.status, raw)
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:
            raise ApiError({"kind": "Status", "status": "Failure", "code": 0, "reason": "ServiceUnavailable",
                            "message": f"{method} {path}: {e.__class__.__name__}: {e}"}) from e

    async def stream_lines(self, path: str, params: dict | None = None) -> AsyncIterator[bytes]:
        """GET a chunked stream (a watch) and yield its newline-separated records."""
        params = {k: _param(v) for k, v in (params or {}).items() if v is not None}
        try:
            async with self.session.get(self.server + path, params=params,
                                        timeout=aiohttp.ClientTimeout(total=None, sock_connect=10)) as resp:
                if resp.status >= 400:
                    _decode(resp.status, await resp.read())
                buffer = b""
                async for chunk in resp.content.iter_any():
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        if line.strip():
                            yield line
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:
            raise ApiError({"kind": "Status", "status": "Failure", "code": 0, "reason": "ServiceUnavailable",
                            "message": f"watch {path}: {e.__class__.__name__}: {e}"}) from e


class ResourceClient:
    """One resource type, optionally in one namespace (None: all namespaces, or cluster-scoped)."""

    def __init__(self, client: Client, group_version: str, plural: str, namespace: str | None):
        self.client = client
        self.group_version = group_version
        self.plural = plural
        self.namespace = namespace

    def path(self, name: str | None = None, subresource: str | None = None, namespace: str | None = None) -> str:
        return api_path(self.group_version, self.plural, namespace or self.namespace, name, subresource)

    def _object_path(self, obj: dict, subresource: str | None = None) -> str:
        meta = obj.get("metadata") or {}
        return self.path(meta.get("name"), subresource, meta.get("namespace"))

    async def get(self, name: str, subresource: str | None = None) -> dict:
        return await self.client.request("GET", self.path(name, subresource))

    async def list(self, label_selector: str | None = None, field_selector: str | None = None,
                   limit: int | None = None, resource_version: str | None = None, **params) -> dict:
        return await self.client.request("GET", self.path(), params={
            "labelSelector": label_selector, "fieldSelector": field_selector, "limit": limit,
            "resourceVersion": resource_version, **params})

    async def create(self, obj: dict, field_manager: str | None = None, dry_run: bool = False) -> dict:
        namespace = (obj.get("metadata") or {}).get("namespace") or self.namespace
        return await self.client.request("POST", self.path(namespace=namespace), obj,
                                         params={"fieldManager": field_manager, "dryRun": "All" if dry_run else None})

    async def update(self, obj: dict, field_manager: str | None = None) -> dict:
        return await self.client.request("PUT", self._object_path(obj), obj, params={"fieldManager": field_manager})

    async def update_status(self, obj: dict, field_manager: str | None = None) -> dict:
        return await self.client.request("PUT", self._object_path(obj, "status"), obj,
                                         params={"fieldManager": field_manager})

    async def patch(self, name: str, patch, patch_type: str = "merge", subresource: str | None = None,
                    field_manager: str | None = None, force: bool | None = None) -> dict:
        body = patch if isinstance(patch, (bytes, str)) else orjson.dumps(patch)
        return await self.client.request("PATCH", self.path(name, subresource), body,
                                         params={"fieldManager": field_manager, "force": force},
                                         content_type=PATCH_CONTENT_TYPES[patch_type])

    async def delete(self, name: str, propagation_policy: str | None = None,
                     grace_period_seconds: int | None = None, preconditions: dict | None = None) -> dict:
        options = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation_policy:
            options["propagationPolicy"] = propagation_policy
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        if preconditions:
            options["preconditions"] = preconditions
        return await self.client.request("DELETE", self.path(name), options)

    async def create_subresource(self, name: str, subresource: str, body: dict) -> dict:
        return await self.client.request("POST", self.path(name, subresource), body)

    async def watch(self, resource_version: str | None = None, timeout_seconds: int | None = None,
                    label_selector: str | None = None, field_selector: str | None = None,
                    bookmarks: bool = True) -> AsyncIterator[tuple[str, dict]]:
        """Yield (type, object) events; an ERROR event (e.g. 410 Gone) raises ApiError."""
        params = {"watch": "true", "resourceVersion": resource_version, "timeoutSeconds": timeout_seconds,
                  "labelSelector": label_selector, "fieldSelector": field_selector,
                  "allowWatchBookmarks": "true" if bookmarks else None}
        async for line in self.client.stream_lines(self.path(), params):
            event = orjson.loads(line)
            if event.get("type") == "ERROR":
                raise ApiError(event.get("object") or {})
            yield event["type"], event["object"]


def _named(entries, name):
    for entry in entries or []:
        if entry.get("name") == name:
            return entry
    raise ValueError(f"kubeconfig has no entry named {name!r}")


def _load_user_certificate(ctx: ssl.SSLContext, user: dict) -> None:
    if user.get("client-certificate"):
        ctx.load_cert_chain(user["client-certificate"], user.get("client-key"))
    elif user.get("client-certificate-data"):
        # ssl can only load a key pair from files: write them briefly to a private folder.
        with tempfile.TemporaryDirectory() as tmp:
            cert, key = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
            cert.write_bytes(base64.b64decode(user["client-certificate-data"]))
            key.touch(mode=0o600)
            key.write_bytes(base64.b64decode(user["client-key-data"]))
            ctx.load_cert_chain(str(cert), str(key))


def _param(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _decode(status: int, raw: bytes) -> dict:
    try:
        body = orjson.loads(raw) if raw else {}
    except orjson.JSONDecodeError:
        body = {"message": raw[:500].decode(errors="replace")}
    if status >= 400:
        if body.get("kind") != "Status":
            body = {"kind": "Status", "status": "Failure", "code": status,
                    "message": body.get("message", f"HTTP {status}")}
        body.setdefault("code", status)
        raise ApiError(body)
    return body

