"""A StatefulSet's PersistentVolumeClaims: one per template and ordinal, and the
ownerReferences that carry out `persistentVolumeClaimRetentionPolicy`.

Claims are named `<template>-<set>-<ordinal>` and labelled with the set's
selector `matchLabels` over the template's own labels. They outlive their pod
unless the policy says otherwise; the policy is carried out by the garbage
collector, through ownerReferences the controller keeps in step (upstream's
rules, including after a policy change):

| whenScaled | whenDeleted | claim of a pod in range | claim of a scaled-down pod |
|---|---|---|---|
| Retain | Retain | no reference | no reference |
| Retain | Delete | the set | the set |
| Delete | Retain | no reference | the pod |
| Delete | Delete | the set | the pod |

References are controller references. A claim with a stale reference (the
set's or pod's name but another uid) or owned by another controller is left
alone, as upstream does: it belongs to something else now.
"""

from __future__ import annotations

import copy

from k8py.controllers.ownership import new_controller_ref

SET_KIND = ("apps/v1", "StatefulSet")
POD_KIND = ("v1", "Pod")


def claim_templates(sts: dict) -> list[dict]:
    return (sts.get("spec") or {}).get("volumeClaimTemplates") or []


def claim_name(template_name: str, sts: dict, ordinal: int) -> str:
    return f"{template_name}-{sts['metadata']['name']}-{ordinal}"


def retention(sts: dict) -> tuple[str, str]:
    """(whenDeleted, whenScaled); anything but Delete keeps the claims."""
    policy = (sts.get("spec") or {}).get("persistentVolumeClaimRetentionPolicy") or {}
    return policy.get("whenDeleted") or "Retain", policy.get("whenScaled") or "Retain"


def new_claim(sts: dict, template: dict, ordinal: int) -> dict:
    """The claim for `ordinal` (its pod is in range, so only the set may own it)."""
    meta = copy.deepcopy(template.get("metadata") or {})
    labels = dict(meta.get("labels") or {})
    labels.update(((sts.get("spec") or {}).get("selector") or {}).get("matchLabels") or {})
    claim_meta = {"name": claim_name(meta.get("name", ""), sts, ordinal), "namespace": sts["metadata"]["namespace"],
                  "labels": labels}
    if meta.get("annotations"):
        claim_meta["annotations"] = dict(meta["annotations"])
    if retention(sts)[0] == "Delete":
        claim_meta["ownerReferences"] = [new_controller_ref(sts, *SET_KIND)]
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": claim_meta,
            "spec": copy.deepcopy(template.get("spec") or {})}


def in_ordinal_range(sts: dict, ordinal: int) -> bool:
    spec = sts.get("spec") or {}
    start = (spec.get("ordinals") or {}).get("start", 0) or 0
    replicas = 1 if spec.get("replicas") is None else spec["replicas"]
    return start <= ordinal < start + replicas


def _refs(claim: dict) -> list[dict]:
    return list(claim["metadata"].get("ownerReferences") or [])


def _names(ref: dict, obj: dict, kind: tuple[str, str]) -> bool:
    return (ref.get("apiVersion"), ref.get("kind")) == kind and ref.get("name") == obj["metadata"]["name"]


def _owned_by(claim: dict, obj: dict) -> bool:
    return any(r.get("uid") == obj["metadata"]["uid"] for r in _refs(claim))


def _stale(claim: dict, obj: dict, kind: tuple[str, str]) -> bool:
    first = next((r for r in _refs(claim) if _names(r, obj, kind)), None)
    return first is not None and first.get("uid") != obj["metadata"]["uid"]


def _other_controller(claim: dict, sts: dict, pod: dict) -> bool:
    if retention(sts) == ("Retain", "Retain"):
        return False  # nothing of ours to enforce: whoever manages the claim may
    for ref in _refs(claim):
        for obj, kind in ((sts, SET_KIND), (pod, POD_KIND)):
            if _names(ref, obj, kind):
                if ref.get("uid") != obj["metadata"]["uid"]:
                    return True
                break
        else:
            if ref.get("controller"):
                return True
    return False


def _wanted_owners(sts: dict, pod: dict, ordinal: int) -> tuple[bool, bool]:
    """(set owns it, pod owns it) as the policy wants."""
    when_deleted, when_scaled = retention(sts)
    scaled_down = not in_ordinal_range(sts, ordinal)
    if when_scaled == "Delete":
        return when_deleted == "Delete" and not scaled_down, scaled_down
    return when_deleted == "Delete", False


def owner_refs_up_to_date(claim: dict, sts: dict, pod: dict, ordinal: int) -> bool:
    if _stale(claim, sts, SET_KIND) or _stale(claim, pod, POD_KIND):
        return True  # left by an earlier set or pod of the same name: not ours to touch
    if _other_controller(claim, sts, pod):
        return not (_owned_by(claim, sts) or _owned_by(claim, pod))
    for ref in _refs(claim):
        if ref.get("uid") in (sts["metadata"]["uid"], pod["metadata"]["uid"]) and not ref.get("controller"):
            return False  # ours, but not as controller: rewrite it
    set_owns, pod_owns = _wanted_owners(sts, pod, ordinal)
    return _owned_by(claim, sts) == set_owns and _owned_by(claim, pod) == pod_owns


def updated_owner_refs(claim: dict, sts: dict, pod: dict, ordinal: int) -> list[dict]:
    """The claim's ownerReferences with the set's and pod's as the policy wants them."""
    other_controller = _other_controller(claim, sts, pod)
    refs = [r for r in _refs(claim) if not (_names(r, sts, SET_KIND) or _names(r, pod, POD_KIND))]
    if other_controller:
        return refs
    set_owns, pod_owns = _wanted_owners(sts, pod, ordinal)
    if set_owns:
        refs.append(new_controller_ref(sts, *SET_KIND))
    if pod_owns:
        refs.append(new_controller_ref(pod, *POD_KIND))
    return refs
