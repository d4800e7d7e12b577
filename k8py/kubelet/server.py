"""The kubelet's HTTPS API (port 10250): container logs, exec, attach,
port-forward, and a little about the pods this node runs.

The API server proxies pods/log|exec|attach|portforward and nodes/proxy here.
Clients authenticate with a certificate signed by the cluster CA (the API
server holds one for this); without a client CA configured the server trusts
its network (tests).

`pods_lookup(namespace, name)` returns the pod as the kubelet knows it (a
dict, sync or async); containers are found through the runtime by their
labels, so the server needs nothing else from the pod workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import ssl
from pathlib import Path
from typing import Any, Callable

import orjson
from aiohttp import web

from k8py.kubelet.runtime.interface import (LABEL_CONTAINER_NAME, LABEL_POD_NAME, LABEL_POD_NAMESPACE,
                                            LABEL_POD_UID, LABEL_RESTART_COUNT, ContainerStatus)
from k8py.kubelet.stats import SummaryProvider
from k8py.kubelet.streams import channels, netns
from k8py.apimachinery.upgrade import SwitchedResponse, switch_protocols
from k8py.kubelet.streams.conduit import WebSocketConduit
from k8py.kubelet.streams.spdy_exec import SpdyExec
from k8py.kubelet.streams.logs import LogOptions, stream_log
from k8py.kubelet.streams.portforward import SpdyTunnel, serve_channels
from k8py.kubelet.streams.session import run_session, send_error

log = logging.getLogger("k8py.kubelet.server")

DEFAULT_PORT = 10250


class StatusError(Exception):
    def __init__(self, code: int, reason: str, message: str):
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message

    def response(self) -> web.Response:
        body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": self.message, "reason": self.reason, "code": self.code}
        return web.Response(status=self.code, body=orjson.dumps(body), content_type="application/json")


def bad_request(message: str) -> StatusError:
    return StatusError(400, "BadRequest", message)


def not_found(message: str) -> StatusError:
    return StatusError(404, "NotFound", message)


class KubeletServer:
    def __init__(self, runtime, pods_lookup: Callable[[str, str], Any], cert_file: Path | str | None = None,
                 key_file: Path | str | None = None, port: int = DEFAULT_PORT, *,
                 bind_address: str = "127.0.0.1", client_ca_file: Path | str | None = None, node_name: str = ""):
        self.runtime = runtime
        self.pods_lookup = pods_lookup
        self.cert_file, self.key_file, self.client_ca_file = cert_file, key_file, client_ca_file
        self.port = port
        self.bind_address = bind_address
        self._runner: web.AppRunner | None = None
        self.stats = SummaryProvider(runtime, node_name)
        # authz.SubjectAccessReviewer: callers' certificates are checked against RBAC (webhook mode);
        # None: any holder of a cluster-CA certificate may do anything (or anyone, without a client CA)
        self.authorizer = None

    # ---- lifecycle ----------------------------------------------------------

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.cert_file:
            return None
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(str(self.cert_file), str(self.key_file))
        if self.client_ca_file:
            ctx.load_verify_locations(cafile=str(self.client_ca_file))
            ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx

    async def start(self) -> None:
        if not self.client_ca_file and not _is_loopback(self.bind_address):
            log.warning("kubelet API on %s accepts clients without certificates: give it the cluster CA "
                        "(client_ca_file) so only the API server can exec into pods", self.bind_address)
        # open streams (follow, exec, port-forward) would hold a shutdown for a minute
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.bind_address, self.port, ssl_context=self.ssl_context(),
                           reuse_address=True)
        await site.start()
        if self.port == 0:  # report the port the OS chose
            self.port = site._server.sockets[0].getsockname()[1]
        log.info("kubelet API listening on %s:%d", self.bind_address, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._errors])
        r = app.router
        r.add_get("/healthz", self.healthz)
        r.add_get("/pods", self.pods)
        r.add_get("/metrics/resource", self.resource_metrics)
        r.add_get("/stats/summary", self.stats_summary)
        r.add_get("/containerLogs/{namespace}/{pod}/{container}", self.container_logs)
        for verb in ("exec", "attach"):
            handler = self.exec if verb == "exec" else self.attach
            r.add_route("*", f"/{verb}/{{namespace}}/{{pod}}/{{container}}", handler)
            r.add_route("*", f"/{verb}/{{namespace}}/{{pod}}/{{uid}}/{{container}}", handler)
        r.add_route("*", "/portForward/{namespace}/{pod}", self.port_forward)
        r.add_route("*", "/portForward/{namespace}/{pod}/{uid}", self.port_forward)
        return app

    @web.middleware
    async def _errors(self, request: web.Request, handler):
        try:
            if self.authorizer is not None:
                denied = await self._authorize(request)
                if denied is not None:
                    return denied
            return await handler(request)
        except StatusError as err:
            return err.response()
        except web.HTTPException:
            raise
        except (asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception as err:
            log.exception("kubelet API: %s %s", request.method, request.path)
            return StatusError(500, "InternalError", str(err) or type(err).__name__).response()

    # ---- lookups --------------------------------------------------------------

    async def _pod(self, namespace: str, name: str, uid: str | None = None) -> dict:
        pod = self.pods_lookup(namespace, name)
        if inspect.isawaitable(pod):
            pod = await pod
        if not pod or (uid and (pod.get("metadata") or {}).get("uid") != uid):
            raise not_found(f'pod "{name}" not found in namespace "{namespace}"')
        return pod

    async def _containers(self, pod: dict, container: str) -> list[ContainerStatus]:
        """The runtime's instances of one container of the pod, newest first."""
        meta = pod.get("metadata") or {}
        found = []
        for status in await self.runtime.list_containers():
            labels = status.labels or {}
            if labels.get(LABEL_CONTAINER_NAME) != container:
                continue
            if meta.get("uid") and labels.get(LABEL_POD_UID):
                if labels[LABEL_POD_UID] != meta["uid"]:
                    continue
            elif (labels.get(LABEL_POD_NAMESPACE), labels.get(LABEL_POD_NAME)) != \
                    (meta.get("namespace"), meta.get("name")):
                continue
            found.append(status)

        def age(s: ContainerStatus):
            try:
                restarts = int((s.labels or {}).get(LABEL_RESTART_COUNT, 0))
            except ValueError:
                restarts = 0
            return restarts, s.created_at or 0
        return sorted(found, key=age, reverse=True)

    @staticmethod
    def _check_container_name(pod: dict, container: str) -> None:
        spec = pod.get("spec") or {}
        names = [c.get("name") for key in ("initContainers", "containers", "ephemeralContainers")
                 for c in spec.get(key) or []]
        if container not in names:
            raise bad_request(f"container {container} is not valid for pod {pod['metadata'].get('name')}")

    async def _running_container(self, pod: dict, container: str) -> ContainerStatus:
        self._check_container_name(pod, container)
        for status in await self._containers(pod, container):
            if status.state == "running":
                return status
        raise bad_request(f'unable to upgrade connection: container not found ("{container}")')

    # ---- handlers -------------------------------------------------------------

    async def healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _authorize(self, request: web.Request) -> web.Response | None:
        from k8py.kubelet.authz import attributes, forbidden_text
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        subject = [pair[0] for pair in (peer or {}).get("subject", ())]
        user = next((v for k, v in subject if k == "commonName"), "")
        if not user:
            return web.Response(status=401, text="Unauthorized")
        groups = [v for k, v in subject if k == "organizationName"]
        verb, subresource = attributes(request.path, request.method)
        if await self.authorizer.allowed(user, groups, verb, subresource):
            return None
        return web.Response(status=403, text=forbidden_text(user, verb, subresource))

    async def pods(self, request: web.Request) -> web.Response:
        lister = getattr(self.pods_lookup, "list", None)
        items = lister() if callable(lister) else []
        if inspect.isawaitable(items):
            items = await items
        return web.Response(body=orjson.dumps({"kind": "PodList", "apiVersion": "v1", "metadata": {},
                                               "items": items}), content_type="application/json")

    async def resource_metrics(self, request: web.Request) -> web.Response:
        from k8py.kubelet.resource_metrics import render
        # the Prometheus text exposition format's content type, as the kubelet sends it
        return web.Response(body=render(await self.stats.sample()).encode(),
                            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8",
                                     "X-Content-Type-Options": "nosniff"})

    async def stats_summary(self, request: web.Request) -> web.Response:
        return web.Response(body=orjson.dumps(await self.stats.summary()), content_type="application/json")

    async def container_logs(self, request: web.Request) -> web.StreamResponse:
        ns, name, container = (request.match_info[k] for k in ("namespace", "pod", "container"))
        pod = await self._pod(ns, name)
        self._check_container_name(pod, container)
        options = _log_options(request.query)
        previous = _bool(request.query.get("previous"))
        instances = await self._containers(pod, container)
        if previous:
            if len(instances) < 2:
                raise bad_request(f'previous terminated container "{container}" in pod "{name}" not found')
            target = instances[1]
        else:
            if not instances:
                raise bad_request(f'container "{container}" in pod "{name}" is waiting to start: '
                                  f'{_waiting_reason(pod, container)}')
            target = instances[0]
        if not target.log_path:
            raise not_found(f'no log file for container "{container}" in pod "{name}"')

        async def still_running() -> bool:
            try:
                return (await self.runtime.container_status(target.id)).state in ("running", "created")
            except Exception:
                return False

        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        follow_running = still_running if options.follow and not previous else None
        if previous:
            options.follow = False
        try:
            async with contextlib.aclosing(stream_log(target.log_path, options,
                                                      still_running=follow_running)) as chunks:
                async for chunk in chunks:
                    await response.write(chunk)
            await response.write_eof()
        except ConnectionResetError:
            log.debug("log reader of %s/%s went away", name, container)   # a closed client is normal
        return response

    async def exec(self, request: web.Request) -> web.StreamResponse:
        return await self._stream_command(request, attach=False)

    async def attach(self, request: web.Request) -> web.StreamResponse:
        return await self._stream_command(request, attach=True)

    async def _stream_command(self, request: web.Request, attach: bool) -> web.StreamResponse:
        ns, name, container = (request.match_info[k] for k in ("namespace", "pod", "container"))
        q = request.query
        argv = q.getall("command", [])
        want = {k: _bool(q.get(k)) for k in ("stdin", "stdout", "stderr", "tty")}
        if want["tty"]:
            want["stderr"] = False  # a terminal has one output stream
        if not attach and not argv:
            raise bad_request("you must specify at least 1 command")
        if not (want["stdin"] or want["stdout"] or want["stderr"]):
            raise bad_request("you must specify at least 1 of stdin, stdout, stderr")
        pod = await self._pod(ns, name, request.match_info.get("uid"))
        status = await self._running_container(pod, container)
        if _wants_spdy(request):
            return await self._spdy_command(request, status, container, attach, argv, want)
        protocol = channels.choose_protocol(request.headers.get("Sec-WebSocket-Protocol"),
                                            channels.EXEC_WEBSOCKET_PROTOCOLS)
        if request.headers.get("Upgrade", "").lower() != "websocket" or protocol is None:
            raise bad_request("unable to upgrade connection: this kubelet speaks WebSocket "
                              f"{', '.join(p for p in channels.EXEC_WEBSOCKET_PROTOCOLS if p)} "
                              "(or no subprotocol) for exec and attach")
        ws = web.WebSocketResponse(protocols=(protocol,) if protocol else (), max_msg_size=0, autoping=True)
        await ws.prepare(request)
        try:
            if attach:
                process = await self.runtime.attach(status.id, stdin=want["stdin"])
            else:
                process = await self.runtime.exec_stream(status.id, argv, tty=want["tty"], stdin=want["stdin"])
        except Exception as err:
            verb = "attach to" if attach else "exec in"
            await send_error(ws, f"failed to {verb} container {container}: {err}", protocol)
            return ws
        await run_session(ws, process, protocol=protocol, stdout=want["stdout"], stderr=want["stderr"],
                          argv=argv, report_exit=not attach)
        return ws

    async def _spdy_command(self, request, status, container: str, attach: bool, argv, want) -> web.StreamResponse:
        protocol = _spdy_protocol(request, channels.EXEC_PROTOCOLS)

        async def start():
            if attach:
                return await self.runtime.attach(status.id, stdin=want["stdin"])
            return await self.runtime.exec_stream(status.id, argv, tty=want["tty"], stdin=want["stdin"])

        conduit = switch_protocols(request, _spdy_reply_headers(protocol))
        await SpdyExec(conduit, protocol=protocol, want=want, argv=argv, start=start,
                       report_exit=not attach).serve()
        return SwitchedResponse()

    async def port_forward(self, request: web.Request) -> web.StreamResponse:
        ns, name = request.match_info["namespace"], request.match_info["pod"]
        pod = await self._pod(ns, name, request.match_info.get("uid"))
        if _wants_spdy(request):
            protocol = _spdy_protocol(request, (channels.PORT_FORWARD_SPDY,))
            netns_path = await self._netns_of(pod)

            async def connect_spdy(port: int):
                return await netns.open_connection(netns_path, port)
            conduit = switch_protocols(request, _spdy_reply_headers(protocol))
            await SpdyTunnel(conduit, connect_spdy, name, _ports(request.query) or None).serve()
            return SwitchedResponse()
        offered = request.headers.get("Sec-WebSocket-Protocol")
        protocol = channels.choose_protocol(offered, (channels.SPDY_TUNNEL_PROTOCOL,) +
                                            channels.PORT_FORWARD_PROTOCOLS)
        if request.headers.get("Upgrade", "").lower() != "websocket" or protocol is None:
            raise bad_request("unable to upgrade connection: port-forward needs WebSocket with "
                              f"{channels.SPDY_TUNNEL_PROTOCOL}, {channels.V4}, {channels.V4_BASE64} "
                              "or no subprotocol")
        ports = _ports(request.query)
        if protocol != channels.SPDY_TUNNEL_PROTOCOL and not ports:
            raise bad_request("query parameter \"port\" is required")
        netns_path = await self._netns_of(pod)

        async def connect(port: int):
            return await netns.open_connection(netns_path, port)

        ws = web.WebSocketResponse(protocols=(protocol,) if protocol else (), max_msg_size=0, autoping=True)
        await ws.prepare(request)
        if protocol == channels.SPDY_TUNNEL_PROTOCOL:
            await SpdyTunnel(WebSocketConduit(ws), connect, name, ports or None).serve()
        else:
            await serve_channels(ws, ports, connect, name, protocol)
        return ws

    async def _netns_of(self, pod: dict) -> str | None:
        """The pod sandbox's network namespace; None means the host's (hostNetwork)."""
        if (pod.get("spec") or {}).get("hostNetwork"):
            return None
        uid = (pod.get("metadata") or {}).get("uid")
        for sandbox in await self.runtime.list_sandboxes():
            if sandbox.pod_uid == uid:
                if sandbox.netns_path:
                    return sandbox.netns_path
                return None
        pid_of = getattr(self.runtime, "container_pid", None)
        if pid_of is not None:
            for status in await self._containers(pod, ((pod.get("spec") or {}).get("containers") or [{}])[0]
                                                 .get("name", "")):
                pid = pid_of(status.id)
                pid = await pid if inspect.isawaitable(pid) else pid
                if pid:
                    return f"/proc/{pid}/ns/net"
        raise bad_request(f'pod "{pod["metadata"].get("name")}" has no running sandbox on this node')


def _wants_spdy(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower().startswith("spdy/3.1")


def _spdy_protocol(request: web.Request, supported: tuple[str, ...]) -> str:
    """The first of the client's X-Stream-Protocol-Version values we speak."""
    offered = [p.strip() for value in request.headers.getall("X-Stream-Protocol-Version", [])
               for p in value.split(",") if p.strip()]
    for proto in offered:
        if proto in supported:
            return proto
    raise StatusError(403, "Forbidden", f"unable to upgrade: none of the requested protocols {offered} "
                                        f"is supported ({', '.join(supported)})")


def _spdy_reply_headers(protocol: str) -> dict[str, str]:
    return {"Connection": "Upgrade", "Upgrade": "SPDY/3.1", "X-Stream-Protocol-Version": protocol}


def _is_loopback(address: str) -> bool:
    import ipaddress
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "localhost"


def _bool(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "t", "yes")


def _int(query, key: str) -> int | None:
    value = query.get(key)
    if value in (None, ""):
        return None
    try:
        return int(value)
    except ValueError:
        raise bad_request(f'invalid value for "{key}": {value!r} is not an integer') from None


def _log_options(query) -> LogOptions:
    options = LogOptions(follow=_bool(query.get("follow")), tail_lines=_int(query, "tailLines"),
                         since_seconds=_int(query, "sinceSeconds"), since_time=query.get("sinceTime") or None,
                         timestamps=_bool(query.get("timestamps")), limit_bytes=_int(query, "limitBytes"))
    if options.tail_lines is not None and options.tail_lines < 0:
        raise bad_request("tailLines must be greater than or equal to 0")
    if options.since_seconds is not None and options.since_seconds < 1:
        raise bad_request("sinceSeconds must be greater than 0")
    if options.limit_bytes is not None and options.limit_bytes < 1:
        raise bad_request("limitBytes must be greater than 0")
    return options


def _ports(query) -> list[int]:
    ports = []
    for raw in query.getall("ports", []) + query.getall("port", []):
        for part in raw.split(","):
            part = part.strip()
            if not part:
                continue
            try:
                port = int(part)
            except ValueError:
                raise bad_request(f'invalid port "{part}"') from None
            if not 0 < port < 65536:
                raise bad_request(f"port {port} must be between 1 and 65535, inclusive")
            ports.append(port)
    return ports


def _waiting_reason(pod: dict, container: str) -> str:
    status = pod.get("status") or {}
    for key in ("initContainerStatuses", "containerStatuses"):
        for cs in status.get(key) or []:
            if cs.get("name") == container:
                waiting = (cs.get("state") or {}).get("waiting") or {}
                return waiting.get("reason") or "ContainerCreating"
    return "ContainerCreating"
