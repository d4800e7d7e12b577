"""Defaulting and the strategies' preparation of writes, in wire (JSON) form.

    apply_defaults(resource, obj)             # what decoding applies (SetDefaults_*)
    prepare_create(resource, obj)             # PrepareForCreate
    prepare_update(resource, new, old)        # PrepareForUpdate of the main resource
    prepare_status_update(resource, new, old) # PrepareForUpdate of /status
    prepare_ephemeral_containers_update(resource, new, old)  # pods/ephemeralcontainers

All of them mutate in place and tolerate malformed input (wrong types are left
alone for validation to report). `resource` is the storage Resource
(group and kind decide what applies).

Upstream defaults every object each time it is decoded, including when it
is read back from etcd; `prepare_create` therefore re-applies the defaults
after the strategy's changes, so the object stored is the one a client
would read back (a Job picks up its template's generated labels this way).
"""

from __future__ import annotations

import copy

from k8py.api.defaults import apps, autoscaling, batch, core, discovery, networking, rbac, scheduling, storage
from k8py.api.defaults import strategies
from k8py.api.defaults.strategies import pod_qos_class

_GROUPS = {
    "": core,
    "apps": apps,
    "batch": batch,
    "autoscaling": autoscaling,
    "networking.k8s.io": networking,
    "rbac.authorization.k8s.io": rbac,
    "storage.k8s.io": storage,
    "scheduling.k8s.io": scheduling,
    "discovery.k8s.io": discovery,
}
_ALIASES = {("events.k8s.io", "Event"): ("", "Event")}


def _key(resource) -> tuple[str, str]:
    return _ALIASES.get((resource.group, resource.kind), (resource.group, resource.kind))


def apply_defaults(resource, obj: dict) -> None:
    if not isinstance(obj, dict):
        return
    group, kind = _key(resource)
    module = _GROUPS.get(group)
    fn = module.DEFAULTERS.get(kind) if module is not None else None
    if fn is not None:
        fn(obj)


class _Key:
    def __init__(self, group: str, kind: str):
        self.group, self.kind = group, kind


def prepare_create(resource, obj: dict) -> None:
    if not isinstance(obj, dict):
        return
    key = _Key(*_key(resource))
    strategies.prepare_create(key, obj)
    apply_defaults(resource, obj)


def prepare_update(resource, new: dict, old: dict) -> None:
    if not isinstance(new, dict) or not isinstance(old, dict):
        return
    strategies.prepare_update(_Key(*_key(resource)), new, old)
    apply_defaults(resource, new)


def prepare_status_update(resource, new: dict, old: dict) -> None:
    if not isinstance(new, dict) or not isinstance(old, dict):
        return
    strategies.prepare_status_update(_Key(*_key(resource)), new, old)
    apply_defaults(resource, new)


def prepare_ephemeral_containers_update(resource, new: dict, old: dict) -> None:
    """Only spec.ephemeralContainers (and identity metadata) may change through
    pods/ephemeralcontainers: everything else is taken from the stored pod."""
    if not isinstance(new, dict) or not isinstance(old, dict):
        return
    kept = copy.deepcopy(old)
    nm, km = new.get("metadata") if isinstance(new.get("metadata"), dict) else {}, kept.setdefault("metadata", {})
    for key in ("name", "namespace", "resourceVersion", "uid"):
        if key in nm:
            km[key] = nm[key]
    spec = kept.setdefault("spec", {})
    new_spec = new.get("spec") if isinstance(new.get("spec"), dict) else {}
    if new_spec.get("ephemeralContainers") is not None:
        spec["ephemeralContainers"] = new_spec["ephemeralContainers"]
    else:
        spec.pop("ephemeralContainers", None)
    new.clear()
    new.update(kept)
    apply_defaults(resource, new)


__all__ = ["prepare_ephemeral_containers_update", "apply_defaults", "prepare_create", "prepare_update", "prepare_status_update", "pod_qos_class"]
