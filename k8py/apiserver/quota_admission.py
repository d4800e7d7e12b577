"""ResourceQuota admission: a create (or a claim's growth) that would take a
namespace past one of its quotas' hard limits is refused (403 "exceeded
quota"), as upstream's ResourceQuota plugin does. Usage is counted live from the watch cache, so a
quota holds even before the controller has written its status."""

from __future__ import annotations

import asyncio
import weakref

from k8py.api import quota as usage
from k8py.api.registry import Resource
from k8py.apimachinery import errors, quantity


_locks: "weakref.WeakKeyDictionary[object, dict[str, asyncio.Lock]]" = weakref.WeakKeyDictionary()


def _quotas(api, namespace: str) -> list[dict]:
    store = api.objects_for("", "v1", "resourcequotas")
    return [c.obj for c in store.cache.list(store.resource.key_prefix(namespace))[0]]


def namespace_lock(api, resource: Resource, namespace: str) -> asyncio.Lock | None:
    """Creates in a namespace with quotas are admitted and written one at a
    time, so two concurrent ones cannot both take the last unit of a quota."""
    if not resource.namespaced or resource.custom or not namespace or not _quotas(api, namespace):
        return None
    return _locks.setdefault(api, {}).setdefault(namespace, asyncio.Lock())


def admit_create(api, resource: Resource, obj: dict) -> None:
    if not resource.namespaced or resource.custom:
        return
    namespace = obj["metadata"].get("namespace", "")
    quotas = _quotas(api, namespace)
    if not quotas:
        return
    store = api.objects(resource)
    existing = None
    for quota in quotas:
        added = usage.usage_of(obj, resource.group, resource.plural, quota)
        if not any(q.value for q in added.values()):
            continue
        if existing is None:
            existing = [c.obj for c in store.cache.list(resource.key_prefix(namespace))[0]]
        used = usage.total_usage(quota, {(resource.group, resource.plural): existing})
        _refuse_if_over(resource, obj, quota, used, added)


def admit_update(api, resource: Resource, new: dict, old: dict, subresource: str) -> None:
    """A claim that grows is charged the difference (upstream charges updates by their delta;
    the other kinds k8py counts cannot grow in place)."""
    if (resource.group, resource.plural) != usage.CLAIMS or subresource:
        return
    namespace = new["metadata"].get("namespace", "")
    quotas = _quotas(api, namespace)
    existing = None
    for quota in quotas:
        before = usage.usage_of(old, resource.group, resource.plural, quota)
        added = {r: quantity.subtract(q, before[r]) if r in before else q
                 for r, q in usage.usage_of(new, resource.group, resource.plural, quota).items()}
        added = {r: q for r, q in added.items() if q.value > 0}
        if not added:
            continue
        if existing is None:
            store = api.objects(resource)
            existing = [c.obj for c in store.cache.list(resource.key_prefix(namespace))[0]]
        used = usage.total_usage(quota, {(resource.group, resource.plural): existing})
        _refuse_if_over(resource, new, quota, used, added)


def _refuse_if_over(resource: Resource, obj: dict, quota: dict, used: dict, added: dict) -> None:
    over = usage.exceeded(quota, used, added)
    if over:
        # Named as upstream's admission names objects not yet named: by their generateName.
        name = obj["metadata"].get("generateName") or obj["metadata"].get("name", "")
        requested = ",".join(f"{r}={req}" for r, req, _, _ in over)
        current = ",".join(f"{r}={u}" for r, _, u, _ in over)
        limited = ",".join(f"{r}={lim}" for r, _, _, lim in over)
        raise errors.StatusError(
            403, "Forbidden",
            f'{resource.group_resource} "{name}" is forbidden: exceeded quota: {quota["metadata"]["name"]}, '
            f"requested: {requested}, used: {current}, limited: {limited}",
            name=name, group=resource.group, kind=resource.plural)
