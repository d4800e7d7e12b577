"""Validation of writes, as the v1.32 apiserver's strategies validate them.

    validate_create(resource, obj) -> list[Cause]
    validate_update(resource, new, old, subresource="") -> list[Cause]   # "status", "ephemeralcontainers"
    validate_status_update(resource, new, old) -> list[Cause]

Objects arrive defaulted and prepared (see `k8py.api.defaults`). Each cause
carries upstream's field path, message and reason, in upstream's order, so
`errors.invalid()` builds the same 422 a Go apiserver sends.

As in the generic registry (k8s.io/apiserver rest.BeforeCreate/BeforeUpdate):
on create the kind's own checks run first and, only if they pass, the
generic ObjectMeta checks (names as URL path segments); on update the generic
ObjectMeta checks run first, then the kind's. Causes that are exact
repeats (upstream reports some twice and de-duplicates them only in the
message) are dropped.

Values of the wrong type never raise: they read as absent and are left to
the decoding stage, which reports type errors before validation runs.
"""

from __future__ import annotations

import logging

from k8py.api.registry import Resource
from k8py.api.validation import (apiextensions, apps, autoscaling, batch, coordination, core, discovery, names,
                                 networking, policy, rbac, scheduling, storage)
from k8py.api.validation.field import internal, path
from k8py.api.validation.meta import dedupe, validate_object_meta, validate_object_meta_update
from k8py.apimachinery.errors import Cause

log = logging.getLogger(__name__)

_GROUPS = {
    "": core,
    "apps": apps,
    "batch": batch,
    "autoscaling": autoscaling,
    "networking.k8s.io": networking,
    "rbac.authorization.k8s.io": rbac,
    "storage.k8s.io": storage,
    "scheduling.k8s.io": scheduling,
    "policy": policy,
    "coordination.k8s.io": coordination,
    "discovery.k8s.io": discovery,
    "apiextensions.k8s.io": apiextensions,
}
# events.k8s.io Events are stored, and validated, as core/v1 Events
_ALIASES = {("events.k8s.io", "Event"): ("", "Event")}


def _table(resource: Resource, name: str) -> object | None:
    group, kind = _ALIASES.get((resource.group, resource.kind), (resource.group, resource.kind))
    module = _GROUPS.get(group)
    if module is None:
        return None
    return getattr(module, name).get(kind)


def _run(fn, *args) -> list:
    try:
        return list(fn(*args))
    except Exception:  # a bug here must not turn a bad request into a 500
        log.exception("validation of %s failed", getattr(fn, "__name__", fn))
        return [internal(path(""), "validation failed unexpectedly")]


def _generic_meta(resource: Resource, obj: dict) -> list:
    return validate_object_meta(obj, resource.namespaced, names.path_segment_name, kube_finalizers=False)


def validate_create(resource: Resource, obj: dict) -> list[Cause]:
    if not isinstance(obj, dict):
        return [internal(path(""), "object is not a JSON object")]
    fn = _table(resource, "CREATE")
    causes = _run(fn, obj) if fn else []
    if not causes:
        causes = _run(_generic_meta, resource, obj)
    return dedupe(causes)


def _common_update(resource: Resource, new: dict, old: dict) -> list:
    return (validate_object_meta(new, resource.namespaced, names.path_segment_name, kube_finalizers=False)
            + validate_object_meta_update(new, old, kube_finalizers=False))


def validate_update(resource: Resource, new: dict, old: dict, subresource: str = "") -> list[Cause]:
    if subresource == "status":
        return validate_status_update(resource, new, old)
    if subresource == "ephemeralcontainers" and (resource.group, resource.kind) == ("", "Pod"):
        if not isinstance(new, dict) or not isinstance(old, dict):
            return [internal(path(""), "object is not a JSON object")]
        from k8py.api.validation.pods import validate_ephemeral_containers_update
        causes = _run(_common_update, resource, new, old) + _run(validate_ephemeral_containers_update, new, old)
        return dedupe(causes)
    if not isinstance(new, dict) or not isinstance(old, dict):
        return [internal(path(""), "object is not a JSON object")]
    causes = _run(_common_update, resource, new, old)
    fn = _table(resource, "UPDATE")
    if fn is not None:
        causes += _run(fn, new, old)
    return dedupe(causes)


def validate_status_update(resource: Resource, new: dict, old: dict) -> list[Cause]:
    if not isinstance(new, dict) or not isinstance(old, dict):
        return [internal(path(""), "object is not a JSON object")]
    causes = _run(_common_update, resource, new, old)
    fn = _table(resource, "STATUS_UPDATE")
    if fn is not None:
        causes += _run(fn, new, old)
    else:
        causes += _run(validate_object_meta_update, new, old)
    return dedupe(causes)


__all__ = ["validate_create", "validate_update", "validate_status_update"]
