"""The TTL-after-finished controller: deletes finished Jobs once their TTL has passed.

A Job with `ttlSecondsAfterFinished` expires that many seconds after it
finished (its Complete or Failed condition's transition time). The Job is
re-read from the API server before deletion, so a TTL changed meanwhile is
honoured, and deleted in the foreground with its uid as precondition: its
pods go first and a new Job of the same name is never touched.
"""

from __future__ import annotations

import datetime
import logging

from k8py.apimachinery.meta import now as utc_now, parse_time
from k8py.client import ApiError
from k8py.controllers.base import Controller, split_key

log = logging.getLogger("k8py.controllers.ttlafterfinished")


def finish_time(job: dict) -> datetime.datetime | None:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") in ("Complete", "Failed") and cond.get("status") == "True":
            return parse_time(cond.get("lastTransitionTime")) or parse_time(
                (job.get("status") or {}).get("completionTime"))
    return None


def expires_at(job: dict) -> datetime.datetime | None:
    """When the Job may be deleted; None when it has no TTL, is unfinished or already going."""
    ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
    if ttl is None or job["metadata"].get("deletionTimestamp"):
        return None
    finished = finish_time(job)
    if finished is None:
        return None
    return finished + datetime.timedelta(seconds=ttl)


class TTLAfterFinishedController(Controller):
    name = "ttl-after-finished"
    workers = 2

    async def setup(self) -> None:
        self.jobs = self.ctx.informer("batch/v1", "jobs")
        self.jobs.add_handler(on_add=self._maybe_enqueue, on_update=lambda old, new: self._maybe_enqueue(new))

    def _maybe_enqueue(self, job: dict) -> None:
        if expires_at(job) is not None:
            self.enqueue(job)

    async def sync(self, key: str) -> None:
        job = self.jobs.get(key)
        if job is None or expires_at(job) is None:
            return
        namespace, name = split_key(key)
        left = (expires_at(job) - utc_now()).total_seconds()
        if left > 0:
            self.requeue_after(key, left)
            return
        api = self.client.resource("batch/v1", "jobs", namespace)
        try:
            fresh = await api.get(name)
        except ApiError as e:
            if e.not_found:
                return
            raise
        expiry = expires_at(fresh)
        if expiry is None:
            return
        left = (expiry - utc_now()).total_seconds()
        if left > 0:
            self.requeue_after(key, left)
            return
        log.info("deleting job %s: its TTL after finishing has passed", key)
        try:
            await api.delete(name, propagation_policy="Foreground",
                             preconditions={"uid": fresh["metadata"]["uid"]})
        except ApiError as e:
            if not e.not_found and e.code != 409:
                raise
