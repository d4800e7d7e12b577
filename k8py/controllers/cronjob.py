"""The CronJob controller: starts Jobs on a cron schedule.

Each sync of a CronJob:
1. reconciles `status.active` with the Jobs it owns (finished ones leave the
   list and may set `lastSuccessfulTime`; vanished ones are dropped; owned
   running Jobs missing from the list are put back);
2. works out the most recent start time owed (only that one is run after a
   downtime; more than 100 missed starts is reported as a clock problem) and
   skips it if it is older than `startingDeadlineSeconds`;
3. applies the concurrency policy (Allow, Forbid: skip while one runs,
   Replace: delete the running ones first) and creates the Job named
   `<cronjob>-<scheduled minutes since epoch>`, so a repeat is harmless;
4. deletes the oldest finished Jobs beyond the history limits;
5. asks to be woken at the next start time.
"""

from __future__ import annotations

import copy
import datetime
import logging

from k8py.apimachinery.meta import now as utc_now, parse_time, rfc3339
from k8py.client import ApiError
from k8py.controllers import cronschedule
from k8py.controllers.base import Controller, split_key
from k8py.controllers.owned import enqueue_owner, index_by_controller, owned_by
from k8py.controllers.ownership import new_controller_ref

log = logging.getLogger("k8py.controllers.cronjob")

SCHEDULED_TIMESTAMP = "batch.kubernetes.io/cronjob-scheduled-timestamp"
WAKE_MARGIN = 0.1  # seconds past the start time, so the clock has certainly passed it


def job_finished(job: dict) -> str | None:
    """'Complete' or 'Failed' once the Job has that condition, else None."""
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return cond["type"]
    return None


def job_reference(job: dict) -> dict:
    meta = job["metadata"]
    return {"kind": "Job", "namespace": meta["namespace"], "name": meta["name"], "uid": meta["uid"],
            "apiVersion": "batch/v1", "resourceVersion": meta.get("resourceVersion", "")}


def history_to_delete(jobs: list[dict], successful_limit: int | None, failed_limit: int | None) -> list[dict]:
    """Finished Jobs beyond the history limits, oldest (by start time) first."""
    doomed: list[dict] = []
    for outcome, limit in (("Complete", successful_limit), ("Failed", failed_limit)):
        if limit is None:
            continue
        finished = [j for j in jobs if job_finished(j) == outcome and not j["metadata"].get("deletionTimestamp")]
        finished.sort(key=lambda j: ((j.get("status") or {}).get("startTime") or
                                     j["metadata"].get("creationTimestamp") or "", j["metadata"]["name"]))
        doomed += finished[:max(len(finished) - limit, 0)]
    return doomed


def new_job(cronjob: dict, scheduled: datetime.datetime, zone: datetime.tzinfo) -> dict:
    template = copy.deepcopy((cronjob.get("spec") or {}).get("jobTemplate") or {})
    template_meta = template.get("metadata") or {}
    annotations = dict(template_meta.get("annotations") or {})
    annotations[SCHEDULED_TIMESTAMP] = cronschedule.scheduled_timestamp(scheduled, zone)
    meta = {"name": cronschedule.job_name(cronjob["metadata"]["name"], scheduled),
            "namespace": cronjob["metadata"]["namespace"],
            "labels": dict(template_meta.get("labels") or {}),
            "annotations": annotations,
            "ownerReferences": [new_controller_ref(cronjob, "batch/v1", "CronJob")]}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": template.get("spec") or {}}


def _go_time(t: datetime.datetime) -> str:
    """Go's time.Time default text, as upstream's MissSchedule event prints it."""
    return t.strftime("%Y-%m-%d %H:%M:%S +0000 UTC")


class CronJobController(Controller):
    name = "cronjob"
    workers = 5

    async def setup(self) -> None:
        self.cronjobs = self.ctx.informer("batch/v1", "cronjobs")
        self.jobs = self.ctx.informer("batch/v1", "jobs")
        index_by_controller(self.ctx, self.jobs)
        self.cronjobs.add_handler(on_add=self.enqueue, on_update=self._cronjob_updated)
        owner = enqueue_owner(self, "CronJob")
        self.jobs.add_handler(on_add=owner, on_update=owner, on_delete=owner)

    def _cronjob_updated(self, old: dict, new: dict) -> None:
        self.enqueue(new)

    async def sync(self, key: str) -> None:
        cronjob = self.cronjobs.get(key)
        if cronjob is None or cronjob["metadata"].get("deletionTimestamp"):
            return
        cronjob = copy.deepcopy(cronjob)
        namespace, name = split_key(key)
        jobs = [j for j in owned_by(self.jobs, cronjob)]
        status_before = copy.deepcopy(cronjob.get("status") or {})
        self._reconcile_active(cronjob, jobs)
        wake = await self._maybe_start(cronjob, jobs)
        await self._clean_history(cronjob, jobs)
        if (cronjob.get("status") or {}) != status_before:
            await self.client.resource("batch/v1", "cronjobs", namespace).update_status(cronjob)
        if wake is not None:
            delay = max((wake - utc_now()).total_seconds(), 0) + WAKE_MARGIN
            self.requeue_after(key, delay)

    # -- 1. active list

    def _reconcile_active(self, cronjob: dict, jobs: list[dict]) -> None:
        status = cronjob.setdefault("status", {})
        active = list(status.get("active") or [])
        by_uid = {j["metadata"]["uid"]: j for j in jobs}
        listed = {ref.get("uid") for ref in active}
        for job in jobs:
            uid = job["metadata"]["uid"]
            outcome = job_finished(job)
            if outcome is None and uid not in listed and not job["metadata"].get("deletionTimestamp"):
                self.recorder.event(cronjob, "Warning", "UnexpectedJob", "Saw a job that the controller did not "
                                    f"create or forgot: {job['metadata']['name']}")
                active.append(job_reference(job))
            elif outcome is not None and uid in listed:
                self.recorder.event(cronjob, "Normal", "SawCompletedJob",
                                    f"Saw completed job: {job['metadata']['name']}, condition: {outcome}")
                active = [r for r in active if r.get("uid") != uid]
            if outcome == "Complete":
                done = (job.get("status") or {}).get("completionTime")
                last = status.get("lastSuccessfulTime")
                if done and (not last or parse_time(done) > parse_time(last)):
                    status["lastSuccessfulTime"] = done
        for ref in list(active):
            if ref.get("uid") not in by_uid:
                self.recorder.event(cronjob, "Normal", "MissingJob", f"Active job went missing: {ref.get('name')}")
                active = [r for r in active if r.get("uid") != ref.get("uid")]
        if active:
            status["active"] = active
        else:
            status.pop("active", None)

    # -- 2 and 3. starting the owed job

    async def _maybe_start(self, cronjob: dict, jobs: list[dict]) -> datetime.datetime | None:
        spec = cronjob.get("spec") or {}
        status = cronjob["status"]
        try:
            zone = cronschedule.time_zone(spec.get("timeZone"))
        except cronschedule.ScheduleError as e:
            self.recorder.event(cronjob, "Warning", "UnknownTimeZone",
                                f"invalid timeZone: {spec.get('timeZone')!r}: {e}")
            return None
        try:
            schedule = cronschedule.Schedule.parse(spec.get("schedule", ""), spec.get("timeZone"))
        except cronschedule.ScheduleError as e:
            self.recorder.event(cronjob, "Warning", "UnparseableSchedule",
                                f"unparseable schedule: {spec.get('schedule')!r} : {e}")
            return None
        if spec.get("suspend"):
            return None
        now = utc_now()
        deadline = spec.get("startingDeadlineSeconds")
        earliest = cronschedule.earliest_considered(parse_time(status.get("lastScheduleTime")),
                                                    parse_time(cronjob["metadata"]["creationTimestamp"]),
                                                    now, deadline)
        try:
            missed = cronschedule.missed_starts(schedule, earliest, now)
        except cronschedule.ScheduleError as e:
            self.recorder.event(cronjob, "Warning", "InvalidSchedule",
                                f"invalid schedule: {spec.get('schedule')} : {e}")
            return None
        if missed.too_many:
            self.recorder.event(cronjob, "Warning", "TooManyMissedTimes",
                                "too many missed start times. Set or decrease .spec.startingDeadlineSeconds "
                                "or check clock skew")
        wake = cronschedule.next_start_after(schedule, earliest, now)
        scheduled = missed.most_recent
        if scheduled is None:
            return wake
        if deadline is not None and scheduled + datetime.timedelta(seconds=deadline) < now:
            self.recorder.event(cronjob, "Warning", "MissSchedule",
                                f"Missed scheduled time to start a job: {_go_time(scheduled)}")
            return wake
        job_name = cronschedule.job_name(cronjob["metadata"]["name"], scheduled)
        active = status.get("active") or []
        if any(ref.get("name") == job_name for ref in active):
            return wake
        policy = spec.get("concurrencyPolicy") or "Allow"
        if policy == "Forbid" and active:
            self.recorder.event(cronjob, "Normal", "JobAlreadyActive",
                                "Not starting job because prior execution is running and concurrency policy is "
                                "Forbid")
            return wake
        if policy == "Replace":
            for ref in list(active):
                await self._delete_job(cronjob, ref["name"])
                status["active"] = [r for r in status.get("active") or [] if r.get("uid") != ref.get("uid")]
            if not status.get("active"):
                status.pop("active", None)
        job = await self._create_job(cronjob, scheduled, zone)
        if job is not None:
            if job_finished(job) is None:
                status.setdefault("active", []).append(job_reference(job))
            status["lastScheduleTime"] = rfc3339(scheduled)
        return wake

    async def _create_job(self, cronjob: dict, scheduled: datetime.datetime, zone) -> dict | None:
        api = self.client.resource("batch/v1", "jobs", cronjob["metadata"]["namespace"])
        body = new_job(cronjob, scheduled, zone)
        try:
            job = await api.create(body)
        except ApiError as e:
            if e.already_exists:
                # A previous sync made it but its status write was lost: take it if it is ours.
                existing = await api.get(body["metadata"]["name"])
                refs = existing["metadata"].get("ownerReferences") or []
                return existing if any(r.get("uid") == cronjob["metadata"]["uid"] for r in refs) else None
            self.recorder.event(cronjob, "Warning", "FailedCreate", f"Error creating job: {e}")
            raise
        self.recorder.event(cronjob, "Normal", "SuccessfulCreate", f"Created job {job['metadata']['name']}")
        return job

    async def _delete_job(self, cronjob: dict, name: str) -> None:
        api = self.client.resource("batch/v1", "jobs", cronjob["metadata"]["namespace"])
        try:
            await api.delete(name, propagation_policy="Background")
        except ApiError as e:
            if not e.not_found:
                self.recorder.event(cronjob, "Warning", "FailedDelete", f"Deleted job: {e}")
                raise
            return
        self.recorder.event(cronjob, "Normal", "SuccessfulDelete", f"Deleted job {name}")

    # -- 4. history

    async def _clean_history(self, cronjob: dict, jobs: list[dict]) -> None:
        spec = cronjob.get("spec") or {}
        doomed = history_to_delete(jobs, spec.get("successfulJobsHistoryLimit"), spec.get("failedJobsHistoryLimit"))
        for job in doomed:
            await self._delete_job(cronjob, job["metadata"]["name"])
