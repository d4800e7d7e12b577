"""storage.k8s.io/v1 defaults (pkg/apis/storage/v1/defaults.go)."""

from __future__ import annotations

from k8py.api.defaults.core import _ensure


def default_storage_class(obj: dict) -> None:
    if obj.get("reclaimPolicy") is None:
        obj["reclaimPolicy"] = "Delete"
    if obj.get("volumeBindingMode") is None:
        obj["volumeBindingMode"] = "Immediate"


def default_csi_driver(obj: dict) -> None:
    spec = _ensure(obj, "spec")
    if spec is None:
        return
    for key, value in (("attachRequired", True), ("podInfoOnMount", False), ("storageCapacity", False),
                       ("fsGroupPolicy", "ReadWriteOnceWithFSType"), ("requiresRepublish", False)):
        if spec.get(key) is None:
            spec[key] = value
    if not spec.get("volumeLifecycleModes"):
        spec["volumeLifecycleModes"] = ["Persistent"]


DEFAULTERS = {"StorageClass": default_storage_class, "CSIDriver": default_csi_driver}
