"""StorageObjectInUseProtection admission: every new PersistentVolumeClaim gets the
`kubernetes.io/pvc-protection` finalizer and every new PersistentVolume the
`kubernetes.io/pv-protection` one, so that deleting one still in use leaves it
Terminating until the protection controllers see it unused."""

from __future__ import annotations

from k8py.api.registry import Resource

FINALIZERS = {("", "PersistentVolumeClaim"): "kubernetes.io/pvc-protection",
              ("", "PersistentVolume"): "kubernetes.io/pv-protection"}


def admit_create(resource: Resource, obj: dict) -> None:
    finalizer = FINALIZERS.get((resource.group, resource.kind))
    if finalizer is None:
        return
    meta = obj.setdefault("metadata", {})
    finalizers = meta.get("finalizers") or []
    if finalizer not in finalizers:
        meta["finalizers"] = [*finalizers, finalizer]
