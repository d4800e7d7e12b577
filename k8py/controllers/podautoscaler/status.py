"""HPA status: conditions that keep their transition time while their status holds."""

from __future__ import annotations

from k8py.apimachinery.meta import now as utc_now, rfc3339

ABLE_TO_SCALE = "AbleToScale"
SCALING_ACTIVE = "ScalingActive"
SCALING_LIMITED = "ScalingLimited"


def set_condition(hpa: dict, kind: str, status: bool, reason: str, message: str) -> None:
    conditions = hpa.setdefault("status", {}).setdefault("conditions", [])
    text = "True" if status else "False"
    for cond in conditions:
        if cond.get("type") == kind:
            if cond.get("status") != text:
                cond["lastTransitionTime"] = rfc3339(utc_now())
            cond.update(status=text, reason=reason, message=message)
            return
    conditions.append({"type": kind, "status": text, "lastTransitionTime": rfc3339(utc_now()),
                       "reason": reason, "message": message})


def set_replicas_and_metrics(hpa: dict, current: int, desired: int, metrics: list[dict] | None,
                             rescaled: bool) -> None:
    """status.currentReplicas/desiredReplicas/currentMetrics, and lastScaleTime on a rescale."""
    status = hpa.setdefault("status", {})
    status["currentReplicas"] = current
    status["desiredReplicas"] = desired
    if metrics:
        status["currentMetrics"] = metrics
    else:
        status.pop("currentMetrics", None)
    if rescaled:
        status["lastScaleTime"] = rfc3339(utc_now())
