"""ControllerRevisions: the template history DaemonSets and StatefulSets keep.

A revision stores the pod template as a patch (`{"spec": {"template": {...,
"$patch": "replace"}}}`), is named `<owner>-<hash>` and numbered by
`revision`. A template equal to an existing revision's reuses it (bumping its
number when it becomes the newest again, which is what a rollback does).
The hash is a 32-bit FNV-1a over the stored data plus the collision count,
written with the consonant-and-digit alphabet Kubernetes names use.
"""

from __future__ import annotations

import copy

import orjson

from k8py.client import ApiError, ResourceClient
from k8py.controllers.ownership import new_controller_ref

REVISION_HASH_LABEL = "controller-revision-hash"
_SAFE = "bcdfghjklmnpqrstvwxz2456789"


def fnv32a(data: bytes) -> int:
    h = 0x811C9DC5
    for b in data:
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def safe_encode(text: str) -> str:
    """Map every character into an alphabet free of vowels (no accidental words) and look-alikes."""
    return "".join(_SAFE[ord(ch) % len(_SAFE)] for ch in text)


def canonical(data) -> bytes:
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS)


def template_data(template: dict) -> dict:
    return {"spec": {"template": {**copy.deepcopy(template), "$patch": "replace"}}}


def template_of(revision: dict) -> dict:
    template = copy.deepcopy(((revision.get("data") or {}).get("spec") or {}).get("template") or {})
    template.pop("$patch", None)
    return template


def revision_hash(data: dict, collision_count: int | None = None) -> str:
    raw = canonical(data)
    if collision_count:
        raw += str(collision_count).encode()
    return safe_encode(str(fnv32a(raw)))


def new_revision(owner: dict, kind: str, template: dict, number: int, collision_count: int | None,
                 labels: dict | None) -> dict:
    data = template_data(template)
    name = f"{owner['metadata']['name']}-{revision_hash(data, collision_count)}"
    return {"apiVersion": "apps/v1", "kind": "ControllerRevision",
            "metadata": {"name": name, "namespace": owner["metadata"]["namespace"], "labels": dict(labels or {}),
                         "ownerReferences": [new_controller_ref(owner, "apps/v1", kind)]},
            "data": data, "revision": number}


def same_data(a: dict, b: dict) -> bool:
    return canonical(a.get("data")) == canonical(b.get("data"))


def sorted_history(revisions: list[dict]) -> list[dict]:
    return sorted(revisions, key=lambda r: (r.get("revision", 0), r["metadata"].get("creationTimestamp") or "",
                                            r["metadata"]["name"]))


def next_number(revisions: list[dict]) -> int:
    return max((r.get("revision", 0) for r in revisions), default=0) + 1


async def ensure_revision(api: ResourceClient, owner: dict, kind: str, template: dict, revisions: list[dict],
                          labels: dict | None) -> tuple[dict, int | None]:
    """The revision for `template` (created or renumbered as needed) and the collision count to store."""
    collision = (owner.get("status") or {}).get("collisionCount")
    history = sorted_history(revisions)
    probe = new_revision(owner, kind, template, next_number(history), collision, labels)
    equal = [r for r in history if same_data(r, probe)]
    if equal:
        newest = equal[-1]
        if history and newest is not history[-1]:  # a rollback: it becomes the newest revision
            updated = copy.deepcopy(newest)
            updated["revision"] = probe["revision"]
            newest = await api.update(updated)
        return newest, collision
    while True:
        try:
            return await api.create(probe), collision
        except ApiError as e:
            if not e.already_exists:
                raise
            existing = await api.get(probe["metadata"]["name"])
            if same_data(existing, probe):
                return existing, collision
            # A different template hashed to the same name: count the collision and try another name.
            collision = (collision or 0) + 1
            probe = new_revision(owner, kind, template, probe["revision"], collision, labels)


async def truncate_history(api: ResourceClient, revisions: list[dict], keep: set[str], limit: int) -> None:
    """Delete the oldest revisions not in `keep` (names in use) beyond `limit`."""
    removable = [r for r in sorted_history(revisions) if r["metadata"]["name"] not in keep]
    for revision in removable[:max(len(removable) - limit, 0)]:
        try:
            await api.delete(revision["metadata"]["name"])
        except ApiError as e:
            if not e.not_found:
                raise
