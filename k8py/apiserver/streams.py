"""Streams the API server passes through to kubelets.

pods/log, pods/exec, pods/attach, pods/portforward and nodes/proxy are served
by the kubelet of the pod's node: the API server finds the node's address
(InternalIP first) and kubelet port (status.daemonEndpoints.kubeletEndpoint),
connects over TLS and relays the HTTP response or the WebSocket both ways.

TLS to kubelets: the API server presents a client certificate it issues
itself from the cluster CA (user kube-apiserver-kubelet-client, group
system:masters), which kubelets given the CA require. Like upstream without
--kubelet-certificate-authority, it does not verify the kubelet's serving
certificate: agents make their own (self-signed unless they hold the CA key).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from pathlib import Path
from urllib.parse import quote

import aiohttp
import orjson
from aiohttp import WSMsgType, web

from k8py.apimachinery import errors
from k8py.apiserver import pki as pki_mod

log = logging.getLogger("k8py.apiserver.streams")

KUBELET_CLIENT_USER = "kube-apiserver-kubelet-client"
LOG_PARAMS = ("follow", "previous", "tailLines", "sinceSeconds", "sinceTime", "timestamps", "limitBytes",
              "insecureSkipTLSVerifyBackend")
EXEC_PARAMS = ("command", "stdin", "stdout", "stderr", "tty")
# hop-by-hop and connection headers never relayed
_HOP_HEADERS = {"connection", "upgrade", "keep-alive", "transfer-encoding", "te", "trailer", "proxy-authorization",
                "proxy-authenticate", "host", "authorization", "content-length", "sec-websocket-key",
                "sec-websocket-version", "sec-websocket-extensions", "sec-websocket-protocol",
                "sec-websocket-accept"}
_TOKEN_PROTOCOL_PREFIX = "base64url.bearer.authorization.k8s.io."


class KubeletConnector:
    """TLS settings and an HTTP session for talking to kubelets."""

    def __init__(self, tls_dir: Path):
        self.tls_dir = Path(tls_dir)
        self._ssl: ssl.SSLContext | None = None
        self._session: aiohttp.ClientSession | None = None

    def ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            pki = pki_mod.pki_paths(self.tls_dir)
            if not pki.ca_cert.exists():
                raise errors.service_unavailable("the cluster CA is not available to reach kubelets")
            cert, key = self.tls_dir / "client-kube-apiserver-kubelet.crt", self.tls_dir / "client-kube-apiserver-kubelet.key"
            if not (cert.exists() and key.exists()):
                cert_pem, key_pem = pki_mod.issue_client_cert(pki, KUBELET_CLIENT_USER, [pki_mod.ADMIN_GROUP])
                pki_mod.write_atomic(key, key_pem, 0o600)
                pki_mod.write_atomic(cert, cert_pem, 0o644)
            ctx = ssl.create_default_context()
            ctx.check_hostname = False      # see the module docstring
            ctx.verify_mode = ssl.CERT_NONE
            ctx.load_cert_chain(str(cert), str(key))
            self._ssl = ctx
        return self._ssl

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None, connect=10),
                                                  auto_decompress=False)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def kubelet_port(node: dict) -> int | None:
    status = node.get("status") or {}
    return ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port")


def node_address(node: dict) -> str:
    """The address the API server reaches the node at (InternalIP first)."""
    addresses = (node.get("status") or {}).get("addresses") or []
    for kind in ("InternalIP", "ExternalIP", "Hostname"):
        for address in addresses:
            if address.get("type") == kind and address.get("address"):
                return address["address"]
    raise errors.service_unavailable(f'node "{node["metadata"]["name"]}" has no address to reach its kubelet')


def kubelet_base(node: dict) -> str:
    port = kubelet_port(node)
    if not port:
        raise errors.service_unavailable(f'no kubelet endpoint is known for node "{node["metadata"]["name"]}": '
                                         "its node agent has not reported one")
    host = node_address(node)
    host = f"[{host}]" if ":" in host else host
    return f"https://{host}:{port}"


def choose_container(pod: dict, requested: str | None) -> str:
    """Upstream's rules for the container of logs/exec/attach."""
    spec = pod.get("spec") or {}
    name = pod["metadata"]["name"]
    containers = [c.get("name") for c in spec.get("containers") or []]
    every = [c.get("name") for key in ("initContainers", "containers", "ephemeralContainers")
             for c in spec.get(key) or []]
    if not requested:
        if len(containers) == 1:
            return containers[0]
        choices = " ".join(containers)
        init = " ".join(c.get("name") for c in spec.get("initContainers") or [])
        message = f"a container name must be specified for pod {name}, choose one of: [{choices}]"
        if init:
            message += f" or one of the init containers: [{init}]"
        raise errors.bad_request(message)
    if requested not in every:
        raise errors.bad_request(f"container {requested} is not valid for pod {name}")
    return requested


def _query(req, names: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(k, v) for k, v in req.query.items() if k in names]


def _path(*parts: str) -> str:
    return "/" + "/".join(quote(p, safe="") for p in parts)


async def proxy(req, obj: dict) -> web.StreamResponse:
    """Route one stream request to the kubelet holding obj (a pod or a node)."""
    api, info = req.api, req.info
    kind, sub = req.resource.kind, info.subresource
    if kind == "Pod" and sub in ("exec", "attach", "portforward") and info.verb != "create":
        _authorize_upgrade(req)
    if kind == "Pod":
        node_name = (obj.get("spec") or {}).get("nodeName")
        meta = obj["metadata"]
        if sub == "log":
            container = choose_container(obj, req.query.get("container"))
            target = _path("containerLogs", meta["namespace"], meta["name"], container)
            params = _query(req, LOG_PARAMS)
        elif sub in ("exec", "attach"):
            container = choose_container(obj, req.query.get("container"))
            target = _path(sub, meta["namespace"], meta["name"], container)
            params = _query(req, EXEC_PARAMS)
        elif sub == "portforward":
            target = _path("portForward", meta["namespace"], meta["name"])
            params = [(k, v) for k, v in req.query.items() if k in ("ports", "port")]
        else:
            raise errors.service_unavailable(f"pods/{sub} is not served yet")
    elif kind == "Node" and sub == "proxy":
        node_name = obj["metadata"]["name"]
        target = "/" + "/".join(quote(p, safe="") for p in info.rest)
        if req.http.path.endswith("/") and target != "/":
            target += "/"
        params = list(req.query.items())
    else:
        raise errors.service_unavailable(f"{req.resource.plural}/{sub} is not served yet")

    node = api.node(node_name)
    if node is None:
        raise errors.not_found("nodes", node_name)
    url = kubelet_base(node) + target
    if req.http.headers.get("Upgrade", "").lower().startswith("spdy/3.1"):
        return await _relay_spdy(req, api.kubelets, url, params)
    if req.http.headers.get("Upgrade", "").lower() == "websocket":
        if kind == "Pod" and sub == "log":
            return await _log_over_websocket(req, api.kubelets, url, params)
        return await _relay_websocket(req, api.kubelets, url, params)
    return await _relay_http(req, api.kubelets, url, params)


def _authorize_upgrade(req) -> None:
    """A WebSocket upgrade arrives as GET, but running a command or opening a
    port is a write: like upstream (AuthorizePodWebsocketUpgradeCreatePermission)
    the caller also needs `create` on the subresource."""
    from k8py.apiserver.authz import Attributes
    info = req.info
    attrs = Attributes(user=req.user, verb="create", resource_request=True, namespace=info.namespace,
                       api_group=info.group, api_version=info.version, resource=info.resource,
                       subresource=info.subresource, name=info.name, path=info.path)
    decision = req.api.authorizer.authorize(attrs)
    if not decision.allowed:
        raise errors.forbidden(req.user.name, "create", info.resource, info.group, info.name, info.namespace,
                               decision.reason, subresource=info.subresource)


def _dial_error(url: str, err: Exception, upgrade: bool) -> errors.StatusError:
    reason = str(err) or type(err).__name__
    if upgrade:
        return errors.internal_error(f"error dialing backend: {reason}")
    return errors.internal_error(f'Get "{url}": {reason}')


async def _relay_http(req, kubelets: KubeletConnector, url: str, params, tls=None) -> web.StreamResponse:
    headers = {k: v for k, v in req.http.headers.items() if k.lower() not in _HOP_HEADERS}
    body = await req.http.read() if req.http.can_read_body else None
    try:
        upstream = await kubelets.session().request(req.http.method, url, params=params, headers=headers,
                                                    data=body, ssl=kubelets.ssl_context() if tls is None else tls,
                                                    allow_redirects=False)
    except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as err:
        raise _dial_error(url, err, upgrade=False) from None
    try:
        response = web.StreamResponse(status=upstream.status)
        for key, value in upstream.headers.items():
            if key.lower() not in _HOP_HEADERS:
                response.headers[key] = value
        await response.prepare(req.http)
        try:
            # stream as it comes: `kubectl logs -f` shows lines as they are written
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
        except ConnectionResetError:
            # the client hung up (kubectl logs -f ended by ^C): normal, not an error
            log.debug("client closed the stream from %s", url)
        return response
    finally:
        upstream.release()


async def _relay_spdy(req, kubelets: KubeletConnector, url: str, params) -> web.StreamResponse:
    """A plain `Upgrade: SPDY/3.1` (client-go's older exec/attach/port-forward):
    upgrade to the kubelet first, then answer the client with the kubelet's
    101 and copy bytes both ways."""
    from urllib.parse import urlencode, urlsplit

    from k8py.apimachinery.upgrade import SwitchedResponse, switch_protocols
    parts = urlsplit(url)
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(
            parts.hostname, parts.port, ssl=kubelets.ssl_context(), server_hostname=parts.hostname), 10)
    except (OSError, asyncio.TimeoutError, ssl.SSLError) as err:
        raise _dial_error(url, err, upgrade=True) from None
    try:
        lines = [f"{req.http.method} {parts.path}{'?' + urlencode(params) if params else ''} HTTP/1.1",
                 f"Host: {parts.netloc}", "Connection: Upgrade", "Upgrade: SPDY/3.1", "Content-Length: 0"]
        lines += [f"X-Stream-Protocol-Version: {v}" for v in req.http.headers.getall("X-Stream-Protocol-Version", [])]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)).decode("latin-1")
        status_line, *header_lines = head.split("\r\n")
        code = int(status_line.split()[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines if h)}
        if code != 101:
            length = int(headers.get("content-length") or 0)
            body = await reader.readexactly(length) if length else b""
            try:
                message = orjson.loads(body).get("message") or body.decode()
            except (orjson.JSONDecodeError, AttributeError):
                message = body.decode(errors="replace")
            raise errors.StatusError(code if code >= 400 else 500, "BadRequest" if code == 400 else "InternalError",
                                     f"unable to upgrade connection: {message}")
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
            ValueError, IndexError) as err:
        writer.close()
        raise _dial_error(url, err, upgrade=True) from None
    except errors.StatusError:
        writer.close()
        raise
    client = switch_protocols(req.http, {"Connection": "Upgrade", "Upgrade": "SPDY/3.1",
                                         "X-Stream-Protocol-Version": headers.get("x-stream-protocol-version", "")})

    async def to_kubelet():
        async for chunk in client.chunks():
            writer.write(chunk)
            await writer.drain()

    async def to_client():
        while data := await reader.read(65536):
            await client.send(data)

    tasks = [asyncio.create_task(to_kubelet()), asyncio.create_task(to_client())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        writer.close()
        await client.close()
    return SwitchedResponse()


LOG_WEBSOCKET_PROTOCOLS = ("binary.k8s.io", "base64.binary.k8s.io")


async def _log_over_websocket(req, kubelets: KubeletConnector, url: str, params) -> web.StreamResponse:
    """Logs read through a WebSocket (upstream's reader streams): each chunk one
    message, binary, or base64 text under base64.binary.k8s.io."""
    import base64
    try:
        upstream = await kubelets.session().get(url, params=params, ssl=kubelets.ssl_context())
    except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as err:
        raise _dial_error(url, err, upgrade=False) from None
    try:
        if upstream.status != 200:   # the kubelet's Status, as a plain HTTP answer
            return web.Response(status=upstream.status, body=await upstream.read(),
                                content_type=upstream.content_type)
        ws = web.WebSocketResponse(protocols=LOG_WEBSOCKET_PROTOCOLS, max_msg_size=0, autoping=True)
        await ws.prepare(req.http)
        as_text = ws.ws_protocol == "base64.binary.k8s.io"
        try:
            async for chunk in upstream.content.iter_any():
                if ws.closed:
                    break
                if as_text:
                    await ws.send_str(base64.b64encode(chunk).decode())
                else:
                    await ws.send_bytes(chunk)
        except (ConnectionResetError, RuntimeError):
            pass
        await ws.close()
        return ws
    finally:
        upstream.release()


async def _kubelet_refusal(kubelets: KubeletConnector, url: str, params, status: int) -> errors.StatusError:
    """Why the kubelet refused an upgrade: ask again without one (it answers
    before doing anything) and pass its Status on."""
    message = f"unable to upgrade connection: kubelet answered {status}"
    code = status
    with contextlib.suppress(Exception):
        async with kubelets.session().get(url, params=params, ssl=kubelets.ssl_context()) as r:
            body = orjson.loads(await r.read())
            if isinstance(body, dict) and body.get("message"):
                message = body["message"]
                if not message.startswith("unable to upgrade connection"):
                    message = f"unable to upgrade connection: {message}"
            code = r.status
    if code == 404:
        return errors.StatusError(404, "NotFound", message)
    return errors.bad_request(message) if code == 400 else errors.internal_error(message)


async def _relay_websocket(req, kubelets: KubeletConnector, url: str, params, tls=None) -> web.StreamResponse:
    offered = [p.strip() for p in req.http.headers.get("Sec-WebSocket-Protocol", "").split(",")
               if p.strip() and not p.strip().startswith(_TOKEN_PROTOCOL_PREFIX)]
    ws_url = url + ("?" + "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in params) if params else "")
    try:
        upstream = await kubelets.session().ws_connect(ws_url, protocols=offered,
                                                       ssl=kubelets.ssl_context() if tls is None else tls,
                                                       max_msg_size=0, autoping=True)
    except aiohttp.WSServerHandshakeError as err:
        if tls is not None:
            raise errors.bad_request(f"unable to upgrade connection: backend answered {err.status}") from None
        raise await _kubelet_refusal(kubelets, url, params, err.status) from None
    except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as err:
        raise _dial_error(url, err, upgrade=True) from None
    client = web.WebSocketResponse(protocols=(upstream.protocol,) if upstream.protocol else (),
                                   max_msg_size=0, autoping=True)
    try:
        await client.prepare(req.http)
        await asyncio.gather(_pipe(client, upstream), _pipe(upstream, client))
    finally:
        await upstream.close()
        await client.close()
    return client


async def _pipe(source, sink) -> None:
    """Copy WebSocket messages one way; a close on one side closes the other."""
    try:
        async for msg in source:
            if sink.closed:
                break
            if msg.type == WSMsgType.BINARY:
                await sink.send_bytes(msg.data)
            elif msg.type == WSMsgType.TEXT:
                await sink.send_str(msg.data)
            else:
                break
    except (ConnectionResetError, RuntimeError):
        pass
    finally:
        await sink.close()


# ---- pods/proxy and services/proxy: straight to the workload ---------------

def split_proxy_name(raw: str, kind: str = "service") -> tuple[str, str, str]:
    """`[scheme:]name[:port]` as the proxy subresources accept it."""
    parts = raw.split(":")
    if len(parts) == 1:
        return "", parts[0], ""
    if len(parts) == 2:
        return "", parts[0], parts[1]
    if len(parts) == 3 and parts[0] in ("http", "https"):
        return parts[0], parts[1], parts[2]
    raise errors.bad_request(f'invalid {kind} request "{raw}"')


def _pod_target(pod: dict, port: str) -> tuple[str, str]:
    ip = (pod.get("status") or {}).get("podIP")
    if not ip:
        raise errors.service_unavailable(f'pod "{pod["metadata"]["name"]}" has no IP address yet')
    if not port:  # upstream picks the first declared container port
        for container in (pod.get("spec") or {}).get("containers") or []:
            for declared in container.get("ports") or []:
                port = str(declared.get("containerPort"))
                break
            if port:
                break
    elif not port.isdigit():
        for container in (pod.get("spec") or {}).get("containers") or []:
            for declared in container.get("ports") or []:
                if declared.get("name") == port:
                    port = str(declared.get("containerPort"))
        if not port.isdigit():
            raise errors.bad_request(f'no port named "{port}" in pod "{pod["metadata"]["name"]}"')
    return ip, port or "80"


def _service_target(api, service: dict, port: str) -> tuple[str, str]:
    meta = service["metadata"]
    ports = (service.get("spec") or {}).get("ports") or []
    if not port:
        port_name = ports[0].get("name", "") if ports else ""
    elif port.isdigit():
        matching = [p for p in ports if str(p.get("port")) == port]
        if not matching:
            raise errors.service_unavailable(f'no endpoints available for service "{meta["name"]}:{port}"')
        port_name = matching[0].get("name", "")
    else:
        port_name = port
    endpoints = api._cached_obj("", "v1", "endpoints", meta["namespace"], meta["name"]) or {}
    for subset in endpoints.get("subsets") or []:
        for endpoint_port in subset.get("ports") or []:
            if (endpoint_port.get("name") or "") != (port_name or ""):
                continue
            for address in subset.get("addresses") or []:
                if address.get("ip"):
                    return address["ip"], str(endpoint_port.get("port"))
    raise errors.service_unavailable(f'no endpoints available for service "{meta["name"]}"')


async def proxy_to_workload(req, obj: dict, scheme: str, port: str) -> web.StreamResponse:
    """pods/proxy and services/proxy: the API server dials the pod (or one of
    the service's ready endpoints) itself, as upstream does."""
    if req.resource.kind == "Pod":
        host, port = _pod_target(obj, port)
    else:
        host, port = _service_target(req.api, obj, port)
    return await _proxy_to(req, scheme or ("https" if port == "443" else "http"), host, port)


async def proxy_to_node_port(req, node: dict, scheme: str, port: str) -> web.StreamResponse:
    """nodes/proxy: to the node's kubelet (its TLS client certificate and all)
    when no port or the kubelet's is named, else plainly to that port of the
    node's address, as upstream's node ResourceLocation does."""
    if not port or port == str(kubelet_port(node)):
        return await req.api.proxy_to_node(req, node)
    if not port.isdigit():
        raise errors.bad_request(f'invalid node request "{req.info.name}"')
    return await _proxy_to(req, scheme or "http", node_address(node), port)


async def _proxy_to(req, scheme: str, host: str, port: str) -> web.StreamResponse:
    host = f"[{host}]" if ":" in host else host
    target = "/" + "/".join(quote(p, safe="") for p in req.info.rest)
    if req.http.path.endswith("/") and target != "/":
        target += "/"
    url = f"{scheme}://{host}:{port}{target}"
    params = list(req.query.items())
    tls = False if scheme == "http" else _insecure_tls()
    if req.http.headers.get("Upgrade", "").lower() == "websocket":
        return await _relay_websocket(req, req.api.kubelets, url, params, tls=tls)
    return await _relay_http(req, req.api.kubelets, url, params, tls=tls)


def _insecure_tls() -> ssl.SSLContext:
    """Upstream does not verify the certificates of pods it proxies to either."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx
