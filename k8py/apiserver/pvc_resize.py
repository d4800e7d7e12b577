"""PersistentVolumeClaimResize admission (a validating plugin, on by default upstream):
a claim's storage request may only grow when the claim is Bound and its
StorageClass (the same before and after, named by `spec.storageClassName` or
the beta annotation) says `allowVolumeExpansion: true`. Shrinking is the
validation's business (not below status.capacity)."""

from __future__ import annotations

from k8py.api.claim_size import requested
from k8py.api.registry import Resource
from k8py.api.volume_matching import claim_class
from k8py.apimachinery import errors

REFUSED = ("only dynamically provisioned pvc can be resized and the storageclass that provisions the pvc "
           "must support resize")


def _allows_expansion(api, new: dict, old: dict) -> bool:
    name = claim_class(new)
    if not name or name != claim_class(old):
        return False
    store = api.objects_for("storage.k8s.io", "v1", "storageclasses")
    found = store.get_cached("", name)
    return found is not None and found.obj.get("allowVolumeExpansion") is True


def admit_update(api, resource: Resource, new: dict, old: dict, subresource: str) -> None:
    if (resource.group, resource.kind) != ("", "PersistentVolumeClaim") or subresource:
        return
    if requested(new) <= requested(old):
        return
    name = new["metadata"].get("name", "")
    if ((old.get("status") or {}).get("phase")) != "Bound":
        reason = "Only bound persistent volume claims can be expanded"
    elif not _allows_expansion(api, new, old):
        reason = REFUSED
    else:
        return
    raise errors.StatusError(403, "Forbidden", f'persistentvolumeclaims "{name}" is forbidden: {reason}',
                             name=name, kind="persistentvolumeclaims")
