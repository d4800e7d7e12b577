"""The OpenAPI documents the API server publishes: /openapi/v3 and /openapi/v2.

kubectl depends on them more than it seems. `create -f`/`apply -f` look up
the PATCH operation of a kind in the v3 document of its group-version and only
send `?fieldValidation=Strict` when that operation declares the parameter;
client-side apply computes its strategic merge patch from the served schemas
when the PATCH operation accepts `application/strategic-merge-patch+json`;
`kubectl explain` finds a kind through the `x-kubernetes-group-version-kind` of
an operation on the resource's path and then walks `components.schemas`.

The documents are shaped like upstream's (kube-openapi builder3 plus the
apiserver's route installer): one v3 document per group-version holding that
version's paths and every definition they reach, `$ref` wrapped in a
one-element `allOf` whenever it has siblings, IntOrString and Quantity as
`oneOf` alternatives in v3 and plain strings in v2, and a content hash
(SHA-512, upper-case hex) as each document's `?hash=` and ETag.

Building is lazy (nothing happens at server start) and memoised as bytes, so
every later request is a dictionary lookup.
"""

from __future__ import annotations

import hashlib
import threading
from urllib.parse import quote

import orjson

from k8py.api.openapi_protobuf import encode_document

from k8py.api.registry import Registry, Resource
from k8py.api.schema import INT_OR_STRING, QUANTITY, REF_PREFIX, Schemas

GIT_VERSION = "v1.32.0"

V3_REF = "#/components/schemas/"
V2_REF = "#/definitions/"

META = "io.k8s.apimachinery.pkg.apis.meta.v1."
STATUS = META + "Status"
DELETE_OPTIONS = META + "DeleteOptions"
WATCH_EVENT = META + "WatchEvent"
PATCH = META + "Patch"
API_RESOURCE_LIST = META + "APIResourceList"
API_GROUP = META + "APIGroup"
API_GROUP_LIST = META + "APIGroupList"
API_VERSIONS = META + "APIVersions"
VERSION_INFO = "io.k8s.apimachinery.pkg.version.Info"

MEDIA = ["application/json", "application/yaml", "application/vnd.kubernetes.protobuf"]
STREAM_MEDIA = ["application/json;stream=watch", "application/vnd.kubernetes.protobuf;stream=watch"]
PATCH_MEDIA = [
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
]
# Custom resources cannot take strategic merge patches (no patch metadata).
CUSTOM_PATCH_MEDIA = ["application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml"]

# Kinds whose DELETE answers with the deleted object instead of a Status.
DELETE_RETURNS_OBJECT = {("", "Pod"), ("", "Service")}

STRING_SCHEMA = {"type": "string"}


# ---- parameters -----------------------------------------------------------

def _param(name: str, where: str, typ: str, description: str, required: bool = False) -> dict:
    out = {"name": name, "in": where, "description": description, "typ": typ}
    if required:
        out["required"] = True
    return out


def _query(name: str, typ: str, description: str) -> dict:
    return _param(name, "query", typ, description)


PRETTY = _query("pretty", "string", "If 'true', the output is pretty printed.")
DRY_RUN = _query("dryRun", "string",
                 "When present, the request is processed without persisting anything. "
                 "The only valid value is All.")
FIELD_MANAGER = _query("fieldManager", "string",
                       "The name of the actor making these changes, recorded in managedFields.")
FIELD_VALIDATION = _query("fieldValidation", "string",
                          "How the server treats unknown and duplicate fields in the body: "
                          "Ignore (drop them), Warn (drop them and return a warning for each) "
                          "or Strict (reject the request with BadRequest).")
FORCE = _query("force", "boolean",
               "Force an apply request through, taking over fields owned by other managers. "
               "Must be unset for any other patch type.")
LIST_PARAMS = [
    _query("allowWatchBookmarks", "boolean", "Ask for BOOKMARK events on a watch."),
    _query("continue", "string", "The continue token of the previous page of a chunked list."),
    _query("fieldSelector", "string", "Select objects by field values. Defaults to everything."),
    _query("labelSelector", "string", "Select objects by label. Defaults to everything."),
    _query("limit", "integer", "The maximum number of objects in one page of a list."),
    _query("resourceVersion", "string", "Which version of the collection the request is served from."),
    _query("resourceVersionMatch", "string", "How resourceVersion applies to a list: Exact or NotOlderThan."),
    _query("sendInitialEvents", "boolean", "Start a watch with synthetic ADDED events for existing objects."),
    _query("timeoutSeconds", "integer", "How long a list or watch call may last."),
    _query("watch", "boolean", "Watch for changes instead of listing."),
]
DELETE_PARAMS = [
    DRY_RUN,
    _query("gracePeriodSeconds", "integer", "Seconds to wait before deleting; zero deletes immediately."),
    _query("ignoreStoreReadErrorWithClusterBreakingPotential", "boolean",
           "Delete objects that cannot be read from storage (unsafe)."),
    _query("orphanDependents", "boolean", "Deprecated: use propagationPolicy."),
    _query("propagationPolicy", "string", "Garbage collection of dependents: Orphan, Background or Foreground."),
]
WRITE_PARAMS = [DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION]
PATCH_PARAMS = [DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION, FORCE]
LOG_PARAMS = [
    _query("container", "string", "The container to stream logs of. Defaults to the only container."),
    _query("follow", "boolean", "Follow the log stream."),
    _query("insecureSkipTLSVerifyBackend", "boolean", "Skip verifying the kubelet's serving certificate."),
    _query("limitBytes", "integer", "Stop after this many bytes."),
    _query("previous", "boolean", "Logs of the previous, terminated instance of the container."),
    _query("sinceSeconds", "integer", "Only logs newer than this many seconds."),
    _query("stream", "string", "Which stream to return: All, Stdout or Stderr."),
    _query("tailLines", "integer", "Only this many lines from the end of the log."),
    _query("timestamps", "boolean", "Prefix every line with an RFC3339 timestamp."),
]
_STREAM_FLAGS = [
    _query("container", "string", "The container to connect to. Defaults to the only container."),
    _query("stderr", "boolean", "Redirect the standard error stream."),
    _query("stdin", "boolean", "Redirect the standard input stream."),
    _query("stdout", "boolean", "Redirect the standard output stream."),
    _query("tty", "boolean", "Allocate a terminal."),
]
CONNECT_PARAMS = {
    "exec": [_query("command", "string", "The command to run, one argument per parameter.")] + _STREAM_FLAGS,
    "attach": _STREAM_FLAGS,
    "portforward": [_query("ports", "integer", "The ports to forward.")],
    "proxy": [_query("path", "string", "The path to proxy to.")],
}
CONNECT_METHODS = {
    "exec": ("GET", "POST"),
    "attach": ("GET", "POST"),
    "portforward": ("GET", "POST"),
    "proxy": ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"),
}


# ---- subresources -----------------------------------------------------------

# subresource -> (group, version, kind) of its object (None: the parent's kind)
# and the actions it supports.
_PARENT = None
SUBRESOURCES: dict[str, tuple[tuple[str, str, str] | None, tuple[str, ...]]] = {
    "status": (_PARENT, ("GET", "PUT", "PATCH")),
    "scale": (("autoscaling", "v1", "Scale"), ("GET", "PUT", "PATCH")),
    "ephemeralcontainers": (_PARENT, ("GET", "PUT", "PATCH")),
    "resize": (_PARENT, ("GET", "PUT", "PATCH")),
    "finalize": (_PARENT, ("PUT",)),
    "binding": (("", "v1", "Binding"), ("POST",)),
    "eviction": (("policy", "v1", "Eviction"), ("POST",)),
    "token": (("authentication.k8s.io", "v1", "TokenRequest"), ("POST",)),
    "log": (_PARENT, ("GET",)),
    "exec": (("", "v1", "PodExecOptions"), ("CONNECT",)),
    "attach": (("", "v1", "PodAttachOptions"), ("CONNECT",)),
    "portforward": (("", "v1", "PodPortForwardOptions"), ("CONNECT",)),
    "proxy": (("", "v1", "{kind}ProxyOptions"), ("CONNECT",)),
}

# kube verb -> route actions on the collection / the item
_COLLECTION_ACTIONS = (("list", "LIST"), ("create", "POST"), ("deletecollection", "DELETECOLLECTION"))
_ITEM_ACTIONS = (("get", "GET"), ("update", "PUT"), ("patch", "PATCH"), ("delete", "DELETE"))


# ---- operation ids (upstream's GetOperationIDAndTags) ------------------------

_ID_VERBS = sorted(("get", "log", "read", "replace", "patch", "delete", "deletecollection", "watch",
                    "connect", "proxy", "list", "create"), key=len)


def _camel(text: str, capitalize_first: bool) -> str:
    """Letters, '_' and non-leading digits survive; any other character
    capitalises the next letter."""
    out = []
    capitalize = capitalize_first
    for i, ch in enumerate(text):
        if ch.isalpha() or ch == "_" or (i and ch.isdigit()):
            out.append(ch.upper() if capitalize else ch)
            capitalize = False
        else:
            capitalize = True
    return "".join(out)


def _title(word: str) -> str:
    return word[:1].upper() + word[1:]


def operation_id(name: str, group: str, version: str) -> tuple[str, str]:
    """('deletecollectionNamespacedPod', '', 'v1') -> ('deleteCoreV1CollectionNamespacedPod', 'core_v1')."""
    prefix = next((v for v in _ID_VERBS if name.startswith(v)), "")
    rest = name[len(prefix):]
    trimmed = (group or "core").removesuffix(".k8s.io")  # /api is treated as /apis/core
    op_id = prefix + _camel(trimmed, bool(prefix)) + _camel(version, bool(prefix)) + _camel(rest, bool(prefix))
    return op_id, _camel(trimmed, False) + "_" + _camel(version, False)


def _article(kind: str) -> str:
    return " an " if kind[:1].lower() in "aeiou" else " a "


# ---- schema conversion (JSON Schema $defs -> OpenAPI) ------------------------

def _convert(node, ref_prefix: str, v3: bool, top_level_gvk: bool = False):
    if isinstance(node, list):
        return [_convert(x, ref_prefix, v3) for x in node]
    if not isinstance(node, dict):
        return node
    out = {}
    ref = None
    for key, value in node.items():
        if key == "$ref":
            ref = ref_prefix + value[len(REF_PREFIX):] if value.startswith(REF_PREFIX) else value
        elif key == "type":
            if isinstance(value, list):
                types = [t for t in value if t != "null"]
                if len(types) == 1:
                    out["type"] = types[0]
                elif types:
                    out["type"] = types
            else:
                out["type"] = value
        elif key == "properties":
            props = {}
            for name, sub in value.items():
                converted = _convert(sub, ref_prefix, v3)
                if top_level_gvk and name in ("apiVersion", "kind"):
                    # The JSON Schema export pins these with an enum; upstream does not.
                    converted.pop("enum", None)
                props[name] = converted
            out["properties"] = props
        elif key in ("items", "additionalProperties", "not"):
            out[key] = _convert(value, ref_prefix, v3)
        elif key in ("allOf", "oneOf", "anyOf"):
            out[key] = [_convert(x, ref_prefix, v3) for x in value]
        else:
            out[key] = value
    if ref is not None:
        if not out:
            return {"$ref": ref}
        if v3:
            # builder3's WrapRefs: a $ref with siblings becomes allOf: [{$ref}].
            out["allOf"] = [{"$ref": ref}]
        else:
            out["$ref"] = ref
    return out


def convert_definition(name: str, node: dict, v3: bool) -> dict:
    """One `$defs` entry in OpenAPI v3 (components.schemas) or v2 (definitions) form."""
    if name == INT_OR_STRING:
        base = {"format": "int-or-string"}
        if v3:
            base["oneOf"] = [{"type": "integer"}, {"type": "string"}]
        else:
            base["type"] = "string"
        return _with_description(node, base)
    if name == QUANTITY:
        base = {"oneOf": [{"type": "string"}, {"type": "number"}]} if v3 else {"type": "string"}
        return _with_description(node, base)
    return _convert(node, V3_REF if v3 else V2_REF, v3, "x-kubernetes-group-version-kind" in node)


def _with_description(node: dict, base: dict) -> dict:
    if node.get("description"):
        return {"description": node["description"], **base}
    return base


def _direct_refs(node, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(REF_PREFIX):
            found.add(ref[len(REF_PREFIX):])
        for value in node.values():
            if isinstance(value, (dict, list)):
                _direct_refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _direct_refs(value, found)


# ---- operations ------------------------------------------------------------

class _Op:
    """One route, in a form both renderers (v3 and v2) read."""

    __slots__ = ("method", "action", "gvk", "op_id", "tag", "description", "params", "body",
                 "body_required", "consumes", "responses", "produces")

    def __init__(self, method, action, gvk, op_id, tag, description, params, body=None,
                 body_required=True, consumes=("*/*",), responses=(), produces=MEDIA):
        self.method = method
        self.action = action
        self.gvk = gvk
        self.op_id = op_id
        self.tag = tag
        self.description = description
        self.params = params
        self.body = body  # definition name or None
        self.body_required = body_required
        self.consumes = list(consumes)
        self.responses = list(responses)  # (code, description, schema: name | dict | None)
        self.produces = list(produces)


def _gvk(group: str, version: str, kind: str) -> dict:
    return {"group": group, "kind": kind, "version": version}


class _GroupVersionBuilder:
    """Routes of one group-version, as upstream's APIInstaller lays them out."""

    def __init__(self, schemas: Schemas, group: str, version: str, resources: list[Resource]):
        self.schemas = schemas
        self.group = group
        self.version = version
        self.resources = sorted(resources, key=lambda r: r.plural)
        self.prefix = f"/apis/{group}/{version}" if group else f"/api/{version}"
        self.paths: dict[str, list[_Op]] = {}
        self.path_params: dict[str, list[dict]] = {}

    def build(self) -> dict[str, tuple[list[dict], list[_Op]]]:
        op_id, tag = operation_id("getAPIResources", self.group, self.version)
        self._add(self.prefix + "/", [], _Op("GET", None, None, op_id, tag, "get available resources", [],
                                              responses=[("200", "OK", API_RESOURCE_LIST)]))
        for resource in self.resources:
            if "/" in resource.plural:
                continue
            self._resource(resource)
        return {path: (self.path_params[path], ops) for path, ops in self.paths.items()}

    def _add(self, path: str, path_params: list[dict], op: _Op) -> None:
        self.paths.setdefault(path, []).append(op)
        self.path_params.setdefault(path, path_params)

    def _id(self, name: str) -> tuple[str, str]:
        return operation_id(name, self.group, self.version)

    def _resource(self, r: Resource) -> None:
        kind = r.kind
        own_gvk = _gvk(r.group, r.version, kind)
        definition = self.schemas.name_for(r.group, r.version, kind)
        list_definition = self.schemas.name_for(r.group, r.version, r.list_kind)
        scope = "Namespaced" if r.namespaced else ""
        ns_param = _param("namespace", "path", "string", "object name and auth scope, such as for teams and projects",
                          required=True)
        name_param = _param("name", "path", "string", f"name of the {kind}", required=True)
        base = f"{self.prefix}/namespaces/{{namespace}}/{r.plural}" if r.namespaced else f"{self.prefix}/{r.plural}"
        watch_base = (f"{self.prefix}/watch/namespaces/{{namespace}}/{r.plural}" if r.namespaced
                      else f"{self.prefix}/watch/{r.plural}")
        collection_params = [ns_param] if r.namespaced else []
        item_params = collection_params + [name_param]
        verbs = set(r.verbs)
        obj = definition

        def obj_responses(*codes):
            return [(code, text, obj) for code, text in codes]

        if "list" in verbs:
            list_params = LIST_PARAMS
            op_id, tag = self._id("list" + scope + kind)
            desc = ("list or watch objects of kind " if "watch" in verbs else "list objects of kind ") + kind
            self._add(base, collection_params, _Op(
                "GET", "list", own_gvk, op_id, tag, desc, [PRETTY] + list_params,
                responses=[("200", "OK", list_definition)], produces=MEDIA + STREAM_MEDIA))
        if "create" in verbs:
            op_id, tag = self._id("create" + scope + kind)
            self._add(base, collection_params, _Op(
                "POST", "post", own_gvk, op_id, tag, "create" + _article(kind) + kind,
                [PRETTY] + WRITE_PARAMS, body=obj,
                responses=obj_responses(("200", "OK"), ("201", "Created"), ("202", "Accepted"))))
        if "deletecollection" in verbs:
            op_id, tag = self._id("deletecollection" + scope + kind)
            params = [PRETTY] + DELETE_PARAMS + [p for p in LIST_PARAMS
                                                  if p["name"] not in ("watch", "allowWatchBookmarks")]
            self._add(base, collection_params, _Op(
                "DELETE", "deletecollection", own_gvk, op_id, tag, "delete collection of " + kind, params,
                body=DELETE_OPTIONS, body_required=False, responses=[("200", "OK", STATUS)]))
        if "watch" in verbs:
            op_id, tag = self._id("watch" + scope + kind + "List")
            self._add(watch_base, collection_params, _Op(
                "GET", "watchlist", own_gvk, op_id, tag,
                f"watch individual changes to a list of {kind}. deprecated: use the 'watch' parameter "
                "with a list operation instead.", [PRETTY] + LIST_PARAMS,
                responses=[("200", "OK", WATCH_EVENT)], produces=MEDIA + STREAM_MEDIA))
        if "get" in verbs:
            op_id, tag = self._id("read" + scope + kind)
            self._add(f"{base}/{{name}}", item_params, _Op(
                "GET", "get", own_gvk, op_id, tag, "read the specified " + kind, [PRETTY],
                responses=obj_responses(("200", "OK"))))
        if "update" in verbs:
            op_id, tag = self._id("replace" + scope + kind)
            self._add(f"{base}/{{name}}", item_params, _Op(
                "PUT", "put", own_gvk, op_id, tag, "replace the specified " + kind,
                [PRETTY] + WRITE_PARAMS, body=obj, responses=obj_responses(("200", "OK"), ("201", "Created"))))
        if "patch" in verbs:
            op_id, tag = self._id("patch" + scope + kind)
            self._add(f"{base}/{{name}}", item_params, _Op(
                "PATCH", "patch", own_gvk, op_id, tag, "partially update the specified " + kind,
                [PRETTY] + PATCH_PARAMS, body=PATCH, consumes=self._patch_media(obj),
                responses=obj_responses(("200", "OK"), ("201", "Created"))))
        if "delete" in verbs:
            op_id, tag = self._id("delete" + scope + kind)
            returned = obj if (r.group, kind) in DELETE_RETURNS_OBJECT else STATUS
            self._add(f"{base}/{{name}}", item_params, _Op(
                "DELETE", "delete", own_gvk, op_id, tag, "delete" + _article(kind) + kind,
                [PRETTY] + DELETE_PARAMS, body=DELETE_OPTIONS, body_required=False,
                responses=[("200", "OK", returned), ("202", "Accepted", returned)]))
        if "watch" in verbs:
            op_id, tag = self._id("watch" + scope + kind)
            self._add(f"{watch_base}/{{name}}", item_params, _Op(
                "GET", "watch", own_gvk, op_id, tag,
                f"watch changes to an object of kind {kind}. deprecated: use the 'watch' parameter "
                "with a list operation instead, filtered to a single item with the 'fieldSelector' parameter.",
                [PRETTY] + LIST_PARAMS, responses=[("200", "OK", WATCH_EVENT)], produces=MEDIA + STREAM_MEDIA))
        if r.namespaced and "list" in verbs:
            op_id, tag = self._id("list" + kind + "ForAllNamespaces")
            self._add(f"{self.prefix}/{r.plural}", [], _Op(
                "GET", "list", own_gvk, op_id, tag,
                ("list or watch objects of kind " if "watch" in verbs else "list objects of kind ") + kind,
                [PRETTY] + LIST_PARAMS, responses=[("200", "OK", list_definition)],
                produces=MEDIA + STREAM_MEDIA))
        if r.namespaced and "watch" in verbs:
            op_id, tag = self._id("watch" + kind + "ListForAllNamespaces")
            self._add(f"{self.prefix}/watch/{r.plural}", [], _Op(
                "GET", "watchlist", own_gvk, op_id, tag,
                f"watch individual changes to a list of {kind}. deprecated: use the 'watch' parameter "
                "with a list operation instead.", [PRETTY] + LIST_PARAMS,
                responses=[("200", "OK", WATCH_EVENT)], produces=MEDIA + STREAM_MEDIA))

        for sub in r.subresources:
            self._subresource(r, sub, base, item_params, scope)

    def _patch_media(self, definition: str | None) -> list[str]:
        return PATCH_MEDIA if definition else CUSTOM_PATCH_MEDIA

    def _subresource_kind(self, r: Resource, sub: str):
        for name, group, version, kind in r.subresource_kinds:
            if name == sub:
                return (group, version, kind), SUBRESOURCES.get(sub, (None, ("GET",)))[1]
        target, actions = SUBRESOURCES.get(sub, (_PARENT, ("GET",)))
        if target is None:
            return (r.group, r.version, r.kind), actions
        group, version, kind = target
        return (group, version, kind.format(kind=r.kind)), actions

    def _subresource(self, r: Resource, sub: str, base: str, item_params: list[dict], scope: str) -> None:
        (group, version, kind), actions = self._subresource_kind(r, sub)
        gvk = _gvk(group, version, kind)
        definition = self.schemas.name_for(group, version, kind)
        path = f"{base}/{{name}}/{sub}"
        title = _title(sub)
        parent = r.kind
        if sub == "log":
            op_id, tag = self._id("read" + scope + parent + title)
            self._add(path, item_params, _Op(
                "GET", "get", gvk, op_id, tag, f"read {sub} of the specified {parent}", [PRETTY] + LOG_PARAMS,
                responses=[("200", "OK", STRING_SCHEMA)], produces=["text/plain"] + MEDIA))
            return
        if "CONNECT" in actions:
            params = CONNECT_PARAMS.get(sub, [])
            for with_path in ((False, True) if sub == "proxy" else (False,)):
                sub_path = path + "/{path}" if with_path else path
                path_params = item_params + ([_param("path", "path", "string", "path to the resource",
                                                     required=True)] if with_path else [])
                for method in CONNECT_METHODS.get(sub, ("GET", "POST")):
                    name = ("connect" + _title(method.lower()) + scope + parent + title
                            + ("WithPath" if with_path else ""))
                    op_id, tag = self._id(name)
                    self._add(sub_path, path_params, _Op(
                        method, "connect", gvk, op_id, tag,
                        f"connect {method} requests to {sub} of {parent}", list(params),
                        responses=[("200", "OK", STRING_SCHEMA)], produces=["*/*"]))
            return
        obj = definition
        if "GET" in actions:
            op_id, tag = self._id("read" + scope + parent + title)
            self._add(path, item_params, _Op(
                "GET", "get", gvk, op_id, tag, f"read {sub} of the specified {parent}", [PRETTY],
                responses=[("200", "OK", obj)]))
        if "PUT" in actions:
            op_id, tag = self._id("replace" + scope + parent + title)
            self._add(path, item_params, _Op(
                "PUT", "put", gvk, op_id, tag, f"replace {sub} of the specified {parent}",
                [PRETTY] + WRITE_PARAMS, body=obj, responses=[("200", "OK", obj), ("201", "Created", obj)]))
        if "PATCH" in actions:
            op_id, tag = self._id("patch" + scope + parent + title)
            self._add(path, item_params, _Op(
                "PATCH", "patch", gvk, op_id, tag, f"partially update {sub} of the specified {parent}",
                [PRETTY] + PATCH_PARAMS, body=PATCH, consumes=self._patch_media(obj),
                responses=[("200", "OK", obj), ("201", "Created", obj)]))
        if "POST" in actions:
            op_id, tag = self._id("create" + scope + parent + title)
            self._add(path, item_params, _Op(
                "POST", "post", gvk, op_id, tag, f"create {sub} of" + _article(parent) + parent,
                [PRETTY] + WRITE_PARAMS, body=obj,
                responses=[("200", "OK", obj), ("201", "Created", obj), ("202", "Accepted", obj)]))


def _param_key(p: dict) -> tuple[str, str]:
    return p["name"], p["in"]


def _split_common(path_params: list[dict], ops: list[_Op]) -> tuple[list[dict], list[list[dict]]]:
    """Parameters every operation of a path shares move to the path (builder3's
    findCommonParameters); both lists are sorted by name, then location."""
    per_op = [list(path_params) + list(op.params) for op in ops]
    keys = [set(_param_key(p) for p in params) for params in per_op]
    common_keys = set.intersection(*keys) if keys else set()
    common = {}
    for params in per_op:
        for p in params:
            if _param_key(p) in common_keys:
                common.setdefault(_param_key(p), p)
    op_params = [sorted((p for p in params if _param_key(p) not in common_keys), key=_param_key)
                 for params in per_op]
    return sorted(common.values(), key=_param_key), op_params


# ---- renderers ---------------------------------------------------------------

def _schema_ref(schema, prefix: str):
    if schema is None:
        return None
    if isinstance(schema, dict):
        return dict(schema)
    return {"$ref": prefix + schema}


def _v3_param(p: dict) -> dict:
    out = {"description": p["description"], "in": p["in"], "name": p["name"]}
    if p.get("required"):
        out["required"] = True
    out["schema"] = {"type": p["typ"], "uniqueItems": True}
    return out


def _v2_param(p: dict) -> dict:
    out = {"description": p["description"], "in": p["in"], "name": p["name"], "type": p["typ"],
           "uniqueItems": True}
    if p.get("required"):
        out["required"] = True
    return out


def _render_v3_paths(paths: dict[str, tuple[list[dict], list[_Op]]]) -> dict:
    out = {}
    for path, (path_params, ops) in paths.items():
        common, op_params = _split_common(path_params, ops)
        item: dict = {}
        for op, params in zip(ops, op_params):
            rendered: dict = {"description": op.description, "operationId": op.op_id}
            if params:
                rendered["parameters"] = [_v3_param(p) for p in params]
            if op.body is not None:
                schema = _schema_ref(op.body, V3_REF)
                body = {"content": {media: {"schema": schema} for media in op.consumes}}
                if op.body_required:
                    body["required"] = True
                rendered["requestBody"] = body
            responses = {}
            for code, description, schema in op.responses:
                ref = _schema_ref(schema, V3_REF)
                response = {"description": description}
                if ref is not None:
                    response["content"] = {media: {"schema": ref} for media in op.produces}
                responses[code] = response
            responses["401"] = {"description": "Unauthorized"}
            rendered["responses"] = responses
            rendered["tags"] = [op.tag]
            if op.action:
                rendered["x-kubernetes-action"] = op.action
            if op.gvk:
                rendered["x-kubernetes-group-version-kind"] = dict(op.gvk)
            item[op.method.lower()] = rendered
        if common:
            item["parameters"] = [_v3_param(p) for p in common]
        out[path] = item
    return out


def _render_v2_paths(paths: dict[str, tuple[list[dict], list[_Op]]]) -> dict:
    out = {}
    for path, (path_params, ops) in paths.items():
        common, op_params = _split_common(path_params, ops)
        item: dict = {}
        for op, params in zip(ops, op_params):
            rendered: dict = {"consumes": op.consumes, "description": op.description, "operationId": op.op_id}
            rendered_params = [_v2_param(p) for p in params]
            if op.body is not None:
                body = {"in": "body", "name": "body", "schema": _schema_ref(op.body, V2_REF)}
                if op.body_required:
                    body["required"] = True
                rendered_params.insert(0, body)
            if rendered_params:
                rendered["parameters"] = rendered_params
            rendered["produces"] = op.produces
            responses = {}
            for code, description, schema in op.responses:
                response = {"description": description}
                ref = _schema_ref(schema, V2_REF)
                if ref is not None:
                    response["schema"] = ref
                responses[code] = response
            responses["401"] = {"description": "Unauthorized"}
            rendered["responses"] = responses
            rendered["schemes"] = ["https"]
            rendered["tags"] = [op.tag]
            if op.action:
                rendered["x-kubernetes-action"] = op.action
            if op.gvk:
                rendered["x-kubernetes-group-version-kind"] = dict(op.gvk)
            item[op.method.lower()] = rendered
        if common:
            item["parameters"] = [_v2_param(p) for p in common]
        out[path] = item
    return out


def _referenced(paths: dict[str, tuple[list[dict], list[_Op]]]) -> set[str]:
    names = set()
    for _, ops in paths.values():
        for op in ops:
            for schema in [op.body] + [s for _, _, s in op.responses]:
                if isinstance(schema, str):
                    names.add(schema)
    return names


SECURITY_SCHEME = {"description": "Bearer token authentication", "in": "header", "name": "authorization",
                   "type": "apiKey"}


class OpenAPI:
    """The /openapi/v2 and /openapi/v3 documents for one registry."""

    def __init__(self, registry: Registry, schemas: Schemas, git_version: str = GIT_VERSION):
        self._registry = registry
        self._schemas = schemas
        self._git_version = git_version
        self._lock = threading.RLock()
        self._refs: dict[str, frozenset[str]] = {}
        self._converted: dict[tuple[str, bool], dict] = {}
        self._reset()

    def _reset(self) -> None:
        self._routes: dict[str, dict] | None = None  # v3 document path -> builder output
        self._v3: dict[str, bytes] = {}
        self._etags: dict[str, str] = {}
        self._index: dict | None = None
        self._v2: bytes | None = None
        self._v2_protobuf: tuple[bytes, bytes] | None = None  # (the JSON it was made from, protobuf)

    def invalidate(self) -> None:
        """The registry changed: documents are rebuilt on their next request."""
        with self._lock:
            self._converted.clear()
            self._refs.clear()
            self._reset()

    # ---- public -------------------------------------------------------------

    def v3_index(self) -> dict:
        with self._lock:
            if self._index is None:
                paths = {}
                for doc_path in sorted(self._doc_paths()):
                    etag = self.v3_etag(doc_path)
                    paths[doc_path] = {"serverRelativeURL": server_relative_url(doc_path, etag)}
                self._index = {"paths": paths}
            return self._index

    def v3_document(self, path: str) -> bytes | None:
        path = path.strip("/")
        with self._lock:
            cached = self._v3.get(path)
            if cached is not None:
                return cached
            routes = self._doc_paths().get(path)
            if routes is None:
                return None
            body = orjson.dumps(self._v3_doc(routes), option=orjson.OPT_SORT_KEYS)
            self._v3[path] = body
            self._etags[path] = hashlib.sha512(body).hexdigest().upper()
            return body

    def v3_etag(self, path: str) -> str:
        path = path.strip("/")
        with self._lock:
            if path not in self._etags and self.v3_document(path) is None:
                return ""
            return self._etags[path]

    def v2_document(self) -> bytes:
        with self._lock:
            if self._v2 is None:
                paths: dict = {}
                for routes in self._doc_paths().values():
                    paths.update(routes)
                doc = {
                    "definitions": self._definitions(self._closure(_referenced(paths)), v3=False),
                    "info": {"title": "Kubernetes", "version": self._git_version},
                    "paths": _render_v2_paths(paths),
                    "security": [{"BearerToken": []}],
                    "securityDefinitions": {"BearerToken": SECURITY_SCHEME},
                    "swagger": "2.0",
                }
                self._v2 = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)
            return self._v2

    def v2_protobuf(self) -> bytes:
        document = self.v2_document()
        with self._lock:
            if self._v2_protobuf is None or self._v2_protobuf[0] is not document:
                self._v2_protobuf = (document, encode_document(orjson.loads(document)))
            return self._v2_protobuf[1]

    def v3_response(self, path: str, query_hash: str | None, accept: str | None = None
                    ) -> tuple[int, dict[str, str], bytes]:
        """Status, headers and body for GET /openapi/v3/<path>, as handler3 answers:
        a stale `hash` redirects (301) to the current URL, a matching one makes
        the response immutable for a year; JSON is the only format served."""
        body = self.v3_document(path)
        if body is None:
            return 404, {}, b""
        if not accepts_json(accept):
            return 406, {"Vary": "Accept"}, b""
        etag = self.v3_etag(path)
        headers = {"Content-Type": "application/json", "Etag": f'"{etag}"', "Vary": "Accept"}
        if query_hash:
            if query_hash != etag:
                return 301, {"Location": server_relative_url(path.strip("/"), etag), "Vary": "Accept"}, b""
            headers["Cache-Control"] = "public, immutable"
            headers["Expires"] = _one_year_from_now()
        return 200, headers, body

    # ---- building -------------------------------------------------------------

    def _doc_paths(self) -> dict[str, dict]:
        if self._routes is None:
            routes: dict[str, dict] = {}
            groups = self._registry.groups()
            for group, versions in groups.items():
                for version in versions:
                    resources = self._registry.in_group_version(group, version)
                    builder = _GroupVersionBuilder(self._schemas, group, version, resources)
                    doc = f"apis/{group}/{version}" if group else f"api/{version}"
                    routes[doc] = builder.build()
                if group:
                    trimmed = group.removesuffix(".k8s.io")
                    routes[f"apis/{group}"] = {f"/apis/{group}/": ([], [_Op(
                        "GET", None, None, "get" + _camel(trimmed, True) + "APIGroup", _camel(trimmed, False),
                        "get information of a group", [], responses=[("200", "OK", API_GROUP)])])}
            routes["api"] = {"/api/": ([], [_Op("GET", None, None, "getCoreAPIVersions", "core",
                                                "get available API versions", [],
                                                responses=[("200", "OK", API_VERSIONS)])])}
            routes["apis"] = {"/apis/": ([], [_Op("GET", None, None, "getAPIVersions", "apis",
                                                  "get available API versions", [],
                                                  responses=[("200", "OK", API_GROUP_LIST)])])}
            routes["version"] = {"/version/": ([], [_Op("GET", None, None, "getCodeVersion", "version",
                                                        "get the code version", [],
                                                        responses=[("200", "OK", VERSION_INFO)],
                                                        produces=["application/json"], consumes=[
                                                            "application/json"])])}
            self._routes = routes
        return self._routes

    def _v3_doc(self, routes: dict) -> dict:
        return {
            "components": {
                "schemas": self._definitions(self._closure(_referenced(routes)), v3=True),
                "securitySchemes": {"BearerToken": SECURITY_SCHEME},
            },
            "info": {"title": "Kubernetes", "version": self._git_version},
            "openapi": "3.0.0",
            "paths": _render_v3_paths(routes),
            "security": [{"BearerToken": []}],
        }

    def _direct(self, name: str) -> frozenset[str]:
        refs = self._refs.get(name)
        if refs is None:
            found: set[str] = set()
            _direct_refs(self._schemas.definitions.get(name), found)
            refs = self._refs[name] = frozenset(found)
        return refs

    def _closure(self, roots: set[str]) -> list[str]:
        seen: set[str] = set()
        stack = [n for n in roots if n in self._schemas.definitions]
        while stack:
            name = stack.pop()
            if name in seen:
                continue
            seen.add(name)
            stack.extend(n for n in self._direct(name) if n not in seen and n in self._schemas.definitions)
        return sorted(seen)

    def _definitions(self, names: list[str], v3: bool) -> dict:
        out = {}
        for name in names:
            key = (name, v3)
            converted = self._converted.get(key)
            if converted is None:
                converted = self._converted[key] = convert_definition(name, self._schemas.definitions[name], v3)
            out[name] = converted
        return out


def server_relative_url(doc_path: str, etag: str) -> str:
    return f"/openapi/v3/{quote(doc_path, safe='/.-_~')}?hash={etag}"


def accepts_json(accept: str | None) -> bool:
    if not accept:
        return True
    for clause in accept.split(","):
        media = clause.split(";", 1)[0].strip().lower()
        if media in ("application/json", "application/*", "*/*", "*"):
            return True
    return False


def _one_year_from_now() -> str:
    from datetime import datetime, timedelta, timezone
    from email.utils import format_datetime

    when = datetime.now(timezone.utc) + timedelta(days=365)
    return format_datetime(when, usegmt=True)
