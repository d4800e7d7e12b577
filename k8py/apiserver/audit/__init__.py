"""The audit log: one audit.k8s.io/v1 Event per request stage, as kube-apiserver writes them.

How a request is audited
  - `Auditor.middleware` (outermost) gives every request an audit ID (the
    client's `Audit-ID` header, else a new UUID), returned as the `Audit-Id`
    response header, and a per-request `RequestAudit` reachable from any code
    the request runs (a context variable).
  - Once the user is authenticated, `begin(user, info)` asks the policy
    for the level and writes the RequestReceived stage. The policy sees the
    authenticated user, as upstream's (impersonation comes after it);
    `impersonated(user)` records who the request acts as.
  - Long-running requests (watch, proxy, exec, attach, log, portforward)
    write ResponseStarted when their headers go out; every request ends with
    ResponseComplete, or Panic when the handler failed with an unexpected
    error (`panicked(err)`). Requests that fail authentication are logged
    once, at ResponseStarted, with an empty user, as upstream does.

Annotations: any code serving a request (authorizers, admission plugins)
adds to the current request's event with
`k8py.apiserver.request_context.add_audit_annotation(key, value)`, e.g.
`("pod-security.kubernetes.io/enforce-policy", "restricted:latest")`: the
event's annotations are that request context's `audit_annotations`. An
annotation added after ResponseComplete is not written.
"""

from __future__ import annotations

import contextvars
import time
import uuid

import orjson
from aiohttp import web

from k8py.apimachinery import errors
from k8py.apiserver import codec, request_context
from k8py.apiserver.audit.log import AuditLog
from k8py.apiserver.audit.policy import (NOT_LOGGED, LEVELS, AuditConfig, Policy, PolicyError, RequestAttributes,
                                        load)
from k8py.apiserver.requestinfo import parse

AUDIT_ID_HEADER = "Audit-Id"
LONG_RUNNING_VERBS = frozenset({"watch", "proxy"})
LONG_RUNNING_SUBRESOURCES = frozenset({"attach", "exec", "proxy", "log", "portforward"})
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH"})
REQUEST, REQUEST_RESPONSE = LEVELS.index("Request"), LEVELS.index("RequestResponse")

AUDIT_ID_KEY = web.RequestKey("audit_id", str)
AUDIT_KEY = web.RequestKey("audit", object)
_current: contextvars.ContextVar["RequestAudit | None"] = contextvars.ContextVar("k8py_audit", default=None)


def begin(user, info) -> None:
    """The request is authenticated: decide its level and write RequestReceived."""
    ctx = _current.get()
    if ctx is not None:
        ctx.auditor.begin(ctx, user, info)


def impersonated(user) -> None:
    """Who the request acts as (called with the authenticated user too: only another one is recorded)."""
    ctx = _current.get()
    if ctx is not None and user is not ctx.user:
        ctx.impersonated = user


def panicked(err: BaseException) -> None:
    ctx = _current.get()
    if ctx is not None:
        ctx.panic = err


_second = [-1, ""]  # the last whole second formatted, and its text


def micro_time() -> str:
    """Now as metav1.MicroTime: RFC 3339 in UTC with microseconds (the
    seconds part formatted once a second: two of these per request)."""
    now = time.time()
    second = int(now)
    if second != _second[0]:
        _second[:] = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
    return f"{_second[1]}.{int((now - second) * 1e6):06d}Z"


def user_info(user) -> dict:
    out = {"username": user.name}
    if user.uid:
        out["uid"] = user.uid
    out["groups"] = list(user.groups)
    if user.extra:
        out["extra"] = {k: list(v) for k, v in user.extra.items()}
    return out


def source_ips(request: web.BaseRequest) -> list[str]:
    """X-Forwarded-For, then X-Real-Ip, then the peer, without repeats (upstream's order)."""
    ips = [ip.strip() for ip in request.headers.get("X-Forwarded-For", "").split(",") if ip.strip()]
    real = request.headers.get("X-Real-Ip", "").strip()
    if real and real not in ips:
        ips.append(real)
    remote = request.remote
    if remote and remote not in ips:
        ips.append(remote)
    return ips


def _strip_managed_fields(obj):
    if isinstance(obj, dict):
        m = obj.get("metadata")
        if isinstance(m, dict) and "managedFields" in m:
            obj["metadata"] = {k: v for k, v in m.items() if k != "managedFields"}
        items = obj.get("items")
        if isinstance(items, list):
            obj["items"] = [_strip_managed_fields(i) for i in items]
    return obj


class RequestAudit:
    """One request's audit state; `event` stays None while the level is None."""

    __slots__ = ("auditor", "request", "audit_id", "received", "annotations", "config", "event", "info",
                 "user", "impersonated", "long_running", "panic", "started")

    def __init__(self, auditor: "Auditor", request: web.BaseRequest, audit_id: str):
        self.auditor = auditor
        self.request = request
        self.audit_id = audit_id
        self.received = micro_time()
        # Shared with everything the request runs (request_context.add_audit_annotation).
        self.annotations: dict[str, str] = request_context.begin().audit_annotations
        self.config: AuditConfig = NOT_LOGGED
        self.event: dict | None = None
        self.info = None
        self.user = None  # the authenticated user
        self.impersonated = None
        self.long_running = False
        self.panic: BaseException | None = None
        self.started = False


class Auditor:
    def __init__(self, policy: Policy | None = None, backend: AuditLog | None = None):
        self.policy = policy
        self.backend = backend
        self.enabled = policy is not None and backend is not None

    @classmethod
    def from_config(cls, config) -> "Auditor":
        """kube-apiserver's rule: both a policy file and a log path, or no audit log."""
        if not config.audit_policy_file or not config.audit_log_path:
            return cls()
        policy = load(config.audit_policy_file)
        try:
            backend = AuditLog(config.audit_log_path, config.audit_log_maxage, config.audit_log_maxbackup,
                               config.audit_log_maxsize)
        except OSError as err:
            raise PolicyError(f"cannot open the audit log {config.audit_log_path!r}: {err.strerror}") from None
        return cls(policy, backend)

    def close(self) -> None:
        if self.backend is not None:
            self.backend.close()

    def middlewares(self) -> list:
        """What goes first in the app's middlewares: nothing when auditing is off."""
        return [self.middleware] if self.enabled else []

    def install(self, app: web.Application) -> None:
        app.on_response_prepare.append(self._on_response_prepare)

    # ---- stages -----------------------------------------------------------------

    @web.middleware
    async def middleware(self, request: web.Request, handler):
        audit_id = request.headers.get("Audit-ID") or str(uuid.uuid4())
        request[AUDIT_ID_KEY] = audit_id
        ctx = RequestAudit(self, request, audit_id)
        request[AUDIT_KEY] = ctx
        token = _current.set(ctx)
        response = None
        try:
            response = await handler(request)
            return response
        except web.HTTPException as exc:
            response = exc
            raise
        finally:
            _current.reset(token)
            if ctx.event is not None:
                await self._complete(ctx, response)
            elif ctx.info is None and response is not None and response.status == 401:
                self._failed_authentication(ctx, response)
            ctx.started = True  # whatever is prepared after this belongs to no stage

    def begin(self, ctx: RequestAudit, user, info) -> None:
        request = ctx.request
        verb = _verb(info, request.method)
        ctx.info, ctx.user = info, user
        ctx.config = self.policy.evaluate(_attributes(user, info, request.method))
        if ctx.config.level == "None":
            return
        ctx.long_running = info.is_resource and (info.verb in LONG_RUNNING_VERBS
                                                 or info.subresource in LONG_RUNNING_SUBRESOURCES)
        event = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": ctx.config.level,
                 "auditID": ctx.audit_id, "stage": "RequestReceived", "requestURI": str(request.rel_url),
                 "verb": verb, "user": user_info(user), "sourceIPs": source_ips(request),
                 "userAgent": request.headers.get("User-Agent", "")}
        if not event["userAgent"]:
            del event["userAgent"]
        if info.is_resource:
            ref = {"resource": info.resource}
            if info.namespace:
                ref["namespace"] = info.namespace
            if info.name:
                ref["name"] = info.name
            if info.group:
                ref["apiGroup"] = info.group
            ref["apiVersion"] = info.version
            if info.subresource:
                ref["subresource"] = info.subresource
            event["objectRef"] = ref
        ctx.event = event
        self._emit(ctx, "RequestReceived")

    def _emit(self, ctx: RequestAudit, stage: str) -> None:
        if stage in ctx.config.omit_stages:
            return
        event = ctx.event
        event["stage"] = stage
        if ctx.impersonated is not None:
            event["impersonatedUser"] = user_info(ctx.impersonated)
        out = dict(event)
        # Field order as upstream's Event: the timestamps and annotations close it.
        out["requestReceivedTimestamp"] = ctx.received
        out["stageTimestamp"] = micro_time()
        if ctx.annotations:
            out["annotations"] = dict(ctx.annotations)
        self.backend.write(orjson.dumps(out) + b"\n")

    async def _on_response_prepare(self, request: web.BaseRequest, response: web.StreamResponse) -> None:
        # Every response has an audit ID, audited or not (upstream's WithAuditInit).
        response.headers[AUDIT_ID_HEADER] = request.get(AUDIT_ID_KEY) or request.headers.get("Audit-ID") \
            or str(uuid.uuid4())
        ctx = request.get(AUDIT_KEY)
        if ctx is not None and ctx.event is not None and ctx.long_running and not ctx.started:
            ctx.started = True
            ctx.event["responseStatus"] = {"metadata": {}, "code": response.status}
            self._emit(ctx, "ResponseStarted")

    async def _complete(self, ctx: RequestAudit, response) -> None:
        """ResponseComplete (or Panic); `response` is None when the handler
        ended with an exception the server middleware let through (a client
        that went away)."""
        event, request = ctx.event, ctx.request
        if ctx.panic is not None:
            event["responseStatus"] = {"metadata": {}, "status": "Failure",
                                       "message": f"APIServer panic'd: {ctx.panic}", "reason": "InternalError",
                                       "code": 500}
            self._emit(ctx, "Panic")
            return
        if ctx.long_running and not ctx.started and response is not None:
            # Refused before it streamed: its headers go out after this, but the stages keep their order.
            ctx.started = True
            event["responseStatus"] = {"metadata": {}, "code": response.status}
            self._emit(ctx, "ResponseStarted")
        if response is None:
            event.setdefault("responseStatus", {"metadata": {}, "code": 500})
            self._emit(ctx, "ResponseComplete")
            return
        level = LEVELS.index(ctx.config.level)
        # The response body is decoded only when it is logged or carries the Status of an error.
        wanted = not ctx.long_running and (response.status >= 400 or level >= REQUEST_RESPONSE)
        body = _json_body(response) if wanted else None
        if response.status >= 400 and isinstance(body, dict) and body.get("kind") == "Status":
            event["responseStatus"] = {"metadata": {}, **{k: body[k] for k in ("status", "message", "reason",
                                                                               "details", "code") if k in body}}
        else:
            event["responseStatus"] = {"metadata": {}, "code": response.status}
        if request.method in WRITE_METHODS and not ctx.long_running:
            ref = event.get("objectRef")
            # A create names its object in the body: upstream's objectRef has the name at any level.
            needs_name = ref is not None and "name" not in ref and ctx.info.verb == "create"
            requested = await _request_json(request) if level >= REQUEST or needs_name else None
            if needs_name and isinstance(requested, dict) and isinstance(requested.get("metadata"), dict) \
                    and requested["metadata"].get("name"):
                event["objectRef"] = _ordered_ref({**ref, "name": requested["metadata"]["name"]})
            if level >= REQUEST and requested is not None:
                event["requestObject"] = _strip_managed_fields(requested) \
                    if ctx.config.omit_managed_fields else requested
        if level >= REQUEST_RESPONSE and body is not None:
            event["responseObject"] = _strip_managed_fields(body) if ctx.config.omit_managed_fields else body
        self._emit(ctx, "ResponseComplete")

    def _failed_authentication(self, ctx: RequestAudit, response) -> None:
        request = ctx.request
        info = parse(request.path, request.method, request.query)
        config = self.policy.evaluate(_attributes(None, info, request.method))
        if config.level == "None":
            return
        ctx.config = config
        ctx.event = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": config.level,
                     "auditID": ctx.audit_id, "stage": "ResponseStarted", "requestURI": str(request.rel_url),
                     "verb": _verb(info, request.method), "user": {}, "sourceIPs": source_ips(request)}
        if request.headers.get("User-Agent"):
            ctx.event["userAgent"] = request.headers["User-Agent"]
        ctx.event["responseStatus"] = {"metadata": {}, "message": _auth_methods(request), "code": response.status}
        self._emit(ctx, "ResponseStarted")


def _verb(info, method: str) -> str:
    return info.verb if info.is_resource else method.lower()


def _attributes(user, info, method: str) -> RequestAttributes:
    return RequestAttributes(user=user, verb=_verb(info, method), is_resource=info.is_resource, path=info.path,
                             group=info.group, resource=info.resource, subresource=info.subresource,
                             namespace=info.namespace, name=info.name)


def _auth_methods(request: web.BaseRequest) -> str:
    """What a request that failed authentication tried, worded as upstream."""
    tried = []
    auth = request.headers.get("Authorization", "").strip().split(" ")
    if auth[0].lower() == "basic" and len(auth) > 1:
        tried.append("basic")
    if auth[0].lower() == "bearer" and len(auth) > 1:
        tried.append("bearer")
    if request.query.get("access_token", "").strip():
        tried.append("access_token")
    ssl_object = request.transport.get_extra_info("ssl_object") if request.transport else None
    if ssl_object is not None and ssl_object.getpeercert(binary_form=True):
        tried.append("x509")
    if tried:
        return "Authentication failed, attempted: " + ", ".join(tried)
    return "Authentication failed, no credentials provided"


REF_ORDER = ("resource", "namespace", "name", "uid", "apiGroup", "apiVersion", "resourceVersion", "subresource")


def _ordered_ref(ref: dict) -> dict:
    return {k: ref[k] for k in REF_ORDER if k in ref}


def _json_body(response):
    """The JSON a plain (not streamed) response carried, or None."""
    body = getattr(response, "body", None)
    if not isinstance(body, (bytes, bytearray)) or not body or "json" not in (response.content_type or ""):
        return None
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


async def _request_json(request: web.BaseRequest):
    """The request body as an object (the handler has read it already: this
    decodes its copy), whatever form kubectl sent it in: JSON, YAML, protobuf
    or a patch."""
    if request.headers.get("Upgrade"):
        return None
    try:
        raw = await request.read()
    except Exception:  # the body could not be read (client gone): nothing to log
        return None
    if not raw:
        return None
    try:
        return codec.decode_object(raw, request.content_type)
    except errors.StatusError:
        pass
    try:
        return orjson.loads(raw)  # patches: merge-patch+json, json-patch+json, ...
    except orjson.JSONDecodeError:
        return None
