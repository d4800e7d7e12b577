"""Printers for batch/v1: Job and CronJob."""

from __future__ import annotations

from k8py.api.printers import duration
from k8py.api.printers.columns import AGE, CONTAINERS, IMAGES, NAME, Column, Printer, age
from k8py.api.printers.formatting import NONE, bool_word, container_cells, format_label_selector
from k8py.api.printers.values import (as_dict, as_list, conditions, dig, integer, is_condition_true,
                                      name_of, optional_int, text)


def job_completions(job: dict) -> str:
    """`succeeded/completions`; a work-queue job (no completions) shows `/1`, plus its parallelism."""
    spec = as_dict(job.get("spec"))
    succeeded = integer(dig(job, "status", "succeeded"))
    completions = optional_int(spec.get("completions"))
    if completions is not None:
        return f"{succeeded}/{completions}"
    parallelism = optional_int(spec.get("parallelism")) or 0
    return f"{succeeded}/1 of {parallelism}" if parallelism > 1 else f"{succeeded}/1"


def job_duration(job: dict, now) -> str:
    """Run time: start to completion, or start to now while running; "" before it starts."""
    start = duration.parse_time(dig(job, "status", "startTime"))
    if start is None:
        return ""
    end = duration.parse_time(dig(job, "status", "completionTime"))
    return duration.human_duration((end or duration.aware(now)) - start)


def job_status(job: dict) -> str:
    conds = conditions(job)
    if is_condition_true(conds, "Complete"):
        return "Complete"
    if is_condition_true(conds, "Failed"):
        return "Failed"
    if dig(job, "metadata", "deletionTimestamp"):
        return "Terminating"
    if is_condition_true(conds, "Suspended"):
        return "Suspended"
    if is_condition_true(conds, "FailureTarget"):
        return "FailureTarget"
    return "Running"


def _job_cells(job, now):
    names, images = container_cells(dig(job, "spec", "template", "spec", "containers"))
    return [
        name_of(job), job_status(job), job_completions(job), job_duration(job, now), age(job, now),
        names, images, format_label_selector(dig(job, "spec", "selector")),
    ]


JOB = Printer((
    NAME,
    Column("Status", description="Status of the job."),
    Column("Completions", doc="batch.v1.JobStatus.succeeded"),
    Column("Duration", description="Time required to complete the job."),
    AGE, CONTAINERS, IMAGES,
    Column("Selector", priority=1, doc="batch.v1.JobSpec.selector"),
), _job_cells)


def _cron_job_cells(cron, now):
    spec = as_dict(cron.get("spec"))
    job_spec = as_dict(dig(spec, "jobTemplate", "spec"))
    names, images = container_cells(dig(job_spec, "template", "spec", "containers"))
    last_schedule = dig(cron, "status", "lastScheduleTime")
    time_zone = spec.get("timeZone")
    return [
        name_of(cron), text(spec.get("schedule")), NONE if time_zone is None else text(time_zone),
        # suspend is defaulted to false, so a missing value prints as False.
        bool_word(spec.get("suspend", False)),
        len(as_list(dig(cron, "status", "active"))),
        NONE if last_schedule is None else duration.since(last_schedule, now),
        age(cron, now), names, images, format_label_selector(job_spec.get("selector")),
    ]


CRON_JOB = Printer((
    NAME,
    Column("Schedule", doc="batch.v1.CronJobSpec.schedule"),
    Column("Timezone", doc="batch.v1.CronJobSpec.timeZone"),
    Column("Suspend", type="boolean", doc="batch.v1.CronJobSpec.suspend"),
    Column("Active", type="integer", doc="batch.v1.CronJobStatus.active"),
    Column("Last Schedule", doc="batch.v1.CronJobStatus.lastScheduleTime"),
    AGE, CONTAINERS, IMAGES,
    Column("Selector", priority=1, doc="batch.v1.JobSpec.selector"),
), _cron_job_cells)


PRINTERS = {("batch", "Job"): JOB, ("batch", "CronJob"): CRON_JOB}
