"""scheduling.k8s.io/v1 defaults (pkg/apis/scheduling/v1/defaults.go)."""

from __future__ import annotations


def default_priority_class(obj: dict) -> None:
    if obj.get("preemptionPolicy") is None:
        obj["preemptionPolicy"] = "PreemptLowerPriority"


DEFAULTERS = {"PriorityClass": default_priority_class}
