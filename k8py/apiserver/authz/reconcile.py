"""Create and reconcile the bootstrap RBAC policy at server start.

As upstream's RBAC post-start hook: a missing object is created; an existing
one annotated rbac.authorization.kubernetes.io/autoupdate="false" is left
alone; otherwise what it lacks is added and nothing is taken away: missing
labels and annotations, rules (by coverage, not by equality), aggregation
selectors, binding subjects. A binding whose roleRef differs (immutable) is
deleted and created again.
"""

from __future__ import annotations

import asyncio
import copy
import logging

from k8py.apimachinery import errors
from k8py.apiserver.objects import DeleteOptions
from k8py.apiserver.authz.policy import AUTOUPDATE, GROUP, bootstrap_objects
from k8py.apiserver.authz.rules import covers

log = logging.getLogger("k8py.apiserver.authz")

PLURALS = {"ClusterRole": "clusterroles", "ClusterRoleBinding": "clusterrolebindings", "Role": "roles",
           "RoleBinding": "rolebindings"}


def reconciled(expected: dict, existing: dict) -> dict | None:
    """The existing object with what expected adds, or None when nothing is missing (or autoupdate is off)."""
    if ((existing.get("metadata") or {}).get("annotations") or {}).get(AUTOUPDATE) == "false":
        return None
    result = copy.deepcopy(existing)
    metadata = result.setdefault("metadata", {})
    for field in ("labels", "annotations"):
        merged = {**(expected["metadata"].get(field) or {}), **(metadata.get(field) or {})}
        if merged != (metadata.get(field) or {}):
            metadata[field] = merged
    if expected["kind"] in ("ClusterRole", "Role"):
        _, missing = covers(existing.get("rules") or [], expected.get("rules") or [])
        if missing:
            result["rules"] = (existing.get("rules") or []) + _missing_rules(existing, expected)
        wanted = (expected.get("aggregationRule") or {}).get("clusterRoleSelectors") or []
        if wanted:
            rule = result.setdefault("aggregationRule", {})
            selectors = rule.setdefault("clusterRoleSelectors", [])
            selectors += [s for s in wanted if s not in selectors]
    else:
        subjects = result.get("subjects") or []
        added = [s for s in expected.get("subjects") or [] if not any(_same_subject(s, t) for t in subjects)]
        if added:
            result["subjects"] = subjects + added
    return None if result == existing else result


def _missing_rules(existing: dict, expected: dict) -> list[dict]:
    """Expected rules not wholly covered by the existing ones (whole rules, as they read in the policy)."""
    have = existing.get("rules") or []
    return [rule for rule in expected.get("rules") or [] if not covers(have, [rule])[0]]


def _same_subject(a: dict, b: dict) -> bool:
    return all(a.get(k, "") == b.get(k, "") for k in ("kind", "name", "namespace"))


# Bootstrap objects earlier k8py versions made and this one does not: deleted at start
# (only while they still carry the bootstrapping label), so no rights outlive them.
RETIRED = [("ClusterRoleBinding", "system:k8py:controller-manager"), ("ClusterRole", "system:k8py:controller-manager")]


async def reconcile_bootstrap_policy(api) -> None:
    # All at once: the store commits concurrent writes together, which keeps start-up fast.
    await asyncio.gather(*(_reconcile_logged(api, copy.deepcopy(o)) for o in bootstrap_objects()))
    for kind, name in RETIRED:
        store = api.objects_for(GROUP, "v1", PLURALS[kind])
        cached = store.get_cached("", name)
        if cached is not None and ((cached.obj.get("metadata") or {}).get("labels") or {}).get(
                "kubernetes.io/bootstrapping") == "rbac-defaults":
            await store.delete("", name, DeleteOptions())
            log.info("bootstrap policy: deleted retired %s %s", kind, name)


async def _reconcile_logged(api, expected: dict) -> None:
    try:
        await _reconcile_one(api, expected)
    except errors.StatusError as err:  # one bad object must not keep the server from starting
        log.warning("bootstrap policy: cannot reconcile %s %s: %s", expected["kind"],
                    expected["metadata"]["name"], err)


async def _reconcile_one(api, expected: dict) -> None:
    store = api.objects_for(GROUP, "v1", PLURALS[expected["kind"]])
    metadata = expected["metadata"]
    namespace, name = metadata.get("namespace", ""), metadata["name"]
    cached = store.get_cached(namespace, name)
    if cached is None:
        await _create(store, expected, namespace)
        return
    existing = cached.obj
    if expected["kind"].endswith("Binding") and existing.get("roleRef") != expected["roleRef"]:
        if ((existing.get("metadata") or {}).get("annotations") or {}).get(AUTOUPDATE) == "false":
            return
        await store.delete(namespace, name, DeleteOptions())
        await _create(store, expected, namespace)
        return
    update = reconciled(expected, existing)
    if update is not None:
        await store.update(namespace, name, update)
        log.info("bootstrap policy: reconciled %s %s", expected["kind"], name)


async def _create(store, obj: dict, namespace: str) -> None:
    try:
        await store.create(obj, namespace)
    except errors.StatusError as err:
        if err.code != 409:
            raise
