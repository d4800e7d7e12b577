"""ResourceQuota usage: what a namespace's objects count against a quota.

Shared by the resourcequota controller (which writes status.used) and quota
admission in the API server (which refuses creates past status.hard), as
upstream's quota evaluators are. Only what a quota's `hard` names is counted.

- object counts: `pods`, `services`, `secrets`, `configmaps`,
  `replicationcontrollers`, `resourcequotas`, `persistentvolumeclaims`,
  `services.nodeports`, `services.loadbalancers`, and `count/<plural>[.<group>]`;
- pod compute resources: `cpu`/`requests.cpu`, `memory`/`requests.memory`,
  `limits.cpu`, `limits.memory` (and the same for ephemeral-storage), summed
  over the pods that are not finished;
- claim storage: `requests.storage`, and per StorageClass
  `<class>.storageclass.storage.k8s.io/requests.storage` and
  `<class>.storageclass.storage.k8s.io/persistentvolumeclaims` (a claim counts
  the larger of its request and `status.allocatedResources`, as upstream);
- scopes (pods only): Terminating / NotTerminating (activeDeadlineSeconds),
  BestEffort / NotBestEffort (QoS class).
"""

from __future__ import annotations

from fractions import Fraction

from k8py.api.defaults.strategies import pod_qos_class
from k8py.api.volume_matching import claim_class
from k8py.apimachinery import quantity

# quota resource name -> (group, plural) whose objects it counts
COUNTED = {"pods": ("", "pods"), "services": ("", "services"), "secrets": ("", "secrets"),
           "configmaps": ("", "configmaps"), "replicationcontrollers": ("", "replicationcontrollers"),
           "resourcequotas": ("", "resourcequotas"), "persistentvolumeclaims": ("", "persistentvolumeclaims"),
           "services.nodeports": ("", "services"), "services.loadbalancers": ("", "services")}
POD_COMPUTE = {"cpu": ("requests", "cpu"), "requests.cpu": ("requests", "cpu"),
               "memory": ("requests", "memory"), "requests.memory": ("requests", "memory"),
               "ephemeral-storage": ("requests", "ephemeral-storage"),
               "requests.ephemeral-storage": ("requests", "ephemeral-storage"),
               "limits.cpu": ("limits", "cpu"), "limits.memory": ("limits", "memory"),
               "limits.ephemeral-storage": ("limits", "ephemeral-storage")}
POD_SCOPES = {"Terminating", "NotTerminating", "BestEffort", "NotBestEffort"}
CLAIMS = ("", "persistentvolumeclaims")
CLASS_SUFFIX = ".storageclass.storage.k8s.io/"
CLASS_RESOURCES = ("requests.storage", "persistentvolumeclaims")


def _class_resource(name: str) -> tuple[str, str] | None:
    """(class, resource) of `<class>.storageclass.storage.k8s.io/<resource>`."""
    cls, sep, resource = name.partition(CLASS_SUFFIX)
    return (cls, resource) if sep and cls and resource in CLASS_RESOURCES else None


def counted_resource(name: str) -> tuple[str, str] | None:
    """(group, plural) of the objects a quota resource name counts, if it counts objects."""
    if name in COUNTED:
        return COUNTED[name]
    if name.startswith("count/"):
        plural, _, group = name[len("count/"):].partition(".")
        return group, plural
    if name in POD_COMPUTE:
        return "", "pods"
    if name == "requests.storage" or _class_resource(name):
        return CLAIMS
    return None


def _quantity(text) -> quantity.Quantity:
    q = quantity.try_parse(text)
    return q if q is not None else quantity.ZERO


def _count(n: int) -> quantity.Quantity:
    return quantity.Quantity(Fraction(n), quantity.DECIMAL_SI)


def pod_is_active(pod: dict) -> bool:
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")


def matches_scopes(pod: dict, scopes: list[str]) -> bool:
    spec = pod.get("spec") or {}
    for scope in scopes:
        terminating = spec.get("activeDeadlineSeconds") is not None
        best_effort = pod_qos_class(pod) == "BestEffort"
        if scope == "Terminating" and not terminating or scope == "NotTerminating" and terminating:
            return False
        if scope == "BestEffort" and not best_effort or scope == "NotBestEffort" and best_effort:
            return False
    return True


def pod_resources(pod: dict, field: str, name: str) -> quantity.Quantity:
    """Upstream's PodRequests/PodLimits: the containers' sum or the largest init container, plus overhead."""
    spec = pod.get("spec") or {}

    def of(container):
        return _quantity(((container.get("resources") or {}).get(field) or {}).get(name, 0))
    result = quantity.total(of(c) for c in spec.get("containers") or [])
    for init in spec.get("initContainers") or []:
        result = quantity.largest(result, of(init))
    return quantity.add(result, _quantity((spec.get("overhead") or {}).get(name, 0)))


def claim_storage(claim: dict) -> quantity.Quantity:
    """A claim's storage for quota: the larger of its request and what is allocated to it."""
    requested = _quantity((((claim.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage", 0))
    allocated = _quantity(((claim.get("status") or {}).get("allocatedResources") or {}).get("storage", 0))
    return quantity.largest(requested, allocated)


def _claim_usage(claim: dict, resource: str) -> quantity.Quantity | None:
    if resource == "requests.storage":
        return claim_storage(claim)
    per_class = _class_resource(resource)
    if per_class is None:
        return _count(1)
    cls, what = per_class
    if claim_class(claim) != cls:
        return None
    return claim_storage(claim) if what == "requests.storage" else _count(1)


def usage_of(obj: dict, group: str, plural: str, quota: dict) -> dict[str, quantity.Quantity]:
    """What one object adds to each resource the quota limits."""
    scopes = (quota.get("spec") or {}).get("scopes") or []
    hard = (quota.get("spec") or {}).get("hard") or {}
    if plural == "pods" and group == "" and (not pod_is_active(obj) or not matches_scopes(obj, scopes)):
        return {}
    if scopes and (group, plural) != ("", "pods"):
        return {}
    used: dict[str, quantity.Quantity] = {}
    for resource in hard:
        target = counted_resource(resource)
        if target != (group, plural):
            continue
        if resource in POD_COMPUTE:
            field, name = POD_COMPUTE[resource]
            used[resource] = pod_resources(obj, field, name)
        elif target == CLAIMS:
            value = _claim_usage(obj, resource)
            if value is not None:
                used[resource] = value
        elif resource == "services.nodeports":
            if (obj.get("spec") or {}).get("type") in ("NodePort", "LoadBalancer"):
                used[resource] = _count(len((obj.get("spec") or {}).get("ports") or []))
        elif resource == "services.loadbalancers":
            if (obj.get("spec") or {}).get("type") == "LoadBalancer":
                used[resource] = _count(1)
        else:
            used[resource] = _count(1)
    return used


def total_usage(quota: dict, objects: dict[tuple[str, str], list[dict]]) -> dict[str, str]:
    """status.used for a quota, given the namespace's objects by (group, plural)."""
    hard = (quota.get("spec") or {}).get("hard") or {}
    totals = {resource: quantity.ZERO for resource in hard}
    for (group, plural), items in objects.items():
        for obj in items:
            if (obj.get("metadata") or {}).get("deletionTimestamp") and (group, plural) != ("", "pods"):
                continue
            for resource, value in usage_of(obj, group, plural, quota).items():
                totals[resource] = quantity.add(totals[resource], value)
    return {resource: quantity.canonical(value) for resource, value in totals.items()}


def exceeded(quota: dict, used: dict[str, str],
             added: dict[str, quantity.Quantity]) -> list[tuple[str, str, str, str]]:
    """(resource, requested, used, limited) for each limit the addition would pass."""
    hard = (quota.get("spec") or {}).get("hard") or {}
    over = []
    for resource, value in sorted(added.items()):
        if resource not in hard or value.value == 0:
            continue
        current = _quantity(used.get(resource, 0))
        if quantity.add(current, value).value > _quantity(hard[resource]).value:
            over.append((resource, quantity.canonical(value), quantity.canonical(current),
                         quantity.canonical(_quantity(hard[resource]))))
    return over
