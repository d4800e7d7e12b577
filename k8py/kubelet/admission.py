"""Pod admission on the node: a pod bound here that can't fit is rejected, as the kubelet does.

Pods bound by hand (spec.nodeName, no scheduler) are checked against the
node's allocatable minus what admitted pods request, its pod limit and its
labels; a rejected pod turns Failed with reason OutOf<resource> or NodeAffinity.
"""

from __future__ import annotations

from k8py.kubelet import quantity

CHECKED = ("cpu", "memory", "ephemeral-storage")


def pod_requests(pod: dict) -> dict[str, int]:
    """Effective requests: the larger of the app containers' sum and any one init container
    (cpu in millicores, the rest in bytes)."""
    spec = pod.get("spec") or {}

    def of(c: dict) -> dict[str, int]:
        res = c.get("resources") or {}
        req = {**(res.get("limits") or {}), **(res.get("requests") or {})}
        out = {}
        for k in CHECKED:
            if req.get(k) is not None:
                out[k] = quantity.millicores(req[k]) if k == "cpu" else quantity.to_int(req[k])
        return out
    total: dict[str, int] = {}
    for c in spec.get("containers") or []:
        for k, v in of(c).items():
            total[k] = total.get(k, 0) + v
    for c in spec.get("initContainers") or []:
        for k, v in of(c).items():
            total[k] = max(total.get(k, 0), v)
    for k, v in (spec.get("overhead") or {}).items():
        if k in CHECKED:
            total[k] = total.get(k, 0) + (quantity.millicores(v) if k == "cpu" else quantity.to_int(v))
    return total


def admit(pod: dict, admitted: list[dict], node: dict) -> tuple[str, str] | None:
    """None when the pod fits, else (reason, message) for its Failed status."""
    allocatable = (node.get("status") or {}).get("allocatable") or {}
    labels = (node.get("metadata") or {}).get("labels") or {}
    selector = (pod.get("spec") or {}).get("nodeSelector") or {}
    if any(labels.get(k) != v for k, v in selector.items()):
        return "NodeAffinity", "Pod was rejected: Predicate NodeAffinity failed"
    if allocatable.get("pods") is not None and len(admitted) + 1 > quantity.to_int(allocatable["pods"]):
        cap = quantity.to_int(allocatable["pods"])
        return "OutOfpods", (f"Pod was rejected: Node didn't have enough resource: pods, requested: 1, "
                             f"used: {len(admitted)}, capacity: {cap}")
    wanted = pod_requests(pod)
    used: dict[str, int] = {}
    for other in admitted:
        for k, v in pod_requests(other).items():
            used[k] = used.get(k, 0) + v
    for k in CHECKED:
        if not wanted.get(k) or allocatable.get(k) is None:
            continue
        cap = quantity.millicores(allocatable[k]) if k == "cpu" else quantity.to_int(allocatable[k])
        if wanted[k] + used.get(k, 0) > cap:
            return f"OutOf{k}", (f"Pod was rejected: Node didn't have enough resource: {k}, requested: "
                                 f"{wanted[k]}, used: {used.get(k, 0)}, capacity: {cap}")
    return None
