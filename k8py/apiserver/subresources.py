"""Subresources: status, scale, binding, eviction, finalize, token.

Streams (log, exec, attach, portforward, proxy) are answered by the kubelet
and routed there once the node agent exists.
"""

from __future__ import annotations

import copy

from aiohttp import web

from k8py.apimachinery import errors, meta
from k8py.apimachinery.selectors import selector_string
from k8py.apiserver import codec, eviction, node_restriction, patching
from k8py.apiserver.decoding import decode_as
from k8py.apiserver.objects import DeleteOptions
from k8py.apiserver.responses import json_response
from k8py.apiserver.reviews import request_token

STREAMS = ("log", "exec", "attach", "portforward", "proxy")
# Read and written through the object's own get/update/patch (the strategy limits what changes).
WHOLE_OBJECT_VIEWS = ("status", "approval", "ephemeralcontainers")


async def handle(req, verbs) -> web.StreamResponse:
    """`verbs`: the resource's own handlers by verb, which serve the subresources that
    are a view of the whole object (handed in, so this module need not import them)."""
    info, resource = req.info, req.resource
    sub = info.subresource
    if not resource.has_subresource(sub) or not info.name:
        raise errors.path_not_found()
    if resource.namespaced and not info.namespace:
        raise errors.path_not_found()
    if sub in WHOLE_OBJECT_VIEWS and info.verb in ("get", "update", "patch"):
        return await verbs[info.verb](req)
    handler = _HANDLERS.get((sub, info.verb))
    if handler is None:
        if sub in STREAMS:
            return await streams(req)
        raise errors.method_not_allowed(info.verb, f"{resource.plural}/{sub}")
    return await handler(req)


# ---- scale ------------------------------------------------------------------

def field_at(obj: dict, path: str):
    """The value at a JSON path like `.spec.replicas`, or None."""
    value = obj
    for part in path.strip(".").split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def set_field_at(obj: dict, path: str, value) -> None:
    *parents, last = path.strip(".").split(".")
    for part in parents:
        obj = obj.setdefault(part, {})
    obj[last] = value


def _scale_of(resource, obj: dict) -> dict:
    m = obj["metadata"]
    scale = resource.scale
    if scale.label_selector_path is not None:   # custom resources keep the selector as a string
        selector = field_at(obj, scale.label_selector_path) if scale.label_selector_path else ""
    elif scale.selector_is_map:
        selector = ",".join(f"{k}={v}" for k, v in sorted(((obj.get("spec") or {}).get("selector") or {}).items()))
    else:
        selector = selector_string((obj.get("spec") or {}).get("selector"))
    scale_meta = {k: m[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp") if k in m}
    status = {"replicas": field_at(obj, scale.status_replicas_path) or 0}
    if selector:
        status["selector"] = selector
    return {"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": scale_meta,
            "spec": {"replicas": field_at(obj, scale.spec_replicas_path) or 0}, "status": status}


async def get_scale(req) -> web.StreamResponse:
    obj = req.objects.get(req.namespace, req.info.name)
    return json_response(_scale_of(req.resource, obj))


async def _write_scale(req, make_scale) -> web.StreamResponse:
    resource, info = req.resource, req.info

    def mutate(current: dict) -> dict:
        scale = make_scale(_scale_of(resource, current))
        if not isinstance(scale, dict):
            raise errors.bad_request("Scale must be an object")
        wanted_rv = (scale.get("metadata") or {}).get("resourceVersion")
        if wanted_rv and wanted_rv != current["metadata"]["resourceVersion"]:
            raise errors.conflict(resource.plural, info.name, errors.STALE_OBJECT, resource.group)
        replicas = (scale.get("spec") or {}).get("replicas", 0)
        if not isinstance(replicas, int) or isinstance(replicas, bool):
            raise errors.bad_request(f"Scale in version \"v1\" cannot be handled as a Scale: json: cannot "
                                     f"unmarshal {type(replicas).__name__} into Go struct field "
                                     f"ScaleSpec.spec.replicas of type int32")
        if replicas < 0:
            raise errors.invalid("Scale", info.name, [errors.Cause(
                "spec.replicas", f"Invalid value: {replicas}: must be greater than or equal to 0")],
                "autoscaling")
        set_field_at(current, resource.scale.spec_replicas_path, replicas)
        return current

    updated = await req.objects.guaranteed_update(info.namespace, info.name, mutate, subresource="scale",
                                                  dry_run=req.dry_run, user=req.user,
                                                  field_manager=req.field_manager)
    return json_response(_scale_of(resource, updated))


async def update_scale(req) -> web.StreamResponse:
    body = codec.decode_object(await req.body(), req.http.headers.get("Content-Type"))
    return await _write_scale(req, lambda current: body)


async def patch_scale(req) -> web.StreamResponse:
    raw = await req.body()
    patch_type = codec.media_type(req.http.headers.get("Content-Type"))
    if patch_type not in (codec.JSON_PATCH, codec.MERGE_PATCH, codec.STRATEGIC_PATCH):
        raise errors.unsupported_media_type(patch_type)
    from k8py.api.schema import schemas
    scale_schema = schemas().for_kind("autoscaling", "v1", "Scale")
    return await _write_scale(req, lambda current: patching._apply(patch_type, current, raw, scale_schema))


# ---- pods: binding and eviction --------------------------------------------

async def bind(req) -> web.StreamResponse:
    body = decode_as(req, await req.body(), "", "v1", "Binding")
    target = body.get("target") or {}
    node = target.get("name")
    name = req.info.name
    if not node:
        raise errors.invalid("Binding", name, [errors.Cause("target.name", "Required value",
                                                            "FieldValueRequired")])

    def assign(pod: dict) -> dict:
        spec = pod.setdefault("spec", {})
        if pod["metadata"].get("deletionTimestamp"):
            raise errors.conflict("pods", name, "pod is being deleted, cannot be assigned to a host")
        if spec.get("nodeName"):
            raise errors.conflict("pods", name, f'pod {name} is already assigned to node "{spec["nodeName"]}"')
        spec["nodeName"] = node
        status = pod.setdefault("status", {})
        conditions = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
        conditions.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                           "lastTransitionTime": meta.rfc3339()})
        status["conditions"] = conditions
        return pod

    await req.objects.guaranteed_update(req.namespace, name, assign, subresource="binding",
                                        dry_run=req.dry_run, user=req.user)
    return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                          "code": 201}, 201)


async def evict(req) -> web.StreamResponse:
    body = decode_as(req, await req.body(), "policy", "v1", "Eviction")
    options = DeleteOptions.from_body(body.get("deleteOptions"), req.query)
    options.dry_run = options.dry_run or req.dry_run
    pod = req.objects.get(req.namespace, req.info.name)
    node_restriction.admit_eviction(req.api, pod, req.user)
    await req.api.check_disruption_allowed(pod, options.dry_run)
    if not options.dry_run:
        await eviction.mark_disruption_target(req.objects, req.namespace, req.info.name, req.user)
    await req.objects.delete(req.namespace, req.info.name, options, user=req.user)
    return json_response({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                          "code": 201}, 201)


# ---- namespaces: finalize ---------------------------------------------------

async def finalize(req) -> web.StreamResponse:
    body = codec.decode_object(await req.body(), req.http.headers.get("Content-Type"))
    wanted = (body.get("spec") or {}).get("finalizers") or []

    def set_finalizers(ns: dict) -> dict:
        ns = copy.deepcopy(ns)
        ns.setdefault("spec", {})["finalizers"] = list(wanted)
        if not wanted:
            ns["spec"].pop("finalizers")
        return ns

    updated = await req.objects.guaranteed_update("", req.info.name, set_finalizers, subresource="finalize",
                                                  dry_run=req.dry_run, user=req.user)
    return req.respond(updated)


# ---- streams ----------------------------------------------------------------

async def streams(req) -> web.StreamResponse:
    from k8py.apiserver import streams as stream_proxy
    kind, sub = req.resource.kind, req.info.subresource
    if sub == "proxy":
        # [scheme:]name[:port] -> straight to the pod, to one of the service's endpoints,
        # or to the node (its kubelet unless another port is named)
        scheme, name, port = stream_proxy.split_proxy_name(req.info.name, kind.lower())
        obj = req.objects.get(req.namespace, name)
        if kind == "Node":
            return await stream_proxy.proxy_to_node_port(req, obj, scheme, port)
        return await stream_proxy.proxy_to_workload(req, obj, scheme, port)
    pod = req.objects.get(req.namespace, req.info.name)
    node = (pod.get("spec") or {}).get("nodeName")
    if kind == "Pod" and not node:
        raise errors.bad_request(f'pod {req.info.name} does not have a host assigned')
    return await req.api.proxy_to_node(req, pod)


_HANDLERS = {
    ("scale", "get"): get_scale, ("scale", "update"): update_scale, ("scale", "patch"): patch_scale,
    ("token", "create"): request_token,
    ("binding", "create"): bind, ("eviction", "create"): evict, ("finalize", "update"): finalize,
}
