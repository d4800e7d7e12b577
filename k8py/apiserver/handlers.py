"""HTTP handlers for resource requests: the verbs of the Kubernetes API.

Each handler turns a request into ObjectStore calls and the result into the
form the client asked for (object, list, Table). Objects cross this layer in
the version the client used; `conversion` maps them to the storage version.
"""

from __future__ import annotations

import orjson
from aiohttp import web
from multidict import CIMultiDict

from k8py.api import conversion, fieldcheck
from k8py.api.registry import Resource
from k8py.apimachinery import errors
from k8py.apimachinery.selectors import parse_field_selector, parse_label_selector
from k8py.apiserver import codec, request_context, tables
from k8py.apiserver.objects import DeleteOptions, ListResult
from k8py.apiserver.requestinfo import RequestInfo
from k8py.apiserver.responses import json_response, yaml_response
from k8py.apiserver import managedfields, patching, subresources, virtual
from k8py.apiserver.watch import serve_watch

# Kinds whose DELETE answers with the deleted object rather than a Status.
RETURNS_DELETED_OBJECT = {("", "Pod"), ("", "Service"), ("", "Namespace")}


class Request:
    """Everything a handler needs about one API request."""

    def __init__(self, http: web.Request, info: RequestInfo, resource: Resource, user, api):
        self.http = http
        self.info = info
        self.resource = resource
        self.user = user
        self.api = api
        self.query = http.query
        self.accept = codec.negotiate(http.headers.get("Accept"))
        # Shared with code deeper in the request (admission adds warnings too).
        self.warnings: list[str] = request_context.begin().warnings

    @property
    def namespace(self) -> str:
        return self.info.namespace

    @property
    def dry_run(self) -> bool:
        values = self.query.getall("dryRun", [])
        for value in values:
            if value != "All":
                raise errors.bad_request(f'Invalid dryRun value: "{value}"; supported values: "All"')
        return bool(values)

    @property
    def field_manager(self) -> str:
        return managedfields.manager_name(self.query.get("fieldManager"), self.http.headers.get("User-Agent"))

    @property
    def objects(self):
        return self.api.objects(self.resource)

    async def body(self) -> bytes:
        try:
            raw = await self.http.read()
        except web.HTTPRequestEntityTooLarge:  # past aiohttp's own cap: still a Status
            raise errors.request_entity_too_large() from None
        if len(raw) > codec.MAX_BODY_BYTES:
            raise errors.request_entity_too_large()
        return raw

    def headers(self):
        if not self.warnings:
            return None
        headers = CIMultiDict()
        for value in fieldcheck.warning_headers(self.warnings):
            headers.add("Warning", value)
        return headers

    def respond(self, obj: dict, status: int = 200) -> web.StreamResponse:
        """An object in the client's version and requested form."""
        if self.accept.table:
            body = tables.table(self.resource.group, self.resource.kind, [obj],
                                include=self.query.get("includeObject", "Metadata"),
                                version=self.accept.table_version)
            return json_response(body, status, self.headers())
        if self.accept.partial_metadata:
            return json_response(tables.partial_metadata(obj, self.accept.table_version), status, self.headers())
        if self.accept.yaml:
            return yaml_response(obj, status, self.headers())
        return json_response(obj, status, self.headers())


def to_client(resource: Resource, obj: dict) -> dict:
    return conversion.from_storage(resource, obj)


def check_type_meta(resource: Resource, body: dict, *, expected_kind: str | None = None,
                    expected_api_version: str | None = None) -> None:
    kind = body.get("kind")
    api_version = body.get("apiVersion")
    expected_kind = expected_kind or resource.kind
    expected_api_version = expected_api_version or resource.api_version
    # Like upstream's decoder, a body without type meta takes the endpoint's
    # (the Python client sends objects built without kind and apiVersion).
    kind = kind or expected_kind
    body["kind"] = kind
    if api_version and api_version != expected_api_version:
        raise errors.bad_request(f"the API version in the data ({api_version}) does not match the expected "
                                 f"API version ({expected_api_version})")
    if kind != expected_kind:
        raise errors.bad_request(f'the kind in the data ({kind}) does not match the expected kind '
                                 f'({expected_kind})')
    body["apiVersion"] = expected_api_version


# ---- reads ------------------------------------------------------------------

def _computed_items(req: Request) -> list[dict] | None:
    read = virtual.READ.get((req.resource.group, req.resource.kind))
    return read(req.api) if read is not None else None


async def get(req: Request) -> web.StreamResponse:
    items = _computed_items(req)
    if items is not None:
        for item in items:
            if item["metadata"]["name"] == req.info.name:
                return req.respond(item)
        raise errors.not_found(req.resource.plural, req.info.name, req.resource.group)
    obj = req.objects.get(req.namespace, req.info.name)
    return req.respond(to_client(req.resource, obj))


def _selectors(req: Request):
    labels = parse_label_selector(req.query.get("labelSelector"))
    fields = parse_field_selector(req.query.get("fieldSelector"))
    return labels, fields


def _check_resource_version(value: str | None) -> None:
    if value and not value.isdigit():
        raise errors.bad_request(f'invalid resource version "{value}": strconv.ParseUint: parsing '
                                 f'"{value}": invalid syntax')


def _limit(req: Request) -> int:
    raw = req.query.get("limit")
    if not raw:
        return 0
    try:
        return max(int(raw), 0)
    except ValueError:
        raise errors.bad_request(f'invalid value for limit: "{raw}"') from None


async def list_objects(req: Request) -> web.StreamResponse:
    _check_resource_version(req.query.get("resourceVersion"))
    labels, fields = _selectors(req)
    items = _computed_items(req)
    if items is not None:
        return _list_response(req, ListResult(items, 0))
    result = req.objects.list(req.namespace, labels, fields, _limit(req), req.query.get("continue", ""))
    return _list_response(req, result)


def _list_meta(result: ListResult) -> dict:
    list_meta = {"resourceVersion": str(result.resource_version)}
    if result.continue_token:
        list_meta["continue"] = result.continue_token
        if result.remaining is not None:
            list_meta["remainingItemCount"] = result.remaining
    return list_meta


def _list_response(req: Request, result: ListResult, status: int = 200) -> web.StreamResponse:
    resource = req.resource
    list_meta = _list_meta(result)
    if req.accept.table:
        objects = [to_client(resource, c.obj) if hasattr(c, "obj") else c for c in result.items]
        body = tables.table(resource.group, resource.kind, objects,
                            include=req.query.get("includeObject", "Metadata"),
                            version=req.accept.table_version, list_meta=list_meta)
        return json_response(body, status, req.headers())
    if req.accept.partial_metadata:
        items = [tables.partial_metadata(c.obj if hasattr(c, "obj") else c, req.accept.table_version)
                 for c in result.items]
        body = {"kind": "PartialObjectMetadataList", "apiVersion": f"meta.k8s.io/{req.accept.table_version}",
                "metadata": list_meta, "items": items}
        return json_response(body, status, req.headers())
    head = {"kind": resource.list_kind, "apiVersion": resource.api_version, "metadata": list_meta}
    if req.accept.yaml or resource.stores_elsewhere or not all(hasattr(c, "json") for c in result.items):
        items = [to_client(resource, c.obj if hasattr(c, "obj") else c) for c in result.items]
        body = {**head, "items": items}
        return yaml_response(body, status) if req.accept.yaml else json_response(body, status, req.headers())
    # Fast path: splice each cached object's encoded bytes into the list.
    raw = orjson.dumps(head)[:-1] + b',"items":[' + b",".join(c.json for c in result.items) + b"]}"
    return json_response(raw, status, req.headers())


# ---- writes -----------------------------------------------------------------

async def _decode_for_write(req: Request, raw: bytes, options_kind: str) -> dict:
    body = codec.decode_object(raw, req.http.headers.get("Content-Type"))
    check_type_meta(req.resource, body)
    req.warnings += req.api.validate_fields(req.resource, body, req.query.get("fieldValidation"), options_kind,
                                            raw=raw)
    return body


def decode_as(req: Request, raw: bytes, group: str, version: str, kind: str,
              options_kind: str = "CreateOptions") -> dict:
    """A body that is not the endpoint's own kind (Binding, Eviction,
    TokenRequest, DeleteOptions), decoded and type-checked against that kind's
    schema the way upstream's typed decoder would: wrong types are a 400, never
    a crash further in."""
    body = codec.decode_object(raw, req.http.headers.get("Content-Type"))
    req.warnings += req.api.validate_fields(Resource(group, version, kind, ""), body,
                                            req.query.get("fieldValidation"), options_kind)
    return body


async def create(req: Request) -> web.StreamResponse:
    if req.info.name:
        raise errors.method_not_allowed("create", req.resource.plural)
    body = await _decode_for_write(req, await req.body(), "CreateOptions")
    computed = virtual.CREATE.get((req.resource.group, req.resource.kind))
    if computed is not None:
        if req.accept.table or req.accept.partial_metadata:
            req.accept = codec.negotiate_untransformed(req.http.headers.get("Accept"))
        return req.respond(await computed(req, body), 201)
    obj = conversion.to_storage(req.resource, body)
    created = await req.objects.create(obj, req.namespace, dry_run=req.dry_run, user=req.user,
                                       field_manager=req.field_manager)
    return req.respond(to_client(req.resource, created), 201)


async def update(req: Request) -> web.StreamResponse:
    body = await _decode_for_write(req, await req.body(), "UpdateOptions")
    obj = conversion.to_storage(req.resource, body)
    updated, created = await req.objects.update(req.namespace, req.info.name, obj,
                                                subresource=req.info.subresource,
                                                dry_run=req.dry_run, user=req.user,
                                                field_manager=req.field_manager)
    return req.respond(to_client(req.resource, updated), 201 if created else 200)


async def patch(req: Request) -> web.StreamResponse:
    result, created = await patching.patch(req, await req.body())
    return req.respond(to_client(req.resource, result), 201 if created else 200)


def _delete_body(raw: bytes) -> dict | None:
    if not raw.strip():
        return None
    body = codec.decode_json(raw, "DeleteOptions")
    if not isinstance(body, dict):
        raise errors.bad_request("DeleteOptions must be an object")
    check_delete_options(body)
    return body


def check_delete_options(body: dict | None) -> None:
    """Type errors in DeleteOptions are a 400 (upstream fails to decode them)."""
    from k8py.api.schema import schemas
    if not body:
        return
    _, type_errors = fieldcheck.check_fields(body, schemas().for_kind("", "v1", "DeleteOptions"), schemas())
    if type_errors:
        raise errors.bad_request(f"error decoding DeleteOptions: {type_errors[0]}")


async def delete(req: Request) -> web.StreamResponse:
    options = DeleteOptions.from_body(_delete_body(await req.body()), req.query)
    options.dry_run = options.dry_run or req.dry_run
    obj, deleted_now = await req.objects.delete(req.namespace, req.info.name, options, user=req.user)
    if deleted_now and (req.resource.group, req.resource.kind) not in RETURNS_DELETED_OBJECT:
        m = obj["metadata"]
        return json_response(errors.success_status(m["name"], req.resource.group, req.resource.plural,
                                                   m.get("uid", "")))
    return req.respond(to_client(req.resource, obj))


async def delete_collection(req: Request) -> web.StreamResponse:
    options = DeleteOptions.from_body(_delete_body(await req.body()), req.query)
    options.dry_run = options.dry_run or req.dry_run
    labels, fields = _selectors(req)
    result = await req.objects.delete_collection(req.namespace, labels, fields, options, user=req.user)
    return _list_response(req, result)


async def watch(req: Request) -> web.StreamResponse:
    _check_resource_version(req.query.get("resourceVersion"))
    labels, fields = _selectors(req)
    if req.info.name:  # the old /watch-style single-object path
        fields = parse_field_selector(f"metadata.name={req.info.name}" +
                                      ("," + req.query["fieldSelector"] if req.query.get("fieldSelector") else ""))
    return await serve_watch(req, labels, fields)


VERBS = {
    "get": get, "list": list_objects, "watch": watch, "create": create, "update": update,
    "patch": patch, "delete": delete, "deletecollection": delete_collection,
}


async def handle(req: Request) -> web.StreamResponse:
    info, resource = req.info, req.resource
    if resource.deprecation_warning:
        req.warnings.append(resource.deprecation_warning)
    if info.subresource:
        return await subresources.handle(req)
    if info.verb not in resource.verbs:
        raise errors.method_not_allowed(info.verb, resource.plural)
    if resource.namespaced and not info.namespace and info.verb not in ("list", "watch", "deletecollection"):
        raise errors.path_not_found()
    if resource.namespaced and not info.namespace and info.verb == "deletecollection":
        raise errors.path_not_found()
    return await VERBS[info.verb](req)
