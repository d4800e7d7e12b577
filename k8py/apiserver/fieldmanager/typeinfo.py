"""What structured-merge-diff needs to know about a schema.

The schema is the JSON-Schema form from `k8py.api.schema` (or a CRD's
openAPIV3Schema, or None for "no schema"). It is compiled lazily into `Type`
nodes that say what structured-merge-diff needs: struct or map (granular or
atomic), list (atomic, set, or map with keys), scalar, or untyped (decided
by the value: objects are granular maps, lists atomic).

Upstream works on Go structs, where some fields exist even when a client
never set them: non-pointer structs (`spec`, `spec.template`,
`spec.strategy`, ...) and fields without `omitempty` (which is what
`required` marks in the schema). A newly set field inside such a parent is
not "added" as a node, so it carries no `.` in FieldsV1. `Type.always` and
`Type.value_structs` reproduce that: a missing always-present field counts as
null, or as `{}` for value structs, whenever its parent is there.
"""

from __future__ import annotations

from k8py.api.schema import OBJECT_META, REF_PREFIX, schemas

from .fieldpath import KEY, VALUE, freeze, path_string

SCALAR, MAP, LIST, UNTYPED = 0, 1, 2, 3
MISSING = object()

# Non-pointer struct fields of the built-in types (present in every Go value).
# Kind definitions add metadata/spec/status on their own.
_VALUE_STRUCTS = {
    "io.k8s.api.core.v1.PodTemplateSpec": ("metadata", "spec"),
    "io.k8s.api.batch.v1.JobTemplateSpec": ("metadata", "spec"),
    "io.k8s.api.core.v1.PersistentVolumeClaimTemplate": ("metadata", "spec"),
    "io.k8s.api.apps.v1.DeploymentSpec": ("strategy", "template"),
    "io.k8s.api.apps.v1.ReplicaSetSpec": ("template",),
    "io.k8s.api.apps.v1.StatefulSetSpec": ("template", "updateStrategy"),
    "io.k8s.api.apps.v1.DaemonSetSpec": ("template", "updateStrategy"),
    "io.k8s.api.batch.v1.JobSpec": ("template",),
    "io.k8s.api.batch.v1.CronJobSpec": ("jobTemplate",),
    "io.k8s.api.core.v1.PersistentVolumeClaimSpec": ("resources",),
    "io.k8s.api.core.v1.NodeStatus": ("daemonEndpoints", "nodeInfo"),
    "io.k8s.api.core.v1.NodeDaemonEndpoints": ("kubeletEndpoint",),
    "io.k8s.api.core.v1.ServiceStatus": ("loadBalancer",),
    "io.k8s.api.networking.v1.IngressStatus": ("loadBalancer",),
    "io.k8s.api.autoscaling.v1.HorizontalPodAutoscalerSpec": ("scaleTargetRef",),
    "io.k8s.api.autoscaling.v2.HorizontalPodAutoscalerSpec": ("scaleTargetRef",),
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionSpec": ("names",),
    "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinitionStatus": ("acceptedNames",),
    "io.k8s.api.core.v1.Event": ("involvedObject", "source"),
    "io.k8s.api.events.v1.Event": ("deprecatedSource", "regarding"),
    "io.k8s.api.rbac.v1.RoleBinding": ("roleRef",),
    "io.k8s.api.rbac.v1.ClusterRoleBinding": ("roleRef",),
    "io.k8s.api.storage.v1.VolumeAttachmentSpec": ("source",),
    "io.k8s.api.flowcontrol.v1.FlowSchemaSpec": ("priorityLevelConfiguration",),
}
_VALUE_STRUCTS["io.k8s.api.core.v1.Container"] = ("resources",)
_VALUE_STRUCTS["io.k8s.api.core.v1.EphemeralContainer"] = ("resources",)
_KIND_VALUE_STRUCTS = ("metadata", "spec", "status")
# Fields Go always writes, as null when unset (besides the schema's `required`).
_ALWAYS_NULL = {OBJECT_META: ("creationTimestamp",)}
# Key fields whose OpenAPI default upstream uses when an item omits them.
_KEY_DEFAULTS = {"protocol": "TCP"}


class TypedError(Exception):
    """The value does not fit the schema the way structured-merge-diff needs."""


class Type:
    __slots__ = ("kind", "atomic", "props", "field_types", "elem", "elem_type", "keys",
                 "always", "value_structs", "name")

    def __init__(self, kind: int, atomic: bool = False):
        self.kind = kind
        self.atomic = atomic
        self.props: dict = {}
        self.field_types: dict = {}
        self.elem = None            # raw schema of map values / list items
        self.elem_type: Type | None = None
        self.keys: tuple = ()       # list-map keys; () for sets
        self.always: frozenset = frozenset()
        self.value_structs: frozenset = frozenset()
        self.name = None

    def field(self, key: str) -> "Type":
        t = self.field_types.get(key)
        if t is None:
            node = self.props.get(key)
            if node is None:
                return self.element()
            t = self.field_types[key] = compile_node(node)
        return t

    def element(self) -> "Type":
        t = self.elem_type
        if t is None:
            t = self.elem_type = compile_node(self.elem) if self.elem is not None else UNTYPED_TYPE
        return t


UNTYPED_TYPE = Type(UNTYPED)
_compiled: dict[int, tuple[dict, Type]] = {}
_roots: dict[int, tuple[dict | None, Type]] = {}


def _resolve(node: dict) -> tuple[dict, dict, str | None]:
    """The definition a node names, the x-kubernetes extensions met on the way
    (outer ones win), and the definition's name."""
    defs = schemas().definitions
    ext: dict = {}
    name = None
    while True:
        for k, v in node.items():
            if k.startswith("x-kubernetes-") and k not in ext:
                ext[k] = v
        ref = node.get("$ref")
        if ref and ref.startswith(REF_PREFIX):
            name = ref[len(REF_PREFIX):]
            nxt = defs.get(name)
            if nxt is None:
                return {}, ext, name
            node = nxt
            continue
        all_of = node.get("allOf")
        if all_of and len(all_of) == 1 and isinstance(all_of[0], dict):
            node = all_of[0]
            continue
        return node, ext, name


def _types(node: dict) -> set:
    t = node.get("type")
    if t is None:
        return set()
    if isinstance(t, str):
        return {t}
    return {x for x in t if x != "null"}


_CACHE_LIMIT = 20000  # schemas built per request (custom resources) must not pile up


def compile_node(node: dict | None) -> Type:
    if node is None:
        return UNTYPED_TYPE
    hit = _compiled.get(id(node))
    if hit is not None and hit[0] is node:
        return hit[1]
    t = _build(node)
    if len(_compiled) > _CACHE_LIMIT:
        _compiled.clear()
    _compiled[id(node)] = (node, t)
    return t


def _build(node: dict) -> Type:
    n, ext, name = _resolve(node)
    types = _types(n)
    if "object" in types or "properties" in n or "additionalProperties" in n:
        t = Type(MAP, ext.get("x-kubernetes-map-type") == "atomic")
        t.name = name
        t.props = n.get("properties") or {}
        extra = n.get("additionalProperties")
        if isinstance(extra, dict):
            t.elem = extra
        kind_definition = bool(n.get("x-kubernetes-group-version-kind"))
        if t.props and (name is not None or kind_definition):
            # Built-in (Go) types only: custom resources are unstructured
            # upstream, so nothing of theirs exists before a client sets it.
            value_structs = set(_VALUE_STRUCTS.get(name, ()))
            if kind_definition:
                value_structs.update(k for k in _KIND_VALUE_STRUCTS if k in t.props)
            t.value_structs = frozenset(value_structs)
            t.always = frozenset(n.get("required") or ()) | frozenset(_ALWAYS_NULL.get(name, ())) \
                | t.value_structs
        return t
    if "array" in types or "items" in n:
        t = Type(LIST)
        items = n.get("items")
        t.elem = items if isinstance(items, dict) else None
        list_type = ext.get("x-kubernetes-list-type")
        if list_type is None:
            strategy = ext.get("x-kubernetes-patch-strategy")
            if strategy in ("merge", "merge,retainKeys"):
                key = ext.get("x-kubernetes-patch-merge-key")
                list_type, keys = ("map", [key]) if key else ("set", [])
            else:
                list_type = "atomic"
        else:
            keys = ext.get("x-kubernetes-list-map-keys") or []
        if list_type == "map" and keys:
            t.keys = tuple(keys)
        elif list_type != "set":
            t.atomic = True
        return t
    if types or "oneOf" in n or "anyOf" in n or ext.get("x-kubernetes-int-or-string"):
        return Type(SCALAR)
    return UNTYPED_TYPE


_OBJECT_META_REF = {"$ref": REF_PREFIX + OBJECT_META}


def root_type(schema: dict | None) -> Type:
    """The type of a whole object. `metadata` is always ObjectMeta, as
    upstream substitutes for custom resources too."""
    key = id(schema)
    hit = _roots.get(key)
    if hit is not None and hit[0] is schema:
        return hit[1]
    if schema is None:
        t = Type(MAP)
    else:
        base = compile_node(schema)
        if base.kind != MAP:
            base = Type(MAP)
        t = Type(MAP, False)
        t.name, t.props, t.elem = base.name, dict(base.props), base.elem
        t.value_structs, t.always = base.value_structs, base.always
    meta = t.props.get("metadata")
    if meta is None or "$ref" not in meta:
        t.props["metadata"] = _OBJECT_META_REF
    if len(_roots) > _CACHE_LIMIT:
        _roots.clear()
    _roots[key] = (schema, t)
    return t


# -- list items -------------------------------------------------------------

def item_element(item, t: Type) -> tuple:
    """The path element of an item of an associative list."""
    if t.keys:
        if not isinstance(item, dict):
            if item is None:
                raise TypedError("associative list with keys may not have a null element")
            raise TypedError("associative list with keys may not have non-map elements")
        fields = []
        for name in t.keys:
            if name in item:
                fields.append((name, freeze(item[name])))
                continue
            default = _key_default(t, name)
            if default is None:
                raise TypedError(f"associative list with keys has an element that omits key field "
                                 f"\"{name}\" (and doesn't have default value)")
            fields.append((name, default))
        if len(fields) > 1:
            fields.sort(key=lambda f: f[0])
        return (KEY, tuple(fields))
    if isinstance(item, dict):
        raise TypedError("associative list without keys has an element that's a map type")
    if isinstance(item, list):
        raise TypedError("not supported: associative list with lists as elements")
    if item is None:
        raise TypedError("associative list without keys has an element that's an explicit null")
    return (VALUE, item)


def _key_default(t: Type, name: str):
    elem = t.element()
    node = elem.props.get(name) if elem.kind == MAP else None
    if node is not None and "default" in node:
        return freeze(node["default"])
    return _KEY_DEFAULTS.get(name)


def elements(items: list, t: Type, path: list) -> list:
    out = []
    for i, item in enumerate(items):
        try:
            out.append(item_element(item, t))
        except TypedError as e:
            raise TypedError(f"{path_string(tuple(path))}: element {i}: {e}") from None
    return out
