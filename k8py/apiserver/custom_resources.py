"""Write rules for custom resources (objects of CRD-defined kinds).

Upstream's customresource strategy: generation starts at 1 and moves with
every change outside metadata and status; with the status subresource
enabled, status is ignored on create and on main-resource updates, and a
status update changes nothing but status. Of the schema's value constraints,
`required` and `enum` are checked (types are checked when the body is decoded).
"""

from __future__ import annotations

import copy

from k8py.api.registry import Resource
from k8py.api.schema import schemas
from k8py.api.validation.field import not_supported, required


def _content(obj: dict) -> dict:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def prepare_create(resource: Resource, obj: dict) -> None:
    obj["metadata"]["generation"] = 1
    if resource.has_subresource("status"):
        obj.pop("status", None)


def prepare_update(resource: Resource, new: dict, old: dict, subresource: str) -> None:
    if subresource == "status":
        for key in list(new):
            if key not in ("metadata", "status", "apiVersion", "kind"):
                del new[key]
        for key, value in _content(old).items():
            new[key] = copy.deepcopy(value)
        return
    if resource.has_subresource("status"):
        if "status" in old:
            new["status"] = copy.deepcopy(old["status"])
        else:
            new.pop("status", None)
    generation = old["metadata"].get("generation", 1)
    changed = _content(new) != _content(old) or (
        not resource.has_subresource("status") and new.get("status") != old.get("status"))
    new["metadata"]["generation"] = generation + 1 if changed else generation


def schema_causes(resource: Resource, obj: dict) -> list:
    """`required` and `enum` violations against the version's published schema."""
    schema = schemas().for_kind(resource.group, resource.version, resource.kind)
    causes: list = []
    if schema is not None:
        _walk(schema, obj, "", causes)
    return causes


def _walk(node: dict, value, at: str, causes: list) -> None:
    if not isinstance(node, dict) or value is None:
        return
    if node.get("enum") is not None and value not in node["enum"]:
        causes.append(not_supported(at, value, node["enum"]))
    if isinstance(value, dict):
        for key in node.get("required") or []:
            if key not in value:
                causes.append(required(f"{at}.{key}" if at else key))
        for key, child in (node.get("properties") or {}).items():
            if key in value and key != "metadata":
                _walk(child, value[key], f"{at}.{key}" if at else key, causes)
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        for i, item in enumerate(value):
            _walk(node["items"], item, f"{at}[{i}]", causes)
