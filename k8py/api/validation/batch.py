"""batch/v1: Jobs and CronJobs (pkg/apis/batch/validation)."""

from __future__ import annotations

import re
import zoneinfo

from k8py.api.validation import cron, names, pods
from k8py.api.validation.field import (OMIT, GoValue, Path, d, dicts, duplicate, go_label_selector,
                                       go_quote, go_string_map, i, invalid, is_int, lst, not_supported, path,
                                       required, s, strmap, too_long, too_many)
from k8py.api.validation.meta import (FIELD_IMMUTABLE, selector_is_valid, selector_matches, validate_label_selector,
                                      validate_nonnegative, validate_object_meta, validate_object_meta_update,
                                      validate_qualified_name)

LEGACY_UID_LABEL = "controller-uid"
LEGACY_NAME_LABEL = "job-name"
UID_LABEL = "batch.kubernetes.io/controller-uid"
NAME_LABEL = "batch.kubernetes.io/job-name"
MAX_PARALLELISM_INDEXED = 100000
MAX_FAILED_INDEXES = 100000
POD_FAILURE_ACTIONS = ["Count", "FailIndex", "FailJob", "Ignore"]
_TZ_PART = re.compile(r"^[A-Za-z\.\-_0-9+]{1,14}$")


def _has_label(labels: dict, fld: Path, key: str, expected: str) -> list:
    if key not in labels:
        return [required(fld.child("labels").key(key), f"must be '{expected}'")]
    if labels[key] != expected:
        return [invalid(fld.child("labels").key(key), GoValue(go_string_map(labels)), f"must be '{expected}'")]
    return []


def _generated_selector(job: dict) -> list:
    spec = d(job.get("spec"))
    if spec.get("manualSelector") is True or not isinstance(spec.get("selector"), dict):
        return []
    meta = d(job.get("metadata"))
    uid, name = s(meta.get("uid")), s(meta.get("name"))
    errs = []
    if not uid:
        errs.append(required(path("metadata", "uid")))
    tp = path("spec", "template", "metadata")
    labels = strmap(d(d(spec.get("template")).get("metadata")).get("labels"))
    errs += _has_label(labels, tp, LEGACY_UID_LABEL, uid)
    errs += _has_label(labels, tp, LEGACY_NAME_LABEL, name)
    errs += _has_label(labels, tp, UID_LABEL, uid)
    errs += _has_label(labels, tp, NAME_LABEL, name)
    expected = {UID_LABEL: uid, NAME_LABEL: name, LEGACY_UID_LABEL: uid, LEGACY_NAME_LABEL: name}
    sel = spec["selector"]
    if selector_is_valid(sel) and not selector_matches(sel, expected):
        errs.append(invalid(path("spec", "selector"), GoValue(go_label_selector(sel)), "`selector` not auto-generated"))
    return errs


def _pod_failure_policy(spec: dict, fld: Path) -> list:
    errs = []
    policy = d(spec.get("podFailurePolicy"))
    rules = lst(policy.get("rules"))
    rules_path = fld.child("rules")
    if len(rules) > 20:
        errs.append(too_many(rules_path, len(rules), 20))
    tspec = d(d(spec.get("template")).get("spec"))
    container_names = {s(d(c).get("name")) for c in lst(tspec.get("containers")) + lst(tspec.get("initContainers"))}
    for n, rule in dicts(rules):
        rp = rules_path.index(n)
        action = s(rule.get("action"))
        if not action:
            errs.append(required(rp.child("action"), "valid values: [" + " ".join(go_quote(a) for a in POD_FAILURE_ACTIONS) + "]"))
        elif action == "FailIndex":
            if spec.get("backoffLimitPerIndex") is None:
                errs.append(invalid(rp.child("action"), action, "requires the backoffLimitPerIndex to be set"))
        elif action not in POD_FAILURE_ACTIONS:
            errs.append(not_supported(rp.child("action"), action, POD_FAILURE_ACTIONS))
        codes = rule.get("onExitCodes")
        conditions = lst(rule.get("onPodConditions"))
        if isinstance(codes, dict):
            cp = rp.child("onExitCodes")
            op = s(codes.get("operator"))
            if not op:
                errs.append(required(cp.child("operator"), 'valid values: ["In" "NotIn"]'))
            elif op not in ("In", "NotIn"):
                errs.append(not_supported(cp.child("operator"), op, ["In", "NotIn"]))
            cname = codes.get("containerName")
            if isinstance(cname, str) and cname not in container_names:
                errs.append(invalid(cp.child("containerName"), cname,
                                    "must be one of the container or initContainer names in the pod template"))
            values = [i(v) for v in lst(codes.get("values"))]
            vp = cp.child("values")
            if not values:
                errs.append(invalid(vp, GoValue("[]int32(nil)"), "at least one value is required"))
            elif len(values) > 255:
                errs.append(too_many(vp, len(values), 255))
            seen: set = set()
            ordered = True
            for k, v in enumerate(values):
                if op == "In" and v == 0:
                    errs.append(invalid(vp.index(k), v, "must not be 0 for the In operator"))
                if v in seen:
                    errs.append(duplicate(vp.index(k), v))
                seen.add(v)
                if k > 0 and values[k - 1] > v:
                    ordered = False
            if not ordered:
                errs.append(invalid(vp, values, "must be ordered"))
        if conditions:
            pp = rp.child("onPodConditions")
            if len(conditions) > 20:
                errs.append(too_many(pp, len(conditions), 20))
            for k, pattern in dicts(conditions):
                errs += validate_qualified_name(s(pattern.get("type")), pp.index(k).child("type"))
                status = s(pattern.get("status"))
                if not status:
                    errs.append(required(pp.index(k).child("status"), 'valid values: ["False" "True" "Unknown"]'))
                elif status not in ("False", "True", "Unknown"):
                    errs.append(not_supported(pp.index(k).child("status"), status, ["False", "True", "Unknown"]))
        if isinstance(codes, dict) and conditions:
            errs.append(invalid(rp, OMIT, "specifying both OnExitCodes and OnPodConditions is not supported"))
        if not isinstance(codes, dict) and not conditions:
            errs.append(invalid(rp, OMIT, "specifying one of OnExitCodes and OnPodConditions is required"))
    return errs


def _job_spec_common(spec: dict, fld: Path) -> list:
    """validateJobSpec: what Jobs and CronJob job templates share."""
    errs = []
    for key in ("parallelism", "completions", "activeDeadlineSeconds", "backoffLimit", "ttlSecondsAfterFinished",
                "backoffLimitPerIndex"):
        errs += validate_nonnegative(spec.get(key), fld.child(key))
    if spec.get("maxFailedIndexes") is not None:
        errs += validate_nonnegative(spec.get("maxFailedIndexes"), fld.child("maxFailedIndexes"))
        if spec.get("backoffLimitPerIndex") is None:
            errs.append(required(fld.child("backoffLimitPerIndex"), "when maxFailedIndexes is specified"))
    managed_by = spec.get("managedBy")
    if isinstance(managed_by, str):
        errs += _domain_prefixed_path(managed_by, fld.child("managedBy"))
        if len(managed_by) > 63:
            errs.append(too_long(fld.child("managedBy"), 63))
    mode = spec.get("completionMode")
    indexed = mode == "Indexed"
    if isinstance(mode, str):
        if mode not in ("NonIndexed", "Indexed"):
            errs.append(not_supported(fld.child("completionMode"), mode, ["NonIndexed", "Indexed"]))
        if indexed:
            if spec.get("completions") is None:
                errs.append(required(fld.child("completions"), "when completion mode is Indexed"))
            par = spec.get("parallelism")
            if is_int(par) and par > MAX_PARALLELISM_INDEXED:
                errs.append(invalid(fld.child("parallelism"), par,
                                    f"must be less than or equal to {MAX_PARALLELISM_INDEXED} when completion mode is Indexed"))
            mfi = spec.get("maxFailedIndexes")
            if is_int(mfi) and is_int(spec.get("completions")) and mfi > spec["completions"]:
                errs.append(invalid(fld.child("maxFailedIndexes"), mfi, "must be less than or equal to completions"))
            if is_int(mfi) and mfi > MAX_FAILED_INDEXES:
                errs.append(invalid(fld.child("maxFailedIndexes"), mfi, f"must be less than or equal to {MAX_FAILED_INDEXES}"))
    if not indexed:
        if spec.get("backoffLimitPerIndex") is not None:
            errs.append(invalid(fld.child("backoffLimitPerIndex"), spec["backoffLimitPerIndex"], "requires indexed completion mode"))
        if spec.get("maxFailedIndexes") is not None:
            errs.append(invalid(fld.child("maxFailedIndexes"), spec["maxFailedIndexes"], "requires indexed completion mode"))
    if isinstance(spec.get("podFailurePolicy"), dict):
        errs += _pod_failure_policy(spec, fld.child("podFailurePolicy"))
    if isinstance(spec.get("successPolicy"), dict):
        if not indexed:
            errs.append(invalid(fld.child("successPolicy"), GoValue("batch.SuccessPolicy{...}"), "requires indexed completion mode"))
        elif not lst(spec["successPolicy"].get("rules")):
            errs.append(required(fld.child("successPolicy", "rules"),
                                 "at least one rules must be specified when the successPolicy is specified"))
    prp = spec.get("podReplacementPolicy")
    if isinstance(prp, str):
        if isinstance(spec.get("podFailurePolicy"), dict):
            if prp != "Failed":
                errs.append(not_supported(fld.child("podReplacementPolicy"), prp, ["Failed"]))
        elif prp not in ("Failed", "TerminatingOrFailed"):
            errs.append(not_supported(fld.child("podReplacementPolicy"), prp, ["Failed", "TerminatingOrFailed"]))
    errs += pods.validate_pod_template_spec(spec.get("template"), fld.child("template"))
    rp = s(d(d(spec.get("template")).get("spec")).get("restartPolicy"))
    rpp = fld.child("template", "spec", "restartPolicy")
    if rp in ("Always", ""):
        errs.append(required(rpp, 'valid values: "OnFailure", "Never"'))
    elif rp not in ("OnFailure", "Never"):
        errs.append(not_supported(rpp, rp, ["OnFailure", "Never"]))
    elif isinstance(spec.get("podFailurePolicy"), dict) and rp != "Never":
        errs.append(invalid(rpp, rp, 'only "Never" is supported when podFailurePolicy is specified'))
    return errs


def _domain_prefixed_path(value: str, fld: Path) -> list:
    if not value:
        return [required(fld)]
    host, sep, rest = value.partition("/")
    if not sep or not host or not rest:
        return [invalid(fld, value, 'must be a domain-prefixed path (such as "acme.io/foo")')]
    errs = [invalid(fld, host, m) for m in names.is_dns1123_subdomain(host)]
    if not re.fullmatch(names.HTTP_PATH_FMT, rest):
        errs.append(invalid(fld, rest, names.regex_error("Invalid path", names.HTTP_PATH_FMT)))
    return errs


def _job_spec(spec: dict, fld: Path) -> list:
    errs = _job_spec_common(spec, fld)
    sel = spec.get("selector")
    if not isinstance(sel, dict):
        errs.append(required(fld.child("selector")))
    else:
        errs += validate_label_selector(sel, fld.child("selector"))
        labels = d(d(spec.get("template")).get("metadata")).get("labels")
        if selector_is_valid(sel) and not selector_matches(sel, labels):
            errs.append(invalid(fld.child("template", "metadata", "labels"),
                                GoValue(go_string_map(strmap(labels) if labels is not None else None)),
                                "`selector` does not match template `labels`"))
    return errs


def validate_job(obj: dict) -> list:
    errs = validate_object_meta(obj, True, names.name_is_dns_subdomain)
    errs += _generated_selector(obj)
    spec = d(obj.get("spec"))
    errs += _job_spec(spec, path("spec"))
    completions = spec.get("completions")
    if spec.get("completionMode") == "Indexed" and is_int(completions) and completions > 0:
        name = s(d(obj.get("metadata")).get("name"))
        hostname = f"{name}-{completions - 1}"
        if names.is_dns1123_label(hostname):
            errs.append(invalid(path("metadata", "name"), name,
                                f"will not able to create pod with invalid DNS label: {hostname}"))
    return errs


def _scheduling_directives_mutable(old: dict) -> bool:
    return d(old.get("spec")).get("suspend") is True and not d(old.get("status")).get("startTime")


def _masked_template(template, mutable_from=None) -> dict:
    t = dict(d(template))
    if mutable_from is None:
        return t
    src = d(mutable_from)
    meta = dict(d(t.get("metadata")))
    for key in ("labels", "annotations"):
        if key in d(src.get("metadata")):
            meta[key] = d(src.get("metadata"))[key]
        else:
            meta.pop(key, None)
    t["metadata"] = meta
    spec = dict(d(t.get("spec")))
    sspec = d(src.get("spec"))
    for key in ("nodeSelector", "tolerations", "schedulingGates"):
        if key in sspec:
            spec[key] = sspec[key]
        else:
            spec.pop(key, None)
    aff = dict(d(spec.get("affinity")))
    new_na = d(sspec.get("affinity")).get("nodeAffinity")
    if new_na is not None:
        aff["nodeAffinity"] = new_na
    else:
        aff.pop("nodeAffinity", None)
    if aff:
        spec["affinity"] = aff
    else:
        spec.pop("affinity", None)
    t["spec"] = spec
    return t


def validate_job_update(new: dict, old: dict) -> list:
    errs = validate_object_meta_update(new, old)
    ns, os_ = d(new.get("spec")), d(old.get("spec"))
    sp = path("spec")
    errs += _job_spec(ns, sp)
    if ns.get("completionMode") == "Indexed":
        if ns.get("completions") != os_.get("completions") and is_int(ns.get("completions")) \
                and ns.get("completions") != ns.get("parallelism"):
            errs.append(invalid(sp.child("completions"), ns["completions"], "can only be modified in tandem with spec.parallelism"))
    elif ns.get("completions") != os_.get("completions"):
        errs.append(invalid(sp.child("completions"), ns.get("completions"), FIELD_IMMUTABLE))
    if ns.get("selector") != os_.get("selector"):
        errs.append(invalid(sp.child("selector"), GoValue(go_label_selector(ns.get("selector"))), FIELD_IMMUTABLE))
    old_template = os_.get("template")
    if _scheduling_directives_mutable(old):
        old_template = _masked_template(old_template, ns.get("template"))
    if d(ns.get("template")) != d(old_template):
        errs.append(invalid(sp.child("template"), GoValue("core.PodTemplateSpec{...}"), FIELD_IMMUTABLE))
    for key in ("completionMode", "podFailurePolicy", "backoffLimitPerIndex", "managedBy", "successPolicy"):
        if ns.get(key) != os_.get(key):
            errs.append(invalid(sp.child(key), ns.get(key) if not isinstance(ns.get(key), dict)
                                else GoValue("{...}"), FIELD_IMMUTABLE))
    return errs


def validate_job_status_update(new: dict, old: dict) -> list:
    errs = validate_object_meta_update(new, old)
    status = d(new.get("status"))
    for key in ("active", "succeeded", "failed", "ready", "terminating"):
        errs += validate_nonnegative(status.get(key), path("status", key))
    return errs


# ---- CronJobs ---------------------------------------------------------------------------

def _time_zone(tz, fld: Path) -> list:
    if tz is None:
        return []
    tz = s(tz)
    if not tz:
        return [invalid(fld, tz, "timeZone must be nil or non-empty string")]
    for part in tz.split("/"):
        if part in (".", "..") or part.startswith("-") or not _TZ_PART.fullmatch(part):
            return [invalid(fld, tz, f"unknown time zone {tz}")]
    if tz.lower() == "local":
        return [invalid(fld, tz, "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones")]
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return [invalid(fld, tz, f"unknown time zone {tz}")]
    return []


def _cron_job_spec(spec: dict, old_spec, fld: Path) -> list:
    errs = []
    schedule = s(spec.get("schedule"))
    sp = fld.child("schedule")
    if not schedule:
        errs.append(required(sp))
    else:
        allow_tz = old_spec is not None and "TZ" in s(old_spec.get("schedule"))
        try:
            cron.parse_standard(schedule)
        except cron.CronError as err:
            errs.append(invalid(sp, schedule, str(err)))
        if allow_tz and "TZ" in schedule and spec.get("timeZone") is not None:
            errs.append(invalid(sp, schedule, "cannot use both timeZone field and TZ or CRON_TZ in schedule"))
        elif not allow_tz and "TZ" in schedule:
            errs.append(invalid(sp, schedule, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"))
    errs += validate_nonnegative(spec.get("startingDeadlineSeconds"), fld.child("startingDeadlineSeconds"))
    if old_spec is None or old_spec.get("timeZone") != spec.get("timeZone"):
        errs += _time_zone(spec.get("timeZone"), fld.child("timeZone"))
    policy = s(spec.get("concurrencyPolicy"))
    if not policy:
        errs.append(required(fld.child("concurrencyPolicy")))
    elif policy not in ("Allow", "Forbid", "Replace"):
        errs.append(not_supported(fld.child("concurrencyPolicy"), policy, ["Allow", "Forbid", "Replace"]))
    jt = d(spec.get("jobTemplate"))
    jtp = fld.child("jobTemplate")
    jspec = d(jt.get("spec"))
    errs += _job_spec_common(jspec, jtp.child("spec"))
    if isinstance(jspec.get("selector"), dict):
        errs.append(invalid(jtp.child("spec", "selector"), GoValue(go_label_selector(jspec["selector"])),
                            "`selector` will be auto-generated"))
    if jspec.get("manualSelector") is True:
        errs.append(not_supported(jtp.child("spec", "manualSelector"), True, ["nil", "false"]))
    errs += validate_nonnegative(spec.get("successfulJobsHistoryLimit"), fld.child("successfulJobsHistoryLimit"))
    errs += validate_nonnegative(spec.get("failedJobsHistoryLimit"), fld.child("failedJobsHistoryLimit"))
    return errs


def validate_cron_job(obj: dict) -> list:
    errs = validate_object_meta(obj, True, names.name_is_dns_subdomain)
    errs += _cron_job_spec(d(obj.get("spec")), None, path("spec"))
    name = s(d(obj.get("metadata")).get("name"))
    if len(name) > 52:
        errs.append(invalid(path("metadata", "name"), name, "must be no more than 52 characters"))
    return errs


def validate_cron_job_update(new: dict, old: dict) -> list:
    errs = validate_object_meta_update(new, old)
    return errs + _cron_job_spec(d(new.get("spec")), d(old.get("spec")), path("spec"))


def validate_cron_job_status_update(new: dict, old: dict) -> list:
    return validate_object_meta_update(new, old)


CREATE = {"Job": validate_job, "CronJob": validate_cron_job}
UPDATE = {"Job": validate_job_update, "CronJob": validate_cron_job_update}
STATUS_UPDATE = {"Job": validate_job_status_update, "CronJob": validate_cron_job_status_update}
