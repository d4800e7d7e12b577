"""batch/v1 defaults (pkg/apis/batch/v1/defaults.go)."""

from __future__ import annotations

from k8py.api.defaults.core import _dicts, _ensure, default_pod_template, empty_template_metadata

MAX_INT32 = 2 ** 31 - 1


def default_job(obj: dict) -> None:
    spec = _ensure(obj, "spec")
    if spec is None:
        return
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
        spec["parallelism"] = 1
    if spec.get("parallelism") is None:
        spec["parallelism"] = 1
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = MAX_INT32 if spec.get("backoffLimitPerIndex") is not None else 6
    template = _ensure(spec, "template")
    labels = ((template or {}).get("metadata") or {}).get("labels") if isinstance(template, dict) else None
    meta = _ensure(obj, "metadata")
    if isinstance(labels, dict) and meta is not None and not meta.get("labels"):
        meta["labels"] = dict(labels)
    if spec.get("completionMode") is None:
        spec["completionMode"] = "NonIndexed"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    policy = spec.get("podFailurePolicy")
    if isinstance(policy, dict):
        for rule in _dicts(policy.get("rules")):
            for pattern in _dicts(rule.get("onPodConditions")):
                if not pattern.get("status"):
                    pattern["status"] = "True"
    if spec.get("podReplacementPolicy") is None:
        spec["podReplacementPolicy"] = "Failed" if isinstance(policy, dict) else "TerminatingOrFailed"
    if template is not None:
        default_pod_template(template)


def default_cron_job(obj: dict) -> None:
    spec = _ensure(obj, "spec")
    if spec is None:
        return
    if not spec.get("concurrencyPolicy"):
        spec["concurrencyPolicy"] = "Allow"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    if spec.get("successfulJobsHistoryLimit") is None:
        spec["successfulJobsHistoryLimit"] = 3
    if spec.get("failedJobsHistoryLimit") is None:
        spec["failedJobsHistoryLimit"] = 1
    job_template = _ensure(spec, "jobTemplate")
    if job_template is not None:
        empty_template_metadata(job_template)
        job_spec = _ensure(job_template, "spec")
        if job_spec is not None:
            template = _ensure(job_spec, "template")
            if template is not None:
                default_pod_template(template)


DEFAULTERS = {"Job": default_job, "CronJob": default_cron_job}
