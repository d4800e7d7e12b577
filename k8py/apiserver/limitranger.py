"""LimitRanger admission: a namespace's LimitRanges give pod containers their
default requests and limits, and refuse pods outside the ranges.

As upstream's plugin: for items of type Container, missing limits come from
`default` and missing requests from `defaultRequest`; then every container
must stay within `min`/`max` (requests and limits), and within
`maxLimitRequestRatio`; items of type Pod bound the sums over containers.
"""

from __future__ import annotations

from fractions import Fraction

from k8py.api.defaults.strategies import pod_qos_class
from k8py.apimachinery import quantity
from k8py.apimachinery import errors


def _value(text) -> Fraction:
    return quantity.parse(str(text)).value


def _containers(spec: dict) -> list[dict]:
    return [c for key in ("initContainers", "containers") for c in spec.get(key) or [] if isinstance(c, dict)]


def _apply_defaults(container: dict, item: dict) -> None:
    resources = container.setdefault("resources", {})
    for field, source in (("limits", "default"), ("requests", "defaultRequest")):
        for name, value in (item.get(source) or {}).items():
            if name not in (resources.get(field) or {}):
                resources.setdefault(field, {})[name] = value


def _check(kind: str, requests: dict, limits: dict, item: dict) -> list[str]:
    problems = []
    for name, low in (item.get("min") or {}).items():
        if name not in requests:
            problems.append(f"minimum {name} usage per {kind} is {low}.  No request is specified")
        elif _value(requests[name]) < _value(low):
            problems.append(f"minimum {name} usage per {kind} is {low}, but request is {requests[name]}")
        elif name in limits and _value(limits[name]) < _value(low):
            problems.append(f"minimum {name} usage per {kind} is {low}, but limit is {limits[name]}")
    for name, high in (item.get("max") or {}).items():
        if name not in limits:
            problems.append(f"maximum {name} usage per {kind} is {high}.  No limit is specified")
        elif _value(limits[name]) > _value(high):
            problems.append(f"maximum {name} usage per {kind} is {high}, but limit is {limits[name]}")
        elif name in requests and _value(requests[name]) > _value(high):
            problems.append(f"maximum {name} usage per {kind} is {high}, but request is {requests[name]}")
    for name, ratio in (item.get("maxLimitRequestRatio") or {}).items():
        if name in limits and name in requests and _value(requests[name]) > 0:
            actual = _value(limits[name]) / _value(requests[name])
            if actual > _value(ratio):
                problems.append(f"{name} max limit to request ratio per {kind} is {ratio}, but provided ratio "
                                f"is {float(actual):f}")
    return problems


def _pod_sum(containers: list[dict], field: str) -> dict:
    """The containers' quantities summed per resource, printed as upstream's Quantity.Add leaves them."""
    total: dict[str, quantity.Quantity] = {}
    for c in containers:
        for name, value in ((c.get("resources") or {}).get(field) or {}).items():
            total[name] = quantity.add(total.get(name, quantity.ZERO), quantity.parse(str(value)))
    return {name: quantity.canonical(q) for name, q in total.items()}


def admit_pod(api, pod: dict) -> None:
    namespace = pod["metadata"].get("namespace", "")
    store = api.objects_for("", "v1", "limitranges")
    ranges = [c.obj for c in store.cache.list(store.resource.key_prefix(namespace))[0]]
    items = [i for r in ranges for i in (r.get("spec") or {}).get("limits") or []]
    if not items:
        return
    spec = pod["spec"]
    containers = _containers(spec)
    for item in items:
        if item.get("type") == "Container":
            for container in containers:
                _apply_defaults(container, item)
    problems = []
    for item in items:
        if item.get("type") == "Container":
            for container in containers:
                resources = container.get("resources") or {}
                problems += _check("Container", resources.get("requests") or {}, resources.get("limits") or {}, item)
        elif item.get("type") == "Pod":
            regular = [c for c in spec.get("containers") or [] if isinstance(c, dict)]
            problems += _check("Pod", _pod_sum(regular, "requests"), _pod_sum(regular, "limits"), item)
    if problems:
        name = pod["metadata"].get("name", "")
        reason = problems[0] if len(problems) == 1 else f'[{", ".join(problems)}]'
        raise errors.StatusError(403, "Forbidden", f'pods "{name}" is forbidden: {reason}', name=name, kind="pods")
    pod.setdefault("status", {})["qosClass"] = pod_qos_class(pod)


def _claim_problems(requests: dict, item: dict) -> list[str]:
    """Items of type PersistentVolumeClaim bound a claim's requests (upstream's
    minConstraint and maxRequestConstraint; quantities printed canonically)."""
    kind = "PersistentVolumeClaim"
    problems = []
    for name, low in (item.get("min") or {}).items():
        if name not in requests:
            problems.append(f"minimum {name} usage per {kind} is {quantity.canonical_text(low)}.  "
                            "No request is specified")
        elif _value(requests[name]) < _value(low):
            problems.append(f"minimum {name} usage per {kind} is {quantity.canonical_text(low)}, but request is "
                            f"{quantity.canonical_text(requests[name])}")
    for name, high in (item.get("max") or {}).items():
        if name not in requests:
            problems.append(f"maximum {name} usage per {kind} is {quantity.canonical_text(high)}.  "
                            "No request is specified")
        elif _value(requests[name]) > _value(high):
            problems.append(f"maximum {name} usage per {kind} is {quantity.canonical_text(high)}, but request is "
                            f"{quantity.canonical_text(requests[name])}")
    return problems


def admit_claim(api, claim: dict) -> None:
    """A claim created or updated outside its namespace's PersistentVolumeClaim ranges is refused."""
    namespace = claim["metadata"].get("namespace", "")
    store = api.objects_for("", "v1", "limitranges")
    ranges = [c.obj for c in store.cache.list(store.resource.key_prefix(namespace))[0]]
    requests = ((claim.get("spec") or {}).get("resources") or {}).get("requests") or {}
    problems = [p for r in ranges for item in (r.get("spec") or {}).get("limits") or []
                if item.get("type") == "PersistentVolumeClaim" for p in _claim_problems(requests, item)]
    if problems:
        name = claim["metadata"].get("name", "")
        reason = problems[0] if len(problems) == 1 else f'[{", ".join(problems)}]'
        raise errors.StatusError(403, "Forbidden", f'persistentvolumeclaims "{name}" is forbidden: {reason}',
                                 name=name, kind="persistentvolumeclaims")
