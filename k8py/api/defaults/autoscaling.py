"""autoscaling/v2 defaults (pkg/apis/autoscaling/v2/defaults.go)."""

from __future__ import annotations

import copy

from k8py.api.defaults.core import _dicts, _ensure, canonical_quantity

DEFAULT_CPU_UTILIZATION = 80
_SCALE_UP = {"stabilizationWindowSeconds": 0, "selectPolicy": "Max",
             "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15},
                          {"type": "Percent", "value": 100, "periodSeconds": 15}]}
# scale-down stabilization is left unset: the controller's flag decides it
_SCALE_DOWN = {"selectPolicy": "Max", "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}


def _rules(given, defaults: dict) -> dict:
    out = copy.deepcopy(defaults)
    if isinstance(given, dict):
        for key in ("selectPolicy", "stabilizationWindowSeconds", "policies"):
            if given.get(key) is not None:
                out[key] = given[key]
    return out


def default_hpa(obj: dict) -> None:
    spec = _ensure(obj, "spec")
    if spec is None:
        return
    if spec.get("minReplicas") is None:
        spec["minReplicas"] = 1
    if not spec.get("metrics"):
        spec["metrics"] = [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization", "averageUtilization": DEFAULT_CPU_UTILIZATION}}}]
    behavior = spec.get("behavior")
    if isinstance(behavior, dict):
        behavior["scaleUp"] = _rules(behavior.get("scaleUp"), _SCALE_UP)
        behavior["scaleDown"] = _rules(behavior.get("scaleDown"), _SCALE_DOWN)
    for metric in _dicts(spec.get("metrics")):
        for key in ("object", "pods", "resource", "containerResource", "external"):
            source = metric.get(key)
            if isinstance(source, dict) and isinstance(source.get("target"), dict):
                canonical_quantity(source["target"], "value")
                canonical_quantity(source["target"], "averageValue")


DEFAULTERS = {"HorizontalPodAutoscaler": default_hpa}
