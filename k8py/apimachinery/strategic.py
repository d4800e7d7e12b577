"""Strategic merge patch, applied the way the Go apiserver applies it.

A strategic merge patch is a JSON merge patch whose lists may merge instead of
being replaced. Which lists merge, and on which key, comes from the type's
schema (`x-kubernetes-patch-strategy`, `x-kubernetes-patch-merge-key`, the
OpenAPI form of the Go struct tags upstream reads). The patch may also carry
directives:

* `$patch: replace | delete` in a map; `$patch: delete | replace` as a list
  item (delete the item with that merge key / replace the whole list);
* `$retainKeys: [...]`: drop every key of the live map not listed;
* `$setElementOrder/<list>: [...]`: the order the merged list should have;
* `$deleteFromPrimitiveList/<list>: [...]`: values to drop from a merging list
  of scalars.

This module follows upstream's server-side merge (k8s.io/apimachinery
pkg/util/strategicpatch, `StrategicMergeMapPatch`: parallel lists merged,
unmatched nulls ignored), including its quirks, because `kubectl` computes its
patches expecting exactly that result. Failures raise `MergeError`, whose
`reason` says how upstream's PATCH handler reports it (see
`interpretStrategicMergePatchError` in k8s.io/apiserver handlers/patch.go).

Inputs are modified in place: callers pass copies.
"""

from __future__ import annotations

from dataclasses import dataclass

from k8py.apimachinery.gostrings import go_quote, go_value_text
from k8py.apimachinery.schema import Schemas, schemas

DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
SET_ORDER = "$setElementOrder"
DELETE_FROM_PRIMITIVE = "$deleteFromPrimitiveList"

# How upstream's PATCH handler reports each error: a few named errors become
# 400 or 422, anything else reaches the client as a bare 500 with no reason.
BAD_REQUEST = "BadRequest"
INVALID = "Invalid"
UNKNOWN = ""

_DROP = object()  # what `_strip_directives` returns for a value to leave out


class MergeError(Exception):
    def __init__(self, message: str, reason: str = UNKNOWN):
        super().__init__(message)
        self.message = message
        self.reason = reason


def merge(original: dict, patch: dict, definition: dict) -> dict:
    """Apply `patch` to `original`, an object whose type is `definition`."""
    node = schemas().resolve(definition)
    gvks = (node or {}).get("x-kubernetes-group-version-kind") or [{}]
    return _merge_map(original, patch, _Type(node, gvks[0].get("kind", "")))


# --- the schema, seen as upstream sees Go types --------------------------------

@dataclass(frozen=True)
class _Type:
    node: dict | None  # resolved schema; None when unknown (no checks then)
    name: str = ""     # the Go type name, for messages

    @property
    def kind(self) -> str:
        """The Go reflect kind upstream would name in its messages."""
        if self.node is None:
            return "unknown"
        if "additionalProperties" in self.node and "properties" not in self.node:
            return "map"
        types = Schemas.types(self.node)
        for json_type, go_kind in (("array", "slice"), ("string", "string"), ("integer", "int64"),
                                   ("boolean", "bool"), ("number", "float64")):
            if json_type in types:
                return go_kind
        return "struct"  # including RawExtension, IntOrString, Quantity: Go structs


def _resolve(node: dict | None) -> _Type:
    """Follow `$ref`s, remembering the last definition's Go name."""
    defs, name = schemas(), ""
    while node is not None:
        ref = Schemas.ref_name(node)
        if ref:
            name = ref.rsplit(".", 1)[-1]
            node = defs.definitions.get(ref)
            continue
        all_of = node.get("allOf")
        if all_of and len(all_of) == 1:
            node = all_of[0]
            continue
        break
    return _Type(node, name)


def _field(parent: _Type, key: str) -> tuple[_Type, dict]:
    """The type and raw property schema of `key`, or upstream's lookup error."""
    if parent.node is None:
        return _Type(None), {}
    if parent.kind != "struct":
        # e.g. a map of objects (JSONSchemaProps.properties): upstream cannot
        # look up patch metadata inside it and gives up.
        raise MergeError(f"merging an object in json but data type is not struct, instead is: {parent.kind}")
    properties = parent.node.get("properties") or {}
    prop = properties.get(key)
    if prop is None:  # Go's JSON field matching falls back to case-insensitive
        prop = next((v for k, v in properties.items() if k.lower() == key.lower()), None)
    if prop is None:
        raise MergeError(f"unable to find api field in struct {parent.name} for the json field {go_quote(key)}")
    return _resolve(prop), prop


def _strategy(prop: dict) -> str:
    """The list/map strategy of a field, ignoring retainKeys (the `$retainKeys`
    directive in the patch, not the schema, drives that on the server)."""
    parts = (prop.get("x-kubernetes-patch-strategy") or "").split(",")
    if len(parts) == 1:
        return "" if parts[0] == "retainKeys" else parts[0]
    if len(parts) == 2 and "retainKeys" in parts:
        return parts[1] if parts[0] == "retainKeys" else parts[0]
    raise MergeError(f"unexpected patch strategy: [{' '.join(parts)}]")


def _map_meta(parent: _Type, key: str) -> tuple[_Type, str]:
    field_type, prop = _field(parent, key)
    return field_type, _strategy(prop)


def _list_meta(parent: _Type, key: str) -> tuple[_Type, str, str]:
    """(item type, strategy, merge key) of the list field `key`."""
    field_type, prop = _field(parent, key)
    if field_type.node is None:
        return _Type(None), "", ""
    if field_type.kind != "slice":
        raise MergeError("expected slice or array type, but got: struct")
    item_type = _resolve(field_type.node.get("items"))
    if item_type.kind == "slice":
        raise MergeError("unexpected slice of slice")
    return item_type, _strategy(prop), prop.get("x-kubernetes-patch-merge-key") or ""


# --- maps -----------------------------------------------------------------------

def _merge_map(original: dict, patch: dict, type_: _Type) -> dict:
    if DIRECTIVE in patch:
        return _map_directive(patch)
    _apply_retain_keys(original, patch)
    _merge_ordered_lists(original, patch, type_)
    for key, value in list(patch.items()):
        delete_list = key.startswith(DELETE_FROM_PRIMITIVE)
        if delete_list:
            key = _directive_target(key, DELETE_FROM_PRIMITIVE)
        if value is None:
            original.pop(key, None)
            continue
        if key not in original or type(original[key]) is not type(value):
            if not delete_list:
                _set_from_patch(original, key, value)
            continue
        if isinstance(value, dict):
            field_type, strategy = _map_meta(type_, key)
            original[key] = value if strategy == "replace" else _merge_map(original[key], value, field_type)
        elif isinstance(value, list):
            item_type, strategy, merge_key = _list_meta(type_, key)
            if strategy == "merge" or delete_list:
                original[key] = _merge_list(original[key], value, item_type, merge_key, delete_list)
            else:
                original[key] = value
        else:
            original[key] = value
    return original


def _map_directive(patch: dict) -> dict:
    directive = patch[DIRECTIVE]
    if directive == "replace":
        # The patch map is the new value as it stands (upstream keeps even its
        # nulls and nested directives; the typed decode drops them later).
        del patch[DIRECTIVE]
        return patch
    if directive == "delete":
        return {}  # upstream leaves an empty map behind, not a missing key
    raise _bad_patch_type(directive, patch)


def _set_from_patch(original: dict, key: str, value) -> None:
    """A patch value with nothing to merge into: taken as is, minus nulls and
    directives (a map that is itself a directive disappears)."""
    _discard_nulls(value)
    value = _strip_directives(value)
    if value is _DROP:
        original.pop(key, None)
    else:
        original[key] = value


def _apply_retain_keys(original: dict, patch: dict) -> None:
    if RETAIN_KEYS not in patch:
        return
    keep = patch.pop(RETAIN_KEYS)
    if not isinstance(keep, list):
        raise _bad_format("retainKeys")
    allowed = {k for k in keep if isinstance(k, str)}
    for key, value in patch.items():
        if value is None or key.startswith((DELETE_FROM_PRIMITIVE, SET_ORDER)):
            continue
        if key not in allowed:  # the patch sets a key it asks to drop
            raise _bad_format("retainKeys")
    for key in list(original):
        if key not in allowed:
            del original[key]


def _merge_ordered_lists(original: dict, patch: dict, type_: _Type) -> None:
    """Merge each list that has a `$setElementOrder`, then order it: the
    directive's order first, then the patch's, then the live list's."""
    for directive in [k for k in patch if k.startswith(SET_ORDER)]:
        order = patch.pop(directive)
        if not isinstance(order, list):
            raise _bad_arg_type("[]interface {}", order)
        key = _directive_target(directive, SET_ORDER)
        in_original, in_patch = key in original, key in patch
        live, patch_list = original.get(key), patch.get(key)
        if in_original and not isinstance(live, list):
            raise _bad_arg_type("[]interface {}", live)
        if in_patch and not isinstance(patch_list, list):
            raise _bad_arg_type("[]interface {}", patch_list)
        live, patch_list = live or [], patch_list or []
        item_type, strategy, merge_key = _list_meta(type_, key)
        _check_order(patch_list, order, merge_key)
        if in_original and in_patch:
            if strategy == "merge":
                merged = _merge_list(live, patch_list, item_type, merge_key, False)
            else:
                merged = patch_list
        elif in_patch:
            merged = _strip_directives(patch_list)
        elif in_original:
            merged = live
        else:
            continue
        ordered, server_only = _partition(merged, order, merge_key)
        kind = _item_kind(live, patch_list)
        original[key] = _normalize_order(ordered, server_only, order, live, merge_key, kind)
        patch.pop(key, None)


def _check_order(patch_list: list, order: list, merge_key: str) -> None:
    """The patch's items must appear in `$setElementOrder`, in the same order."""
    if not order or not patch_list:
        return
    items = _split_deletions(patch_list)[0] if merge_key else patch_list
    i = j = 0
    while i < len(items) and j < len(order):
        if isinstance(items[i], dict) and DIRECTIVE in items[i]:
            i += 1
            continue
        if _merge_key_equal(items[i], order[j], merge_key):
            i += 1
        j += 1
    if i < len(items) and j >= len(order):
        raise MergeError(f"The order in patch list:\n{go_value_text(patch_list)}\n doesn't match "
                         f"{SET_ORDER} list:\n{go_value_text(order)}\n")


# --- lists ----------------------------------------------------------------------

def _merge_list(live: list, patch: list, item_type: _Type, merge_key: str, delete_list: bool) -> list:
    if not live and not patch:
        return live
    kind = _item_kind(live, patch)
    if kind != "map":
        if delete_list:  # `$deleteFromPrimitiveList`: no reordering
            return [v for v in live if not _contains(patch, v)]
        merged = []
        for value in live + patch:
            if not _contains(merged, value):
                merged.append(value)
    else:
        if not merge_key:
            raise MergeError(f"cannot merge lists without merge key for {item_type.kind}")
        live, patch = _list_directives(live, patch, merge_key)
        merged = _merge_by_key(live, patch, merge_key, item_type)
    in_patch, server_only = _partition(merged, patch, merge_key)
    return _normalize_order(in_patch, server_only, patch, live, merge_key, kind)


def _list_directives(live: list, patch: list, merge_key: str) -> tuple[list, list]:
    """Apply the `$patch` items of a list patch; returns (live, plain items)."""
    plain, replace = [], False
    for item in patch:
        if DIRECTIVE not in item:
            plain.append(item)
            continue
        directive = item[DIRECTIVE]
        if directive == "delete":
            if merge_key not in item:
                raise _no_merge_key(item, merge_key)
            live = [v for v in live if _find_by_key([v], merge_key, item[merge_key]) < 0]
        elif directive == "replace":
            replace = True  # keep scanning: later `$patch` items still count
        elif directive == "merge":
            raise MergeError("merging lists cannot yet be specified in the patch")
        else:
            raise _bad_patch_type(directive, item)
    if replace:
        return plain, []
    return live, plain


def _merge_by_key(live: list, patch: list, merge_key: str, item_type: _Type) -> list:
    merged = list(live)  # `live` stays the reference order for what was there
    for item in patch:
        if merge_key not in item:
            raise _no_merge_key(item, merge_key)
        index = _find_by_key(merged, merge_key, item[merge_key])
        if index >= 0:
            merged[index] = _merge_map(merged[index], item, item_type)
        else:
            merged.append(item)  # new items go in as sent: nulls and all
    return merged


def _partition(items: list, wanted: list, merge_key: str) -> tuple[list, list]:
    """Split `items` into those named in `wanted` and the rest."""
    named, rest = [], []
    for item in items:
        if merge_key:
            if not isinstance(item, dict):
                raise _bad_arg_type("map[string]interface {}", item)
            if merge_key not in item:
                raise _no_merge_key(item, merge_key)
            found = _find_by_key(wanted, merge_key, item[merge_key]) >= 0
        else:
            found = _contains(wanted, item)
        (named if found else rest).append(item)
    return named, rest


def _normalize_order(in_patch: list, server_only: list, patch_order: list, server_order: list,
                     merge_key: str, kind: str) -> list:
    """Patch items in patch order, server-only items in live order, then the
    two interleaved so each server-only item keeps its place relative to the
    live items around it."""
    in_patch = _sort_by(in_patch, patch_order, merge_key, kind)
    server_only = _sort_by(server_only, server_order, merge_key, kind)
    return _interleave(server_only, in_patch, server_order, merge_key, kind)


def _sort_by(items: list, order: list, merge_key: str, kind: str) -> list:
    deletions = []
    if kind == "map":
        for item in items + order:
            if not isinstance(item, dict):
                raise _bad_arg_type("map[string]interface {}", item)
            if merge_key not in item:
                raise _no_merge_key(item, merge_key)
        items, deletions = _split_deletions(items)
    # Stable; anything the order does not name goes first, where upstream's
    # comparator ("less" whenever either side is unknown) tends to put it.
    return sorted(items, key=lambda item: _index(order, item, merge_key, kind)) + deletions


def _interleave(left: list, right: list, order: list, merge_key: str, kind: str) -> list:
    """Upstream's mergeSortedSlice: take from `left` only while its head is
    known to come before `right`'s head in `order`."""
    out, i, j = [], 0, 0
    while i < len(left) or j < len(right):
        if j >= len(right):
            out.append(left[i])
            i += 1
        elif i >= len(left):
            out.append(right[j])
            j += 1
        else:
            li, ri = _index(order, left[i], merge_key, kind), _index(order, right[j], merge_key, kind)
            if li >= 0 and ri >= 0 and li < ri:
                out.append(left[i])
                i += 1
            else:
                out.append(right[j])
                j += 1
    return out


def _index(items: list, wanted, merge_key: str, kind: str) -> int:
    def value(item):
        if kind == "map":
            return item.get(merge_key) if isinstance(item, dict) else None
        return item
    target = value(wanted)
    for i, item in enumerate(items):
        if _same(value(item), target):
            return i
    return -1


def _split_deletions(items: list) -> tuple[list, list]:
    keep, deletions = [], []
    for item in items:
        if not isinstance(item, dict):
            raise _bad_arg_type("map[string]interface {}", item)
        (deletions if item.get(DIRECTIVE) == "delete" else keep).append(item)
    return keep, deletions


def _find_by_key(items: list, merge_key: str, value) -> int:
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise MergeError(f"value for key {i} is not a map")
        if merge_key in item and _same(item[merge_key], value):
            return i
    return -1


def _merge_key_equal(left, right, merge_key: str) -> bool:
    if not merge_key:
        return _same(left, right)
    for item in (left, right):
        if not isinstance(item, dict):
            raise _bad_arg_type("map[string]interface {}", item)
        if merge_key not in item:
            raise _no_merge_key(item, merge_key)
    return _same(left[merge_key], right[merge_key])


def _item_kind(*lists: list) -> str:
    """"map" or "scalar": upstream insists every item of both lists has one type."""
    first = None
    for items in lists:
        for item in items:
            if first is None:
                first = type(item)
                if first is list:
                    raise MergeError("lists of lists are not supported", INVALID)
            elif type(item) is not first:
                raise MergeError(f"list element types are not identical: {go_value_text(list(lists))}")
    if first is None:
        raise MergeError("no elements in any of the given slices")
    return "map" if first is dict else "scalar"


# --- values ---------------------------------------------------------------------

def _same(a, b) -> bool:
    """Go's interface equality: 1 and 1.0, or 1 and true, are different."""
    return type(a) is type(b) and a == b


def _contains(items: list, value) -> bool:
    return any(_same(item, value) for item in items)


def _discard_nulls(value) -> None:
    if isinstance(value, dict):
        for key in [k for k, v in value.items() if v is None]:
            del value[key]
        for v in value.values():
            _discard_nulls(v)
    elif isinstance(value, list):
        for v in value:
            _discard_nulls(v)


def _strip_directives(value):
    if isinstance(value, dict):
        if DIRECTIVE in value:
            return _DROP
        stripped = {k: _strip_directives(v) for k, v in value.items()}
        return {k: v for k, v in stripped.items() if v is not _DROP}
    if isinstance(value, list):
        return [v for v in map(_strip_directives, value) if v is not _DROP]
    return value


def _directive_target(key: str, prefix: str) -> str:
    """`<prefix>/<field>` -> field."""
    head, sep, field = key.partition("/")
    if not sep or head != prefix:
        raise _bad_format("primitive list" if prefix == DELETE_FROM_PRIMITIVE else "setElementOrder list")
    return field


# --- upstream's error texts (k8s.io/apimachinery/pkg/util/mergepatch/errors.go) --

def _bad_format(what: str) -> MergeError:
    return MergeError(f"invalid patch format of {what}", BAD_REQUEST)


def _go_type(value) -> str:
    if value is None:
        return "%!s(<nil>)"  # Go's %s of a nil reflect.Type
    return {bool: "bool", int: "int64", float: "float64", str: "string",
            dict: "map[string]interface {}", list: "[]interface {}"}.get(type(value), type(value).__name__)


def _bad_arg_type(expected: str, actual) -> MergeError:
    return MergeError(f"expected a {expected}, but received a {_go_type(actual)}")


def _no_merge_key(item: dict, merge_key: str) -> MergeError:
    return MergeError(f"map: {go_value_text(item)} does not contain declared merge key: {merge_key}")


def _bad_patch_type(directive, item: dict) -> MergeError:
    if isinstance(directive, str):
        shown = directive
    elif directive is None or isinstance(directive, (dict, list)):
        shown = go_value_text(directive) if directive is not None else "%!s(<nil>)"
    else:  # Go's %s of a number or bool
        shown = f"%!s({_go_type(directive)}={go_value_text(directive)})"
    return MergeError(f"unknown patch type: {shown} in map: {go_value_text(item)}")
