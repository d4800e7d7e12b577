"""Conversion between served versions and the storage version of a kind.

Only kinds served in more than one shape need this: autoscaling/v1
HorizontalPodAutoscalers (stored as v2) and events.k8s.io/v1 Events (stored
as core/v1 Events). Converters take and return wire-form dicts.
"""

from __future__ import annotations

import copy

from k8py.api.registry import Resource

_CPU_ANNOTATION_METRICS = "autoscaling.alpha.kubernetes.io/metrics"


def _hpa_v1_to_v2(obj: dict) -> dict:
    out = copy.deepcopy(obj)
    out["apiVersion"] = "autoscaling/v2"
    # `spec: null` decodes to an empty spec, as a Go struct would.
    spec = out["spec"] = out.get("spec") or {}
    target = spec.pop("targetCPUUtilizationPercentage", None)
    if target is not None:
        spec["metrics"] = [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": target}}}]
    status = out.get("status")
    if isinstance(status, dict):
        current = status.pop("currentCPUUtilizationPercentage", None)
        if current is not None:
            status["currentMetrics"] = [{"type": "Resource", "resource": {
                "name": "cpu", "current": {"averageUtilization": current}}}]
    return out


def _hpa_v2_to_v1(obj: dict) -> dict:
    out = copy.deepcopy(obj)
    out["apiVersion"] = "autoscaling/v1"
    spec = out["spec"] = out.get("spec") or {}
    metrics = spec.pop("metrics", None) or []
    spec.pop("behavior", None)
    for metric in metrics:
        resource = metric.get("resource") or {}
        target = resource.get("target") or {}
        if (metric.get("type") == "Resource" and resource.get("name") == "cpu"
                and target.get("type") == "Utilization"):
            spec["targetCPUUtilizationPercentage"] = target.get("averageUtilization")
    status = out.get("status")
    if isinstance(status, dict):
        current_metrics = status.pop("currentMetrics", None) or []
        status.pop("conditions", None)
        for metric in current_metrics:
            resource = metric.get("resource") or {}
            if metric.get("type") == "Resource" and resource.get("name") == "cpu":
                value = (resource.get("current") or {}).get("averageUtilization")
                if value is not None:
                    status["currentCPUUtilizationPercentage"] = value
    return out


# events.k8s.io/v1 name -> core/v1 name, for the fields that only moved
_EVENT_RENAMES = {
    "regarding": "involvedObject",
    "note": "message",
    "deprecatedFirstTimestamp": "firstTimestamp",
    "deprecatedLastTimestamp": "lastTimestamp",
    "deprecatedCount": "count",
    "deprecatedSource": "source",
    "reportingController": "reportingComponent",
}


def _event_to_core(obj: dict) -> dict:
    out = {}
    for key, value in obj.items():
        out[_EVENT_RENAMES.get(key, key)] = copy.deepcopy(value)
    out["apiVersion"] = "v1"
    return out


def _event_from_core(obj: dict) -> dict:
    reverse = {v: k for k, v in _EVENT_RENAMES.items()}
    out = {}
    for key, value in obj.items():
        out[reverse.get(key, key)] = copy.deepcopy(value)
    out["apiVersion"] = "events.k8s.io/v1"
    return out


_TO_STORAGE = {
    ("autoscaling", "v1", "HorizontalPodAutoscaler"): _hpa_v1_to_v2,
    ("events.k8s.io", "v1", "Event"): _event_to_core,
}
_FROM_STORAGE = {
    ("autoscaling", "v1", "HorizontalPodAutoscaler"): _hpa_v2_to_v1,
    ("events.k8s.io", "v1", "Event"): _event_from_core,
}


def _retag(api_version: str, obj: dict) -> dict:
    """Custom resources convert with strategy None: only apiVersion changes."""
    out = dict(obj)
    out["apiVersion"] = api_version
    return out


def to_storage(resource: Resource, obj: dict) -> dict:
    if not resource.stores_elsewhere:
        return obj
    if resource.custom:
        return _retag(f"{resource.group}/{resource.stored_version}", obj)
    out = _TO_STORAGE[(resource.group, resource.version, resource.kind)](obj)
    out["kind"] = resource.kind
    return out


def from_storage(resource: Resource, obj: dict) -> dict:
    if not resource.stores_elsewhere:
        return obj
    if resource.custom:
        return _retag(resource.api_version, obj)
    out = _FROM_STORAGE[(resource.group, resource.version, resource.kind)](obj)
    out["kind"] = resource.kind
    return out
