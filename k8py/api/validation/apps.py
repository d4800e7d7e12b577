"""apps/v1: Deployments, ReplicaSets, StatefulSets, DaemonSets, ControllerRevisions.

pkg/apis/apps/validation plus the selector-immutability rule that the
registry strategies add for apps/v1 updates.
"""

from __future__ import annotations

from k8py.api.validation import names, pods
from k8py.api.validation.field import (GoValue, Path, d, forbidden, go_label_selector, go_quote, go_string_map, i,
                                       invalid, is_int, lst, not_supported, path, required, s, strmap)
from k8py.api.validation.meta import (FIELD_IMMUTABLE, selector_empty, selector_is_valid, selector_matches,
                                      validate_annotations, validate_label_selector, validate_labels,
                                      validate_nonnegative, validate_object_meta, validate_object_meta_update)


def go_int_or_string(value) -> GoValue:
    """%#v of an intstr.IntOrString value."""
    if isinstance(value, str):
        return GoValue('intstr.IntOrString{Type:1, IntVal:0, StrVal:%s}' % go_quote(value))
    return GoValue('intstr.IntOrString{Type:0, IntVal:%d, StrVal:""}' % i(value))


def _percent(value) -> int | None:
    if isinstance(value, str) and not names.is_valid_percent(value):
        return int(value[:-1])
    return None


def _int_or_percent_value(value) -> int:
    pct = _percent(value)
    if pct is not None:
        return pct
    return i(value)


def validate_positive_int_or_percent(value, fld: Path) -> list:
    if isinstance(value, str):
        return [invalid(fld, go_int_or_string(value), m) for m in names.is_valid_percent(value)]
    if is_int(value):
        return validate_nonnegative(value, fld)
    return [invalid(fld, go_int_or_string(value), "must be an integer or percentage (e.g '5%%')")]


def not_more_than_100_percent(value, fld: Path) -> list:
    pct = _percent(value)
    if pct is None or pct <= 100:
        return []
    return [invalid(fld, go_int_or_string(value), "must not be greater than 100%")]


def _labels_value(labels) -> GoValue:
    return GoValue(go_string_map(strmap(labels) if labels is not None else None))


def _template_matches(selector, template: dict, tp: Path) -> list:
    """`selector` vs template labels, the way LabelSelectorAsSelector sees a selector."""
    labels = d(template.get("metadata")).get("labels")
    if selector is None:
        # a nil selector selects nothing, so no template can match it
        return [invalid(tp.child("metadata", "labels"), _labels_value(labels), "`selector` does not match template `labels`")]
    if selector_empty(selector):
        return []
    if not selector_matches(selector, labels):
        return [invalid(tp.child("metadata", "labels"), _labels_value(labels), "`selector` does not match template `labels`")]
    return []


def _selector(spec: dict, fld: Path, kind_word: str) -> list:
    sel = spec.get("selector")
    if not isinstance(sel, dict):
        return [required(fld.child("selector"))]
    errs = validate_label_selector(sel, fld.child("selector"))
    if selector_empty(sel):
        errs.append(invalid(fld.child("selector"), GoValue(go_label_selector(sel)), f"empty selector is invalid for {kind_word}"))
    return errs


def _pod_template_for_replica_set(spec: dict, fld: Path, kind: str) -> list:
    sel = spec.get("selector") if isinstance(spec.get("selector"), dict) else None
    template = d(spec.get("template"))
    tp = fld.child("template")
    if sel is not None and not selector_is_valid(sel):
        return [invalid(fld.child("selector"), GoValue(go_label_selector(sel)), "invalid label selector")]
    errs = _template_matches(sel, template, tp)
    errs += pods.validate_pod_template_spec(template, tp)
    tspec = d(template.get("spec"))
    rp = s(tspec.get("restartPolicy"))
    if rp != "Always":
        errs.append(not_supported(tp.child("spec", "restartPolicy"), rp, ["Always"]))
    if tspec.get("activeDeadlineSeconds") is not None:
        errs.append(forbidden(tp.child("spec", "activeDeadlineSeconds"), f"activeDeadlineSeconds in {kind} is not Supported"))
    return errs


def _go_strategy(strategy: dict) -> GoValue:
    return GoValue("apps.DeploymentStrategy{Type:%s, RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}"
                   % go_quote(s(strategy.get("type"))))


def _deployment_strategy(strategy: dict, fld: Path) -> list:
    t = s(strategy.get("type"))
    if t == "Recreate":
        if strategy.get("rollingUpdate") is not None:
            return [forbidden(fld.child("rollingUpdate"), "may not be specified when strategy `type` is 'Recreate'")]
        return []
    if t == "RollingUpdate":
        ru = strategy.get("rollingUpdate")
        if not isinstance(ru, dict):
            return [required(fld.child("rollingUpdate"), "this should be defaulted and never be nil")]
        rp = fld.child("rollingUpdate")
        errs = validate_positive_int_or_percent(ru.get("maxUnavailable"), rp.child("maxUnavailable"))
        errs += validate_positive_int_or_percent(ru.get("maxSurge"), rp.child("maxSurge"))
        if _int_or_percent_value(ru.get("maxUnavailable")) == 0 and _int_or_percent_value(ru.get("maxSurge")) == 0:
            errs.append(invalid(rp.child("maxUnavailable"), go_int_or_string(ru.get("maxUnavailable")),
                                "may not be 0 when `maxSurge` is 0"))
        return errs + not_more_than_100_percent(ru.get("maxUnavailable"), rp.child("maxUnavailable"))
    return [not_supported(fld, _go_strategy(strategy), ["Recreate", "RollingUpdate"])]


def _deployment_spec(spec: dict, fld: Path) -> list:
    errs = validate_nonnegative(spec.get("replicas"), fld.child("replicas"))
    errs += _selector(spec, fld, "deployment")
    errs += _pod_template_for_replica_set(spec, fld, "Deployment")
    errs += _deployment_strategy(d(spec.get("strategy")), fld.child("strategy"))
    errs += validate_nonnegative(spec.get("minReadySeconds"), fld.child("minReadySeconds"))
    errs += validate_nonnegative(spec.get("revisionHistoryLimit"), fld.child("revisionHistoryLimit"))
    rollback = spec.get("rollbackTo")
    if isinstance(rollback, dict):
        errs += validate_nonnegative(rollback.get("revision"), fld.child("rollback", "version"))
    pds = spec.get("progressDeadlineSeconds")
    if is_int(pds):
        errs += validate_nonnegative(pds, fld.child("progressDeadlineSeconds"))
        if pds <= i(spec.get("minReadySeconds")):
            errs.append(invalid(fld.child("progressDeadlineSeconds"), pds, "must be greater than minReadySeconds"))
    return errs


def _selector_immutable(new: dict, old: dict) -> list:
    ns, os_ = d(new.get("spec")).get("selector"), d(old.get("spec")).get("selector")
    if _norm_selector(ns) != _norm_selector(os_):
        return [invalid(path("spec", "selector"), GoValue(go_label_selector(ns)), FIELD_IMMUTABLE)]
    return []


def _norm_selector(sel):
    if not isinstance(sel, dict):
        return None
    return {"matchLabels": strmap(sel.get("matchLabels")) or None, "matchExpressions": lst(sel.get("matchExpressions")) or None}


def validate_deployment(obj: dict) -> list:
    errs = validate_object_meta(obj, True, names.name_is_dns_subdomain)
    return errs + _deployment_spec(d(obj.get("spec")), path("spec"))


def validate_deployment_update(new: dict, old: dict) -> list:
    errs = validate_object_meta_update(new, old)
    errs += _deployment_spec(d(new.get("spec")), path("spec"))
    return errs + _selector_immutable(new, old)


def _deployment_status(status: dict, fld: Path) -> list:
    errs = []
    for key in ("observedGeneration", "replicas", "updatedReplicas", "readyReplicas", "availableReplicas",
                "unavailableReplicas", "collisionCount"):
        errs += validate_nonnegative(status.get(key), fld.child(key))
    replicas = i(status.get("replicas"))
    for key in ("updatedReplicas", "readyReplicas", "availableReplicas"):
        if i(status.get(key)) > replicas:
            errs.append(invalid(fld.child(key), i(status.get(key)), "cannot be greater than status.replicas"))
    if i(status.get("availableReplicas")) > i(status.get("readyReplicas")):
        errs.append(invalid(fld.child("availableReplicas"), i(status.get("availableReplicas")),
                            "cannot be greater than readyReplicas"))
    return errs


def _collision_decremented(new: dict, old: dict) -> list:
    nc, oc = d(new.get("status")).get("collisionCount"), d(old.get("status")).get("collisionCount")
    if is_int(oc) and (not is_int(nc) or nc < oc):
        return [invalid(path("status", "collisionCount"), i(nc), "cannot be decremented")]
    return []


def validate_deployment_status_update(new: dict, old: dict) -> list:
    errs = validate_object_meta_update(new, old)
    errs += _deployment_status(d(new.get("status")), path("status"))
    return errs + _collision_decremented(new, old)


def _replica_set_spec(spec: dict, fld: Path) -> list:
    errs = validate_nonnegative(spec.get("replicas"), fld.child("replicas"))
    errs += validate_nonnegative(spec.get("minReadySeconds"), fld.child("minReadySeconds"))
    errs += _selector(spec, fld, "deployment")
    return errs + _pod_template_for_replica_set(spec, fld, "ReplicaSet")


def validate_replica_set(obj: dict) -> list:
    errs = validate_object_meta(obj, True, names.name_is_dns_subdomain)
    return errs + _replica_set_spec(d(obj.get("spec")), path("spec"))


def validate_replica_set_update(new: dict, old: dict) -> list:
    errs = validate_replica_set(new)
    errs += validate_object_meta_update(new, old)
    errs += _replica_set_spec(d(new.get("spec")), path("spec"))
    return errs + _selector_immutable(new, old)


def validate_replica_set_status_update(new: dict, old: dict) -> list:
    from k8py.api.validation.core import validate_replica_status
    return validate_object_meta_update(new, old) + validate_replica_status(d(new.get("status")), path("status"))


# ---- StatefulSets -------------------------------------------------------------------

def _stateful_set_spec(spec: dict, fld: Path) -> list:
    errs = []
    pmp = s(spec.get("podManagementPolicy"))
    if not pmp:
        errs.append(required(fld.child("podManagementPolicy")))
    elif pmp not in ("OrderedReady", "Parallel"):
        errs.append(invalid(fld.child("podManagementPolicy"), pmp, "must be 'OrderedReady' or 'Parallel'"))
    us = d(spec.get("updateStrategy"))
    ut = s(us.get("type"))
    up = fld.child("updateStrategy")
    if not ut:
        errs.append(required(up))
    elif ut == "OnDelete":
        if us.get("rollingUpdate") is not None:
            errs.append(invalid(up.child("rollingUpdate"), GoValue("&apps.RollingUpdateStatefulSetStrategy{...}"),
                                "only allowed for updateStrategy 'RollingUpdate'"))
    elif ut == "RollingUpdate":
        ru = us.get("rollingUpdate")
        if isinstance(ru, dict):
            rp = up.child("rollingUpdate")
            errs += validate_nonnegative(ru.get("partition"), rp.child("partition"))
            if ru.get("maxUnavailable") is not None:
                mu = ru["maxUnavailable"]
                errs += validate_positive_int_or_percent(mu, rp.child("maxUnavailable"))
                if _int_or_percent_value(mu) == 0:
                    errs.append(invalid(rp.child("maxUnavailable"), go_int_or_string(mu), "cannot be 0"))
                errs += not_more_than_100_percent(mu, rp.child("maxUnavailable"))
    else:
        errs.append(invalid(up, GoValue("apps.StatefulSetUpdateStrategy{Type:%s, RollingUpdate:nil}" % go_quote(ut)),
                            "must be 'RollingUpdate' or 'OnDelete'"))
    retention = spec.get("persistentVolumeClaimRetentionPolicy")
    if isinstance(retention, dict):
        for key in ("whenDeleted", "whenScaled"):
            v = s(retention.get(key))
            if v not in ("Retain", "Delete"):
                errs.append(not_supported(fld.child("persistentVolumeClaimRetentionPolicy", key), v, ["Retain", "Delete"]))
    errs += validate_nonnegative(spec.get("replicas"), fld.child("replicas"))
    errs += validate_nonnegative(spec.get("minReadySeconds"), fld.child("minReadySeconds"))
    ordinals = spec.get("ordinals")
    if isinstance(ordinals, dict):
        errs += validate_nonnegative(ordinals.get("start"), fld.child("ordinals.start"))
    sel = spec.get("selector")
    if not isinstance(sel, dict):
        errs.append(required(fld.child("selector")))
    else:
        errs += validate_label_selector(sel, fld.child("selector"))
        if selector_empty(sel):
            errs.append(invalid(fld.child("selector"), GoValue(go_label_selector(sel)), "empty selector is invalid for statefulset"))
    sel = sel if isinstance(sel, dict) else None
    template = d(spec.get("template"))
    tp = fld.child("template")
    if sel is not None and not selector_is_valid(sel):
        errs.append(invalid(fld.child("selector"), GoValue(go_label_selector(sel)), ""))
    else:
        errs += _template_matches(sel, template, tp)
        tmeta = d(template.get("metadata"))
        errs += validate_labels(tmeta.get("labels"), tp.child("labels"))
        errs += validate_annotations(tmeta.get("annotations"), tp.child("annotations"))
        errs += pods.validate_pod_specific_annotations(tmeta.get("annotations"), d(template.get("spec")),
                                                       tp.child("annotations"), False)
    tspec = d(template.get("spec"))
    rp = s(tspec.get("restartPolicy"))
    if rp != "Always":
        errs.append(not_supported(tp.child("spec", "restartPolicy"), rp, ["Always"]))
    if tspec.get("activeDeadlineSeconds") is not None:
        errs.append(forbidden(tp.child("spec", "activeDeadlineSeconds"), "activeDeadlineSeconds in StatefulSet is not Supported"))
    return errs


def validate_stateful_set(obj: dict) -> list:
    errs = validate_object_meta(obj, True, names.name_is_dns_label)
    return errs + _stateful_set_spec(d(obj.get("spec")), path("spec"))


_STS_MUTABLE = ("replicas", "template", "updateStrategy", "minReadySeconds", "ordinals",
                "persistentVolumeClaimRetentionPolicy")


def validate_stateful_set_update(new: dict, old: dict) -> list:
    # The name is not re-validated: old objects may predate the DNS-label rule.
    errs = validate_object_meta_update(new, old)
    errs += _stateful_set_spec(d(new.get("spec")), path("spec"))
    ns = {k: v for k, v in d(new.get("spec")).items() if k not in _STS_MUTABLE and v not in (None, [], {})}
    os_ = {k: v for k, v in d(old.get("spec")).items() if k not in _STS_MUTABLE and v not in (None, [], {})}
    if _norm_sts(ns) != _norm_sts(os_):
        errs.append(forbidden(path("spec"), "updates to statefulset spec for fields other than 'replicas', 'ordinals', "
                                            "'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and "
                                            "'minReadySeconds' are forbidden"))
    return errs


def _norm_sts(spec: dict) -> dict:
    out = dict(spec)
    if "selector" in out:
        out["selector"] = _norm_selector(out["selector"])
    return out


def validate_stateful_set_status_update(new: dict, old: dict) -> list:
    status = d(new.get("status"))
    fld = path("status")
    errs = []
    for key in ("replicas", "readyReplicas", "currentReplicas", "updatedReplicas", "availableReplicas",
                "observedGeneration", "collisionCount"):
        errs += validate_nonnegative(status.get(key), fld.child(key))
    replicas = i(status.get("replicas"))
    for key in ("readyReplicas", "currentReplicas", "updatedReplicas", "availableReplicas"):
        if i(status.get(key)) > replicas:
            errs.append(invalid(fld.child(key), i(status.get(key)), "cannot be greater than status.replicas"))
    if i(status.get("availableReplicas")) > i(status.get("readyReplicas")):
        errs.append(invalid(fld.child("availableReplicas"), i(status.get("availableReplicas")),
                            "cannot be greater than status.readyReplicas"))
    errs += validate_object_meta_update(new, old)
    return errs + _collision_decremented(new, old)


# ---- DaemonSets -----------------------------------------------------------------------

def _daemon_set_spec(spec: dict, fld: Path) -> list:
    sel = spec.get("selector") if isinstance(spec.get("selector"), dict) else None
    errs = validate_label_selector(sel, fld.child("selector"))
    template = d(spec.get("template"))
    tp = fld.child("template")
    if sel is None or selector_is_valid(sel):
        errs += _template_matches(sel, template, tp)
    if sel is not None and selector_empty(sel):
        errs.append(invalid(fld.child("selector"), GoValue(go_label_selector(sel)), "empty selector is invalid for daemonset"))
    errs += pods.validate_pod_template_spec(template, tp)
    tspec = d(template.get("spec"))
    rp = s(tspec.get("restartPolicy"))
    if rp != "Always":
        errs.append(not_supported(tp.child("spec", "restartPolicy"), rp, ["Always"]))
    if tspec.get("activeDeadlineSeconds") is not None:
        errs.append(forbidden(tp.child("spec", "activeDeadlineSeconds"), "activeDeadlineSeconds in DaemonSet is not Supported"))
    errs += validate_nonnegative(spec.get("minReadySeconds"), fld.child("minReadySeconds"))
    errs += validate_nonnegative(spec.get("templateGeneration"), fld.child("templateGeneration"))
    us = d(spec.get("updateStrategy"))
    up = fld.child("updateStrategy")
    t = s(us.get("type"))
    if t == "RollingUpdate":
        ru = us.get("rollingUpdate")
        if not isinstance(ru, dict):
            errs.append(required(up.child("rollingUpdate")))
        else:
            rp_ = up.child("rollingUpdate")
            errs += validate_positive_int_or_percent(ru.get("maxUnavailable"), rp_.child("maxUnavailable"))
            errs += validate_positive_int_or_percent(ru.get("maxSurge"), rp_.child("maxSurge"))
            errs += not_more_than_100_percent(ru.get("maxUnavailable"), rp_.child("maxUnavailable"))
            errs += not_more_than_100_percent(ru.get("maxSurge"), rp_.child("maxSurge"))
            has_unavailable = _int_or_percent_value(ru.get("maxUnavailable")) != 0
            has_surge = _int_or_percent_value(ru.get("maxSurge")) != 0
            if has_unavailable and has_surge:
                errs.append(invalid(rp_.child("maxSurge"), go_int_or_string(ru.get("maxSurge")),
                                    "may not be set when maxUnavailable is non-zero"))
            elif not has_unavailable and not has_surge:
                errs.append(required(rp_.child("maxUnavailable"), "cannot be 0 when maxSurge is 0"))
    elif t != "OnDelete":
        errs.append(not_supported(up, GoValue("apps.DaemonSetUpdateStrategy{Type:%s, RollingUpdate:(*apps.RollingUpdateDaemonSet)(nil)}"
                                              % go_quote(t)), ["RollingUpdate", "OnDelete"]))
    errs += validate_nonnegative(spec.get("revisionHistoryLimit"), fld.child("revisionHistoryLimit"))
    return errs


def validate_daemon_set(obj: dict) -> list:
    errs = validate_object_meta(obj, True, names.name_is_dns_subdomain)
    return errs + _daemon_set_spec(d(obj.get("spec")), path("spec"))


def validate_daemon_set_update(new: dict, old: dict) -> list:
    errs = validate_daemon_set(new)
    errs += validate_object_meta_update(new, old)
    errs += _daemon_set_spec(d(new.get("spec")), path("spec"))
    return errs + _selector_immutable(new, old)


def validate_daemon_set_status_update(new: dict, old: dict) -> list:
    errs = validate_object_meta_update(new, old)
    status = d(new.get("status"))
    for key in ("currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled", "numberReady",
                "observedGeneration", "updatedNumberScheduled", "numberAvailable", "numberUnavailable",
                "collisionCount"):
        errs += validate_nonnegative(status.get(key), path("status", key))
    return errs + _collision_decremented(new, old)


def validate_controller_revision(obj: dict) -> list:
    errs = validate_object_meta(obj, True, names.name_is_dns_subdomain)
    if obj.get("data") is None:
        errs.append(required(path("data"), "data is mandatory"))
    return errs + validate_nonnegative(obj.get("revision"), path("revision"))


def validate_controller_revision_update(new: dict, old: dict) -> list:
    errs = validate_object_meta_update(new, old) + validate_controller_revision(new)
    if new.get("data") != old.get("data"):
        errs.append(invalid(path("data"), GoValue("runtime.RawExtension{...}"), FIELD_IMMUTABLE))
    return errs


CREATE = {
    "Deployment": validate_deployment,
    "ReplicaSet": validate_replica_set,
    "StatefulSet": validate_stateful_set,
    "DaemonSet": validate_daemon_set,
    "ControllerRevision": validate_controller_revision,
}
UPDATE = {
    "Deployment": validate_deployment_update,
    "ReplicaSet": validate_replica_set_update,
    "StatefulSet": validate_stateful_set_update,
    "DaemonSet": validate_daemon_set_update,
    "ControllerRevision": validate_controller_revision_update,
}
STATUS_UPDATE = {
    "Deployment": validate_deployment_status_update,
    "ReplicaSet": validate_replica_set_status_update,
    "StatefulSet": validate_stateful_set_status_update,
    "DaemonSet": validate_daemon_set_status_update,
}
