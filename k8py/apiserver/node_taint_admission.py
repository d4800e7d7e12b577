"""TaintNodesByCondition admission: a new Node starts with node.kubernetes.io/not-ready:NoSchedule.

Nothing is scheduled onto a node before the node lifecycle controller has seen
its Ready condition True and taken the taint off (upstream's default plugin).
"""

from __future__ import annotations

NOT_READY_NO_SCHEDULE = {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}


def admit_create(resource, obj: dict) -> None:
    if (resource.group, resource.kind) != ("", "Node"):
        return
    spec = obj.setdefault("spec", {})
    taints = spec.get("taints")
    if taints is not None and not isinstance(taints, list):
        return    # validation reports it
    taints = list(taints or [])
    if not any(isinstance(t, dict) and t.get("key") == NOT_READY_NO_SCHEDULE["key"]
               and t.get("effect") == "NoSchedule" for t in taints):
        taints.append(dict(NOT_READY_NO_SCHEDULE))
    spec["taints"] = taints
