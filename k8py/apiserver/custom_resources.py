"""Write rules for custom resources (objects of CRD-defined kinds).

Upstream's customresource strategy: generation starts at 1 and moves with
every change outside metadata and status; with the status subresource
enabled, status is ignored on create and on main-resource updates, and a
status update changes nothing but status.
"""

from __future__ import annotations

import copy

from k8py.api.registry import Resource


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
