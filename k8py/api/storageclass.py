"""StorageClass facts shared by the API server's admission and the controllers:
which class is the cluster default, and whether a claim already names a class.

Upstream: `pkg/volume/util.GetDefaultClass` and
`storage/v1/helper.PersistentVolumeClaimHasClass`."""

from __future__ import annotations

IS_DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"
BETA_IS_DEFAULT_CLASS = "storageclass.beta.kubernetes.io/is-default-class"
BETA_STORAGE_CLASS = "volume.beta.kubernetes.io/storage-class"


def is_default(storage_class: dict) -> bool:
    annotations = (storage_class.get("metadata") or {}).get("annotations") or {}
    return annotations.get(IS_DEFAULT_CLASS) == "true" or annotations.get(BETA_IS_DEFAULT_CLASS) == "true"


def default_class(classes: list[dict]) -> dict | None:
    """The default class; with several, the newest (then the first by name), as upstream
    since v1.26 so that adding a new default takes over without removing the old mark."""
    defaults = [c for c in classes if is_default(c)]
    if not defaults:
        return None
    # RFC 3339 timestamps in UTC sort as strings; newest first, then name ascending.
    defaults.sort(key=lambda c: c["metadata"]["name"])
    defaults.sort(key=lambda c: c["metadata"].get("creationTimestamp") or "", reverse=True)
    return defaults[0]


def claim_has_class(claim: dict) -> bool:
    """The user asked for a class: the beta annotation is present or spec.storageClassName is
    set at all (`""` counts: it asks for volumes without a class)."""
    annotations = (claim.get("metadata") or {}).get("annotations") or {}
    if BETA_STORAGE_CLASS in annotations:
        return True
    return (claim.get("spec") or {}).get("storageClassName") is not None
