"""A pod's QoS class (Guaranteed, Burstable, BestEffort) from its requests and limits."""

from __future__ import annotations

from k8py.kubelet import quantity

_TRACKED = ("cpu", "memory")


def qos_class(pod: dict) -> str:
    spec = pod.get("spec") or {}
    containers = list(spec.get("containers") or []) + list(spec.get("initContainers") or [])
    requests: dict[str, object] = {}
    limits: dict[str, object] = {}
    guaranteed = True
    for c in containers:
        res = c.get("resources") or {}
        c_req = {k: v for k, v in (res.get("requests") or {}).items() if k in _TRACKED and _nonzero(v)}
        c_lim = {k: v for k, v in (res.get("limits") or {}).items() if k in _TRACKED and _nonzero(v)}
        requests.update(c_req)
        limits.update(c_lim)
        # Guaranteed needs both limits set on every container, with requests (defaulted
        # from limits) equal to them.
        if set(c_lim) != set(_TRACKED):
            guaranteed = False
        for k, v in c_req.items():
            if k in c_lim and quantity.parse(v) != quantity.parse(c_lim[k]):
                guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def _nonzero(value) -> bool:
    try:
        return quantity.parse(value) != 0
    except ValueError:
        return False
