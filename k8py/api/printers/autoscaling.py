"""Printers for autoscaling: HorizontalPodAutoscaler (v1 and v2 shapes) and Scale.

TARGETS lists `current/target` per metric, in the order of spec.metrics,
pairing each with the status entry at the same index (as upstream does).
"""

from __future__ import annotations

from k8py.api.printers import quantity
from k8py.api.printers.columns import AGE, NAME, Column, Printer, age
from k8py.api.printers.formatting import NONE
from k8py.api.printers.values import as_dict, as_list, dig, integer, name_of, optional_int, text

UNKNOWN_VALUE = "<unknown>"
MAX_METRICS_SHOWN = 2
# v2 defaulting gives an HPA without metrics an 80% average CPU target.
DEFAULT_CPU_UTILIZATION = 80


def _cpu_metric(utilization) -> dict:
    return {"type": "Resource", "resource": {"name": "cpu", "target": {
        "type": "Utilization", "averageUtilization": utilization}}}


def hpa_metrics(hpa: dict) -> tuple[list[dict], list[dict]]:
    """(spec metrics, current metrics) in v2 shape, whichever version `hpa` is in."""
    spec, status = as_dict(hpa.get("spec")), as_dict(hpa.get("status"))
    specs = [as_dict(m) for m in as_list(spec.get("metrics"))]
    statuses = [as_dict(m) for m in as_list(status.get("currentMetrics"))]
    # autoscaling/v1 carries a single CPU target and reading.
    if spec.get("targetCPUUtilizationPercentage") is not None:
        specs = [_cpu_metric(spec["targetCPUUtilizationPercentage"])]
    if status.get("currentCPUUtilizationPercentage") is not None:
        statuses = [{"type": "Resource", "resource": {"name": "cpu", "current": {
            "averageUtilization": status["currentCPUUtilizationPercentage"]}}}]
    return specs or [_cpu_metric(DEFAULT_CPU_UTILIZATION)], statuses


def _quantity(value) -> str:
    # A nil *Quantity prints as <nil> upstream.
    return "<nil>" if value is None else quantity.canonical(value)


def _percent(value) -> str | None:
    number = optional_int(value)
    return None if number is None else f"{number}%"


def _status_for(statuses: list[dict], index: int, source: str) -> dict | None:
    if index < len(statuses) and isinstance(statuses[index].get(source), dict):
        return statuses[index][source]
    return None


def _value_metric(spec: dict, current: dict | None) -> str:
    """Object and External metrics: an average value or a plain value."""
    target = as_dict(spec.get("target"))
    if target.get("averageValue") is not None:
        now = UNKNOWN_VALUE
        if current is not None and dig(current, "current", "averageValue") is not None:
            now = _quantity(dig(current, "current", "averageValue"))
        return f"{now}/{_quantity(target.get('averageValue'))} (avg)"
    now = UNKNOWN_VALUE if current is None else _quantity(dig(current, "current", "value"))
    return f"{now}/{_quantity(target.get('value'))}"


def _resource_metric(spec: dict, current: dict | None) -> str:
    """Resource and ContainerResource metrics: `cpu: 20%/50%` or `memory: 1Gi/2Gi`."""
    target = as_dict(spec.get("target"))
    name = text(spec.get("name"))
    if target.get("averageValue") is not None:
        now = UNKNOWN_VALUE if current is None else _quantity(dig(current, "current", "averageValue"))
        return f"{name}: {now}/{_quantity(target.get('averageValue'))}"
    now = (_percent(dig(current, "current", "averageUtilization")) if current else None) or UNKNOWN_VALUE
    return f"{name}: {now}/{_percent(target.get('averageUtilization')) or '<auto>'}"


_SOURCES = {"External": "external", "Object": "object", "Pods": "pods", "Resource": "resource",
            "ContainerResource": "containerResource"}


def _metric(spec: dict, statuses: list[dict], index: int) -> str:
    kind = spec.get("type")
    source = _SOURCES.get(kind)
    if source is None:
        return "<unknown type>"
    metric, current = as_dict(spec.get(source)), _status_for(statuses, index, source)
    if kind in ("External", "Object"):
        return _value_metric(metric, current)
    if kind == "Pods":
        now = UNKNOWN_VALUE if current is None else _quantity(dig(current, "current", "averageValue"))
        return f"{now}/{_quantity(dig(metric, 'target', 'averageValue'))}"
    return _resource_metric(metric, current)


def format_hpa_targets(hpa: dict) -> str:
    specs, statuses = hpa_metrics(hpa)
    if not specs:
        return NONE
    shown = ", ".join(_metric(spec, statuses, i) for i, spec in enumerate(specs[:MAX_METRICS_SHOWN]))
    if len(specs) > MAX_METRICS_SHOWN:
        return f"{shown} + {len(specs) - MAX_METRICS_SHOWN} more..."
    return shown


def _hpa_cells(hpa, now):
    spec = as_dict(hpa.get("spec"))
    target = as_dict(spec.get("scaleTargetRef"))
    # minReplicas is defaulted to 1.
    min_replicas = optional_int(spec.get("minReplicas"))
    return [
        name_of(hpa), f"{text(target.get('kind'))}/{text(target.get('name'))}", format_hpa_targets(hpa),
        str(1 if min_replicas is None else min_replicas), integer(spec.get("maxReplicas")),
        integer(dig(hpa, "status", "currentReplicas")), age(hpa, now),
    ]


HPA = Printer((
    NAME,
    Column("Reference", doc="autoscaling.v2.HorizontalPodAutoscalerSpec.scaleTargetRef"),
    Column("Targets", doc="autoscaling.v2.HorizontalPodAutoscalerSpec.metrics"),
    Column("MinPods", doc="autoscaling.v2.HorizontalPodAutoscalerSpec.minReplicas"),
    Column("MaxPods", doc="autoscaling.v2.HorizontalPodAutoscalerSpec.maxReplicas"),
    Column("Replicas", doc="autoscaling.v2.HorizontalPodAutoscalerStatus.currentReplicas"),
    AGE,
), _hpa_cells)

SCALE = Printer((
    Column("Name", doc=NAME.doc),  # upstream gives this one no "name" format
    Column("Desired", type="integer", doc="autoscaling.v1.ScaleSpec.replicas"),
    Column("Available", type="integer", doc="autoscaling.v1.ScaleStatus.replicas"),
    AGE,
), lambda obj, now: [name_of(obj), integer(dig(obj, "spec", "replicas")),
                     integer(dig(obj, "status", "replicas")), age(obj, now)])


PRINTERS = {("autoscaling", "HorizontalPodAutoscaler"): HPA, ("autoscaling", "Scale"): SCALE}
