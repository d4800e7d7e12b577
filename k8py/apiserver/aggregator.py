"""API aggregation: group-versions served by other servers behind APIServices.

An apiregistration.k8s.io/v1 APIService with `spec.service` says "requests for
/apis/<group>/<version> go to this Service" (that is how metrics.k8s.io is
served). This module resolves the Service to a ready endpoint, proxies the
request there over TLS, with the caller's identity in X-Remote-* headers and
our front-proxy client certificate proving we may set them, and merges the
backend's discovery into ours. A loop keeps each APIService's Available
condition current, with upstream's reasons.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import ssl
from dataclasses import dataclass
from urllib.parse import quote

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from k8py.apimachinery import errors, meta

log = logging.getLogger("k8py.apiserver.aggregator")

FRONT_PROXY_USER = "system:auth-proxy"
CHECK_INTERVAL = 10.0
# Request headers passed to the backend; identity travels in X-Remote-* instead of credentials.
FORWARDED_HEADERS = ("Accept", "Content-Type", "User-Agent", "Accept-Encoding")


@dataclass
class Backend:
    url: str                 # https://ip:port
    server_name: str         # <service>.<namespace>.svc, for certificate checks


class Unavailable(Exception):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


def group_version(apiservice: dict) -> tuple[str, str]:
    spec = apiservice.get("spec") or {}
    return spec.get("group", ""), spec.get("version", "")


class Aggregator:
    def __init__(self, api, client_cert: tuple[str, str] | None):
        self.api = api
        self.client_cert = client_cert            # (cert file, key file) of the front proxy, if we have a CA
        self.discovery: dict[tuple[str, str], dict] = {}   # APIResourceList per remote group-version
        self._session: aiohttp.ClientSession | None = None

    # ---- what is registered ---------------------------------------------

    def apiservices(self) -> list[dict]:
        store = self.api.objects_for("apiregistration.k8s.io", "v1", "apiservices")
        return [c.obj for c in store.cache.list(store.resource.key_prefix())[0]]

    def remote(self, group: str, version: str) -> dict | None:
        """The APIService that sends this group-version elsewhere, if any."""
        for apiservice in self.apiservices():
            if group_version(apiservice) == (group, version) and (apiservice.get("spec") or {}).get("service"):
                return apiservice
        return None

    def remote_groups(self) -> dict[str, list[dict]]:
        """group -> its remote APIServices, highest version priority first."""
        groups: dict[str, list[dict]] = {}
        for apiservice in self.apiservices():
            group, _ = group_version(apiservice)
            if (apiservice.get("spec") or {}).get("service") and not self.api.registry.groups().get(group):
                groups.setdefault(group, []).append(apiservice)
        for services in groups.values():
            services.sort(key=lambda s: -(s["spec"].get("versionPriority") or 0))
        return groups

    # ---- reaching a backend -----------------------------------------------

    def backend(self, apiservice: dict) -> Backend:
        ref = apiservice["spec"]["service"]
        namespace, name = ref.get("namespace", ""), ref.get("name", "")
        port = ref.get("port") or 443
        service = self.api.lookup_object("services", namespace, name)
        if service is None:
            raise Unavailable("ServiceNotFound", f'service/{name} in "{namespace}" is not present')
        spec = service.get("spec") or {}
        if spec.get("type") == "ExternalName":
            return Backend(f"https://{spec.get('externalName')}:{port}", spec.get("externalName", ""))
        service_port = next((p for p in spec.get("ports") or [] if p.get("port") == port), None)
        if service_port is None:
            raise Unavailable("ServicePortError", f'service/{name} in "{namespace}" is not listening on port {port}')
        endpoints = self.api.lookup_object("endpoints", namespace, name) or {}
        port_name = service_port.get("name", "")
        for subset in endpoints.get("subsets") or []:
            target = next((p for p in subset.get("ports") or [] if p.get("name", "") == port_name), None)
            if target is not None and subset.get("addresses"):
                return Backend(f"https://{_host(subset['addresses'][0]['ip'])}:{target['port']}",
                               f"{name}.{namespace}.svc")
        raise Unavailable("MissingEndpoints", f'endpoints for service/{name} in "{namespace}" have no addresses '
                                              f'with port name "{port_name}"')

    def ssl_context(self, apiservice: dict) -> ssl.SSLContext:
        spec = apiservice["spec"]
        if spec.get("insecureSkipTLSVerify"):
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        else:
            bundle = base64.b64decode(spec.get("caBundle") or "").decode(errors="replace")
            ctx = ssl.create_default_context(cadata=bundle or None)
        if self.client_cert:
            ctx.load_cert_chain(*self.client_cert)
        return ctx

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(auto_decompress=False)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    # ---- proxying -----------------------------------------------------------

    async def proxy(self, request: web.Request, apiservice: dict, user) -> web.StreamResponse:
        if not _available(apiservice):
            raise errors.service_unavailable("the server is currently unable to handle the request")
        try:
            backend = self.backend(apiservice)
        except Unavailable as e:
            raise errors.service_unavailable(e.message)
        headers = identity_headers(user)
        for name in FORWARDED_HEADERS:
            if name in request.headers:
                headers[name] = request.headers[name]
        headers["Host"] = backend.server_name
        url = backend.url + request.path_qs
        try:
            upstream = await self.session.request(
                request.method, url, data=await request.read() if request.can_read_body else None,
                headers=headers, ssl=self.ssl_context(apiservice), server_hostname=backend.server_name,
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10))
        except (aiohttp.ClientError, OSError, ssl.SSLError) as e:
            raise errors.service_unavailable(f"error trying to reach service: {_why(url, e)}")
        async with upstream:
            response = web.StreamResponse(status=upstream.status)
            for header in ("Content-Type", "Content-Encoding", "Warning", "Audit-Id"):
                if header in upstream.headers:
                    response.headers[header] = upstream.headers[header]
            await response.prepare(request)
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    # ---- availability and discovery ---------------------------------------

    async def run(self) -> None:
        """Keep conditions and discovery current: new or changed APIServices at once, unavailable
        ones every second, available ones every 10 s."""
        checked: dict[str, tuple[str, float]] = {}  # name -> (spec seen, when)
        loop = asyncio.get_running_loop()
        while True:
            for apiservice in self.apiservices():
                name = apiservice["metadata"]["name"]
                seen = repr(apiservice.get("spec"))
                last = checked.get(name)
                interval = CHECK_INTERVAL if _available(apiservice) else 1.0
                if last is not None and last[0] == seen and loop.time() - last[1] < interval:
                    continue
                checked[name] = (seen, loop.time())
                try:
                    await self.check(apiservice)
                except Exception:
                    log.exception("checking APIService %s", name)
            await asyncio.sleep(0.2)

    async def check(self, apiservice: dict) -> None:
        group, version = group_version(apiservice)
        if not (apiservice.get("spec") or {}).get("service"):
            condition = ("True", "Local", "Local APIServices are always available")
        else:
            try:
                self.discovery[(group, version)] = await self._fetch_discovery(apiservice)
                condition = ("True", "Passed", "all checks passed")
            except Unavailable as e:
                self.discovery.pop((group, version), None)
                condition = ("False", e.reason, e.message)
        await self._set_available(apiservice, *condition)

    async def _fetch_discovery(self, apiservice: dict) -> dict:
        backend = self.backend(apiservice)
        group, version = group_version(apiservice)
        url = f"{backend.url}/apis/{quote(group)}/{quote(version)}"
        try:
            headers = identity_headers(None)
            headers["Accept"] = "application/json"
            async with self.session.get(url, ssl=self.ssl_context(apiservice), headers=headers,
                                        server_hostname=backend.server_name,
                    timeout=aiohttp.ClientTimeout(total=5)) as resp:
                if resp.status != 200:
                    raise Unavailable("FailedDiscoveryCheck", f"failing or missing response from {url}: bad status "
                                                              f"from {url}: {resp.status}")
                return await resp.json(content_type=None)
        except (aiohttp.ClientError, OSError, ssl.SSLError, asyncio.TimeoutError, ValueError) as e:
            raise Unavailable("FailedDiscoveryCheck", f"failing or missing response from {url}: {_why(url, e)}")

    async def _set_available(self, apiservice: dict, status: str, reason: str, message: str) -> None:
        current = next((c for c in (apiservice.get("status") or {}).get("conditions") or []
                        if c.get("type") == "Available"), None)
        if current and (current.get("status"), current.get("reason"), current.get("message")) == \
                (status, reason, message):
            return

        def update(obj: dict) -> dict:
            conditions = [c for c in (obj.get("status") or {}).get("conditions") or [] if c.get("type") != "Available"]
            conditions.append({"type": "Available", "status": status, "lastTransitionTime": meta.rfc3339(),
                               "reason": reason, "message": message})
            obj.setdefault("status", {})["conditions"] = conditions
            return obj

        store = self.api.objects_for("apiregistration.k8s.io", "v1", "apiservices")
        try:
            await store.guaranteed_update("", apiservice["metadata"]["name"], update, subresource="status")
        except errors.StatusError as e:
            if e.code != 404:
                raise

    def aggregated_items(self) -> list[dict]:
        """Discovery entries (apidiscovery.k8s.io/v2 shape) for remote groups."""
        items = []
        for group, services in self.remote_groups().items():
            versions = []
            for apiservice in services:
                _, version = group_version(apiservice)
                listed = self.discovery.get((group, version))
                if listed is None:
                    continue
                versions.append({"version": version, "freshness": "Current",
                                 "resources": to_aggregated_resources(listed.get("resources") or [])})
            if versions:
                items.append({"metadata": {"name": group, "creationTimestamp": None}, "versions": versions})
        return items

    def group_entries(self) -> list[dict]:
        """APIGroup entries (legacy discovery) for remote groups."""
        entries = []
        for group, services in self.remote_groups().items():
            versions = [{"groupVersion": f"{group}/{s['spec']['version']}", "version": s["spec"]["version"]}
                        for s in services]
            entries.append({"name": group, "versions": versions, "preferredVersion": versions[0]})
        return entries


def identity_headers(user) -> CIMultiDict:
    """Who the backend should take the request to be from (one header per group, as requestheader reads them)."""
    headers = CIMultiDict()
    if user is None:
        headers["X-Remote-User"] = FRONT_PROXY_USER
        return headers
    headers["X-Remote-User"] = user.name
    for group in user.groups:
        headers.add("X-Remote-Group", group)
    for key, values in (user.extra or {}).items():
        for value in values:
            headers.add(f"X-Remote-Extra-{quote(key, safe='')}", value)
    return headers


def to_aggregated_resources(resources: list[dict]) -> list[dict]:
    """An APIResourceList's resources in the aggregated discovery shape (subresources folded in)."""
    out: dict[str, dict] = {}
    for r in resources:
        name = r.get("name", "")
        if "/" in name:
            continue
        entry = {"resource": name, "responseKind": {"group": r.get("group", ""), "version": r.get("version", ""),
                                                    "kind": r.get("kind", "")},
                 "scope": "Namespaced" if r.get("namespaced") else "Cluster",
                 "singularResource": r.get("singularName") or r.get("kind", "").lower(),
                 "verbs": r.get("verbs") or []}
        for key in ("shortNames", "categories"):
            if r.get(key):
                entry[key] = r[key]
        out[name] = entry
    for r in resources:
        parent, _, sub = r.get("name", "").partition("/")
        if sub and parent in out:
            out[parent].setdefault("subresources", []).append({
                "subresource": sub, "responseKind": {"group": r.get("group", ""), "version": r.get("version", ""),
                                                     "kind": r.get("kind", "")}, "verbs": r.get("verbs") or []})
    return list(out.values())


def _why(url: str, error: Exception) -> str:
    """A connection failure worded as Go's HTTP client words it."""
    if isinstance(error, aiohttp.ClientConnectorError):
        reason = (error.os_error.strerror or str(error.os_error)).lower() if error.os_error else "refused"
        return f'Get "{url}": dial tcp {error.host}:{error.port}: connect: {reason}'
    if isinstance(error, asyncio.TimeoutError):
        return f'Get "{url}": context deadline exceeded'
    return f'Get "{url}": {error}'


def _available(apiservice: dict) -> bool:
    return any(c.get("type") == "Available" and c.get("status") == "True"
               for c in (apiservice.get("status") or {}).get("conditions") or [])


def _host(ip: str) -> str:
    return f"[{ip}]" if ":" in ip else ip
