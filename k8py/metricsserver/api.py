"""metrics.k8s.io/v1beta1 as metrics-server serves it: NodeMetrics and PodMetrics,
get and list, label and field selectors, Table output for `kubectl get`.

Only the aggregator talks to this server: it must present the front-proxy
client certificate (CN system:auth-proxy), and the API server has already
authorized the caller named in X-Remote-User before proxying.
"""

from __future__ import annotations

import datetime
import time
from fractions import Fraction

import orjson
from aiohttp import web

from k8py.apimachinery import errors, meta
from k8py.apimachinery.quantity import BINARY_SI, DECIMAL_SI, Quantity, canonical, parse
from k8py.apimachinery.selectors import parse_field_selector, parse_label_selector
from k8py.metricsserver.storage import Storage, Usage

GROUP, VERSION = "metrics.k8s.io", "v1beta1"
GROUP_VERSION = f"{GROUP}/{VERSION}"
PREFIX = f"/apis/{GROUP}/{VERSION}"
FRONT_PROXY_USER = "system:auth-proxy"

RESOURCES = {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": GROUP_VERSION, "resources": [
    {"name": "nodes", "singularName": "", "namespaced": False, "kind": "NodeMetrics", "verbs": ["get", "list"]},
    {"name": "pods", "singularName": "", "namespaced": True, "kind": "PodMetrics", "verbs": ["get", "list"]}]}


def cpu(nanocores: int) -> str:
    return canonical(Quantity(Fraction(nanocores, 10 ** 9), DECIMAL_SI))


def memory(size: int) -> str:
    return canonical(Quantity(Fraction(size), BINARY_SI))


def go_duration(seconds: float) -> str:
    """A duration as Go's time.Duration prints it (metav1.Duration in JSON), to the millisecond."""
    ms = round(seconds * 1000)
    if ms == 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs = f"{rest / 1000:.3f}".rstrip("0").rstrip(".")
    text = f"{secs}s"
    if hours or minutes:
        text = f"{minutes}m" + text
    if hours:
        text = f"{hours}h" + text
    return text


def _time(seconds: float) -> str:
    return meta.rfc3339(datetime.datetime.fromtimestamp(int(seconds), datetime.timezone.utc))


def _usage(u: Usage) -> dict:
    return {"cpu": cpu(u.nanocores), "memory": memory(u.memory_bytes)}


def _metadata(obj: dict, now: str) -> dict:
    meta = obj.get("metadata") or {}
    out = {"name": meta.get("name", "")}
    if meta.get("namespace"):
        out["namespace"] = meta["namespace"]
    out["creationTimestamp"] = now
    if meta.get("labels"):
        out["labels"] = dict(meta["labels"])
    return out


class MetricsAPI:
    """`nodes` and `pods` are informers: the objects as the API has them (get by key, list)."""

    def __init__(self, storage: Storage, nodes, pods):
        self.storage, self.nodes, self.pods = storage, nodes, pods

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard])
        r = app.router
        for path in ("/healthz", "/livez", "/readyz"):
            r.add_get(path, _ok)
        r.add_get(PREFIX, _discovery)
        r.add_get(PREFIX + "/nodes", self.list_nodes)
        r.add_get(PREFIX + "/nodes/{name}", self.get_node)
        r.add_get(PREFIX + "/pods", self.list_pods)
        r.add_get(PREFIX + "/namespaces/{namespace}/pods", self.list_pods)
        r.add_get(PREFIX + "/namespaces/{namespace}/pods/{name}", self.get_pod)
        return app

    @web.middleware
    async def _guard(self, request: web.Request, handler):
        try:
            if not request.path.endswith(("/healthz", "/livez", "/readyz")) and not _from_front_proxy(request):
                raise errors.StatusError(401, "Unauthorized", "Unauthorized")
            if request.query.get("watch") in ("1", "true"):
                raise errors.method_not_allowed("watch")
            return await handler(request)
        except errors.StatusError as e:
            return _json(e.to_status(), e.code)

    # ---- NodeMetrics ------------------------------------------------------

    def node_metrics(self, node: dict, now: str) -> dict | None:
        u = self.storage.node_usage(node["metadata"]["name"])
        if u is None:
            return None
        return {"metadata": _metadata(node, now), "timestamp": _time(u.timestamp), "window": go_duration(u.window),
                "usage": _usage(u)}

    async def list_nodes(self, request: web.Request) -> web.Response:
        labels, fields = _selectors(request)
        now = _time(_now())
        items = []
        for node in sorted(self.nodes.list(), key=lambda n: n["metadata"]["name"]):
            meta = node["metadata"]
            if labels.matches(meta.get("labels") or {}) and fields.matches({"metadata.name": meta["name"]}):
                found = self.node_metrics(node, now)
                if found is not None:
                    items.append(found)
        return self._list(request, "NodeMetrics", items, namespaced=False)

    async def get_node(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        node = self.nodes.get(name)
        found = self.node_metrics(node, _time(_now())) if node is not None else None
        if found is None:
            raise errors.not_found("nodemetrics", name, GROUP)
        return self._one(request, "NodeMetrics", found)

    # ---- PodMetrics ---------------------------------------------------------

    def pod_metrics(self, pod: dict, now: str) -> dict | None:
        meta = pod["metadata"]
        containers = self.storage.pod_usage(meta.get("namespace", ""), meta["name"])
        if containers is None:
            return None
        newest = max(containers, key=lambda c: c[1].timestamp)[1]
        return {"metadata": _metadata(pod, now), "timestamp": _time(newest.timestamp),
                "window": go_duration(newest.window),
                "containers": [{"name": name, "usage": _usage(u)} for name, u in containers]}

    async def list_pods(self, request: web.Request) -> web.Response:
        namespace = request.match_info.get("namespace")
        labels, fields = _selectors(request)
        now = _time(_now())
        items = []
        pods = self.pods.list() if namespace is None else self.pods.by_index("namespace", namespace)
        for pod in sorted(pods, key=lambda p: (p["metadata"].get("namespace", ""), p["metadata"]["name"])):
            meta = pod["metadata"]
            if labels.matches(meta.get("labels") or {}) and fields.matches(
                    {"metadata.name": meta["name"], "metadata.namespace": meta.get("namespace", "")}):
                found = self.pod_metrics(pod, now)
                if found is not None:
                    items.append(found)
        return self._list(request, "PodMetrics", items, namespaced=True)

    async def get_pod(self, request: web.Request) -> web.Response:
        namespace, name = request.match_info["namespace"], request.match_info["name"]
        pod = self.pods.get(f"{namespace}/{name}")
        found = self.pod_metrics(pod, _time(_now())) if pod is not None else None
        if found is None:
            raise errors.not_found("podmetrics", f"{namespace}/{name}", GROUP)
        return self._one(request, "PodMetrics", found)

    # ---- output ---------------------------------------------------------------

    def _one(self, request: web.Request, kind: str, item: dict) -> web.Response:
        if _wants_table(request):
            return _json(_table(kind, [item]))
        return _json({"kind": kind, "apiVersion": GROUP_VERSION, **item})

    def _list(self, request: web.Request, kind: str, items: list[dict], namespaced: bool) -> web.Response:
        if _wants_table(request):
            return _json(_table(kind, items))
        return _json({"kind": f"{kind}List", "apiVersion": GROUP_VERSION, "metadata": {}, "items": items})


def _table(kind: str, items: list[dict]) -> dict:
    """`kubectl get nodes.metrics.k8s.io` / `podmetrics`: metrics-server's columns."""
    columns = [{"name": "Name", "type": "string", "format": "name",
                "description": "Name must be unique within a namespace."},
               {"name": "CPU", "type": "string", "format": "", "description": "CPU usage"},
               {"name": "Memory", "type": "string", "format": "", "description": "Memory usage"},
               {"name": "Window", "type": "string", "format": "", "description": "Metrics window"}]
    rows = []
    for item in items:
        if kind == "PodMetrics":
            total_cpu = sum(_nanocores(c["usage"]["cpu"]) for c in item["containers"])
            total_mem = sum(_bytes(c["usage"]["memory"]) for c in item["containers"])
            usage = {"cpu": cpu(total_cpu), "memory": memory(total_mem)}
        else:
            usage = item["usage"]
        rows.append({"cells": [item["metadata"]["name"], usage["cpu"], usage["memory"], item["window"]],
                     "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                "metadata": item["metadata"]}})
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {}, "columnDefinitions": columns,
            "rows": rows}


async def _ok(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def _discovery(request: web.Request) -> web.Response:
    return _json(RESOURCES)


def _nanocores(text: str) -> int:
    return int(parse(text).value * 10 ** 9)


def _bytes(text: str) -> int:
    return int(parse(text).value)


def _wants_table(request: web.Request) -> bool:
    return "as=Table" in request.headers.get("Accept", "")


def _selectors(request: web.Request):
    return (parse_label_selector(request.query.get("labelSelector")),
            parse_field_selector(request.query.get("fieldSelector")))


def _from_front_proxy(request: web.Request) -> bool:
    peer = request.transport.get_extra_info("peercert") if request.transport else None
    subject = dict(pair[0] for pair in (peer or {}).get("subject", ()))
    return subject.get("commonName") == FRONT_PROXY_USER and bool(request.headers.get("X-Remote-User"))


def _now() -> float:
    return time.time()


def _json(body: dict, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")
