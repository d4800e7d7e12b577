"""Owner references: who controls an object, adopting orphans, releasing strays.

An object has at most one *controller* owner (ownerReference with
`controller: true`). A controller claims the objects its selector matches:

* already ours (controllerRef uid == our uid) and still matching: keep;
* ours but no longer matching (someone relabelled it): release it by
  removing our ownerReference;
* an orphan (no controllerRef) that matches, not being deleted: adopt it by
  adding our controllerRef;
* controlled by someone else: never touched.

Adoption and release are patches that carry the object's uid as a
precondition, so we never adopt a different object that reused the name.
A controller that is itself being deleted adopts nothing (upstream's rule:
otherwise the garbage collector and the controller fight).
"""

from __future__ import annotations

from collections.abc import Callable

from k8py.client import ApiError, ResourceClient


def controller_ref(obj: dict) -> dict | None:
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def new_controller_ref(owner: dict, api_version: str | None = None, kind: str | None = None) -> dict:
    meta = owner["metadata"]
    return {"apiVersion": api_version or owner["apiVersion"], "kind": kind or owner["kind"],
            "name": meta["name"], "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}


def is_controlled_by(obj: dict, owner: dict) -> bool:
    ref = controller_ref(obj)
    return ref is not None and ref.get("uid") == owner["metadata"].get("uid")


def _being_deleted(obj: dict) -> bool:
    return bool(obj["metadata"].get("deletionTimestamp"))


async def adopt(resource: ResourceClient, obj: dict, owner_ref: dict) -> dict | None:
    """Add `owner_ref` as controller of `obj`; None when the object is gone or changed hands."""
    meta = obj["metadata"]
    patch = {"metadata": {"ownerReferences": [owner_ref], "uid": meta["uid"]}}
    return await _patch(resource, meta, patch)


async def release(resource: ResourceClient, obj: dict, owner_uid: str) -> dict | None:
    """Remove the ownerReference with `owner_uid` from `obj`."""
    meta = obj["metadata"]
    patch = {"metadata": {"ownerReferences": [{"$patch": "delete", "uid": owner_uid}], "uid": meta["uid"]}}
    return await _patch(resource, meta, patch)


async def _patch(resource: ResourceClient, meta: dict, patch: dict) -> dict | None:
    ns_resource = resource if resource.namespace or not meta.get("namespace") else \
        resource.client.resource(resource.group_version, resource.plural, meta["namespace"])
    try:
        return await ns_resource.patch(meta["name"], patch, patch_type="strategic")
    except ApiError as e:
        if e.not_found or e.code == 409 or e.code == 422:
            return None  # gone, or no longer the object we meant: the next sync sees the truth
        raise


async def claim(owner: dict, candidates: list[dict], matches: Callable[[dict], bool],
                resource: ResourceClient, owner_ref: dict | None = None,
                fresh_owner: Callable[[], object] | None = None) -> list[dict]:
    """The candidates `owner` controls after adopting orphans and releasing strays.

    `fresh_owner`, when given, is an async callable returning the owner as
    the API server has it now (upstream re-reads it before the first
    adoption so a stale cache cannot adopt for a deleted owner); it must
    return None when the owner is gone or being deleted.
    """
    uid = owner["metadata"]["uid"]
    owner_ref = owner_ref or new_controller_ref(owner)
    claimed: list[dict] = []
    may_adopt: bool | None = None if not _being_deleted(owner) else False
    for obj in candidates:
        ref = controller_ref(obj)
        if ref is not None:
            if ref.get("uid") != uid:
                continue
            if matches(obj):
                claimed.append(obj)
            elif not _being_deleted(owner):
                await release(resource, obj, uid)
            continue
        if not matches(obj) or _being_deleted(obj):
            continue
        if may_adopt is None:
            may_adopt = True
            if fresh_owner is not None:
                current = await fresh_owner()
                may_adopt = current is not None and current["metadata"].get("uid") == uid \
                    and not _being_deleted(current)
        if not may_adopt:
            continue
        adopted = await adopt(resource, obj, owner_ref)
        if adopted is not None:
            claimed.append(adopted)
    return claimed
