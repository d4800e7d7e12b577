"""DefaultStorageClass admission: a new PersistentVolumeClaim that names no class
(neither `spec.storageClassName` nor the beta annotation) gets the default
StorageClass's name. Claims that say `storageClassName: ""` keep it: they
asked for class-less volumes. Only creation is admitted, as upstream; claims
made while no class was default get one later from the PV controller
(retroactive default class assignment)."""

from __future__ import annotations

from k8py.api.registry import Resource
from k8py.api.storageclass import claim_has_class, default_class


def admit_create(api, resource: Resource, obj: dict) -> None:
    if (resource.group, resource.kind) != ("", "PersistentVolumeClaim") or claim_has_class(obj):
        return
    store = api.objects_for("storage.k8s.io", "v1", "storageclasses")
    classes = [c.obj for c in store.cache.list(store.resource.key_prefix(""))[0]]
    chosen = default_class(classes)
    if chosen is not None:
        obj.setdefault("spec", {})["storageClassName"] = chosen["metadata"]["name"]
