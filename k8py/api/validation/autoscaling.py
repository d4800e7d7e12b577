"""autoscaling/v2 HorizontalPodAutoscalers (pkg/apis/autoscaling/validation).

autoscaling/v1 objects are converted to v2 before they get here.
"""

from __future__ import annotations

from k8py.api.validation import names, pods
from k8py.apimachinery import quantity
from k8py.api.validation.field import (Path, d, dicts, forbidden, i, invalid, is_int, lst, not_supported, path,
                                       required, s)
from k8py.api.validation.meta import validate_nonnegative, validate_object_meta, validate_object_meta_update

MAX_PERIOD_SECONDS = 1800
MAX_STABILIZATION_WINDOW_SECONDS = 3600
METRIC_SOURCE_TYPES = ["ContainerResource", "External", "Object", "Pods", "Resource"]
_SOURCE_KEYS = (("object", "Object"), ("external", "External"), ("pods", "Pods"), ("resource", "Resource"),
                ("containerResource", "ContainerResource"))


def _cross_version_ref(ref: dict, fld: Path) -> list:
    errs = []
    for key in ("kind", "name"):
        value = s(ref.get(key))
        if not value:
            errs.append(required(fld.child(key)))
        else:
            errs += [invalid(fld.child(key), value, m) for m in names.is_valid_path_segment_name(value)]
    return errs


def _target(mt: dict, fld: Path) -> list:
    errs = []
    t = s(mt.get("type"))
    if not t:
        errs.append(required(fld.child("type"), "must specify a metric target type"))
    if t not in ("Utilization", "Value", "AverageValue"):
        errs.append(invalid(fld.child("type"), t, "must be either Utilization, Value, or AverageValue"))
    for key in ("value", "averageValue"):
        if mt.get(key) is not None:
            q = quantity.try_parse(mt[key])
            if q is not None and q.sign() != 1:
                errs.append(invalid(fld.child(key), str(q), "must be positive"))
    au = mt.get("averageUtilization")
    if is_int(au) and au < 1:
        errs.append(invalid(fld.child("averageUtilization"), au, "must be greater than 0"))
    return errs


def _metric_identifier(ident: dict, fld: Path) -> list:
    name = s(ident.get("name"))
    if not name:
        return [required(fld.child("name"), "must specify a metric name")]
    return [invalid(fld.child("name"), name, m) for m in names.is_valid_path_segment_name(name)]


def _source(key: str, src: dict, fld: Path) -> list:
    target = d(src.get("target"))
    tp = fld.child("target")
    if key == "object":
        errs = _cross_version_ref(d(src.get("describedObject")), fld.child("describedObject"))
        errs += _metric_identifier(d(src.get("metric")), fld.child("metric")) + _target(target, tp)
        if target.get("value") is None and target.get("averageValue") is None:
            errs.append(required(tp.child("averageValue"), "must set either a target value or averageValue"))
        return errs
    if key == "external":
        errs = _metric_identifier(d(src.get("metric")), fld.child("metric")) + _target(target, tp)
        if target.get("value") is None and target.get("averageValue") is None:
            errs.append(required(tp.child("averageValue"), "must set either a target value for metric or a per-pod target"))
        if target.get("value") is not None and target.get("averageValue") is not None:
            errs.append(forbidden(tp.child("value"), "may not set both a target value for metric and a per-pod target"))
        return errs
    if key == "pods":
        errs = _metric_identifier(d(src.get("metric")), fld.child("metric")) + _target(target, tp)
        if target.get("averageValue") is None:
            errs.append(required(tp.child("averageValue"), "must specify a positive target averageValue"))
        return errs
    errs = []
    name = s(src.get("name"))
    if not name:
        errs.append(required(fld.child("name"), "must specify a resource name"))
    elif key == "containerResource":
        errs += pods.validate_container_resource_name(name, fld.child("name"))
    if key == "containerResource":
        container = s(src.get("container"))
        if not container:
            errs.append(required(fld.child("container"), "must specify a container"))
        else:
            errs += [invalid(fld.child("container"), container, m) for m in names.is_dns1123_label(container)]
    errs += _target(target, tp)
    if target.get("averageUtilization") is None and target.get("averageValue") is None:
        errs.append(required(tp.child("averageUtilization"), "must set either a target raw value or a target utilization"))
    if target.get("averageUtilization") is not None and target.get("averageValue") is not None:
        errs.append(forbidden(tp.child("averageValue"), "may not set both a target raw value and a target utilization"))
    return errs


def _metric_spec(spec: dict, fld: Path) -> list:
    errs = []
    t = s(spec.get("type"))
    if not t:
        errs.append(required(fld.child("type"), "must specify a metric source type"))
    if t not in METRIC_SOURCE_TYPES:
        errs.append(not_supported(fld.child("type"), t, METRIC_SOURCE_TYPES))
    present = []
    for key, _ in _SOURCE_KEYS:
        if isinstance(spec.get(key), dict):
            present.append(key)
            if len(present) == 1:
                errs += _source(key, spec[key], fld.child(key))
    expected = ""
    for key, type_name in _SOURCE_KEYS:
        if t == type_name:
            expected = key
            if not isinstance(spec.get(key), dict):
                errs.append(required(fld.child(key), "must populate information for the given metric source"))
    if t not in METRIC_SOURCE_TYPES:
        errs.append(not_supported(fld.child("type"), t, METRIC_SOURCE_TYPES))
    if len(present) != 1:
        for key in present:
            if key != expected:
                errs.append(forbidden(fld.child(key), "must populate the given metric source only"))
    return errs


def _scaling_rules(rules, fld: Path) -> list:
    if not isinstance(rules, dict):
        return []
    errs = []
    sws = rules.get("stabilizationWindowSeconds")
    if is_int(sws) and sws < 0:
        errs.append(invalid(fld.child("stabilizationWindowSeconds"), sws, "must be greater than or equal to zero"))
    if is_int(sws) and sws > MAX_STABILIZATION_WINDOW_SECONDS:
        errs.append(invalid(fld.child("stabilizationWindowSeconds"), sws,
                            f"must be less than or equal to {MAX_STABILIZATION_WINDOW_SECONDS}"))
    sel = rules.get("selectPolicy")
    if isinstance(sel, str) and sel not in ("Disabled", "Max", "Min"):
        errs.append(not_supported(fld.child("selectPolicy"), sel, ["Disabled", "Max", "Min"]))
    policies = lst(rules.get("policies"))
    pp = fld.child("policies")
    if not policies:
        errs.append(required(pp, "must specify at least one Policy"))
    for n, policy in dicts(policies):
        p = pp.index(n)
        t = s(policy.get("type"))
        if t not in ("Pods", "Percent"):
            errs.append(not_supported(p.child("type"), t, ["Percent", "Pods"]))
        if i(policy.get("value")) <= 0:
            errs.append(invalid(p.child("value"), i(policy.get("value")), "must be greater than zero"))
        period = i(policy.get("periodSeconds"))
        if period <= 0:
            errs.append(invalid(p.child("periodSeconds"), period, "must be greater than zero"))
        if period > MAX_PERIOD_SECONDS:
            errs.append(invalid(p.child("periodSeconds"), period, f"must be less than or equal to {MAX_PERIOD_SECONDS}"))
    return errs


def _spec(spec: dict, fld: Path, min_lower_bound: int) -> list:
    errs = []
    min_replicas = spec.get("minReplicas")
    if is_int(min_replicas) and min_replicas < min_lower_bound:
        errs.append(invalid(fld.child("minReplicas"), min_replicas, f"must be greater than or equal to {min_lower_bound}"))
    max_replicas = i(spec.get("maxReplicas"))
    if max_replicas < 1:
        errs.append(invalid(fld.child("maxReplicas"), max_replicas, "must be greater than 0"))
    if is_int(min_replicas) and max_replicas < min_replicas:
        errs.append(invalid(fld.child("maxReplicas"), max_replicas, "must be greater than or equal to `minReplicas`"))
    errs += _cross_version_ref(d(spec.get("scaleTargetRef")), fld.child("scaleTargetRef"))
    has_object_or_external = False
    for n, metric in enumerate(lst(spec.get("metrics"))):
        metric = d(metric)
        errs += _metric_spec(metric, fld.child("metrics").index(n))
        if s(metric.get("type")) in ("Object", "External"):
            has_object_or_external = True
    if min_replicas == 0 and not has_object_or_external:
        errs.append(forbidden(fld.child("metrics"),
                              "must specify at least one Object or External metric to support scaling to zero replicas"))
    behavior = spec.get("behavior")
    if isinstance(behavior, dict):
        errs += _scaling_rules(behavior.get("scaleUp"), fld.child("behavior", "scaleUp"))
        errs += _scaling_rules(behavior.get("scaleDown"), fld.child("behavior", "scaleDown"))
    return errs


def validate_hpa(obj: dict) -> list:
    errs = validate_object_meta(obj, True, names.name_is_dns_subdomain)
    return errs + _spec(d(obj.get("spec")), path("spec"), 1)


def validate_hpa_update(new: dict, old: dict) -> list:
    errs = validate_object_meta_update(new, old)
    lower = 0 if d(old.get("spec")).get("minReplicas") == 0 else 1
    return errs + _spec(d(new.get("spec")), path("spec"), lower)


def validate_hpa_status_update(new: dict, old: dict) -> list:
    errs = validate_object_meta_update(new, old)
    status = d(new.get("status"))
    for key in ("currentReplicas", "desiredReplicas"):
        errs += validate_nonnegative(status.get(key), path("status", key))
    return errs


CREATE = {"HorizontalPodAutoscaler": validate_hpa}
UPDATE = {"HorizontalPodAutoscaler": validate_hpa_update}
STATUS_UPDATE = {"HorizontalPodAutoscaler": validate_hpa_status_update}
