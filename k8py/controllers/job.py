"""The Job controller: runs pods until enough succeed, or the Job fails.

One sync of a Job:
1. claims its pods (adopting orphans the selector matches);
2. counts finished pods exactly once through the tracking finalizer
   (`batch.kubernetes.io/job-tracking`): a finished pod's uid first goes to
   `status.uncountedTerminatedPods`, then its finalizer is removed, then it
   moves into `succeeded`/`failed` (so a crash between steps neither loses
   nor double-counts a pod);
3. applies the podFailurePolicy to newly failed pods (FailJob, FailIndex,
   Ignore, Count) and decides whether the Job failed (backoffLimit,
   activeDeadlineSeconds, failed indexes) or succeeded (completions, all
   indexes); terminal conditions are preceded by FailureTarget or
   SuccessCriteriaMet and set once no pod is left running, as v1.32 does;
4. otherwise creates or deletes pods towards `parallelism`, waiting out the
   exponential back-off after failures, and honours `suspend`.
"""

from __future__ import annotations

import copy
import datetime
import logging

from k8py.apimachinery.meta import now as utc_now, parse_time, rfc3339
from k8py.apimachinery.selectors import selector_from_label_selector
from k8py.client import ApiError
from k8py.controllers import jobpolicy as jp
from k8py.controllers.base import Controller, split_key
from k8py.controllers.batches import create_in_batches
from k8py.controllers.owned import enqueue_owner, index_by_controller, namespace_terminating, owned_by, owner_key
from k8py.controllers.ownership import claim, controller_ref, new_controller_ref

log = logging.getLogger("k8py.controllers.job")

MAX_BATCH = 500  # pods created per sync at most (upstream's MaxPodCreateDeletePerSync)


def _condition(type_: str, reason: str, message: str, status: str = "True") -> dict:
    t = rfc3339()
    return {"type": type_, "status": status, "lastProbeTime": t, "lastTransitionTime": t, "reason": reason,
            "message": message}


def find_condition(job: dict, type_: str) -> dict | None:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_:
            return cond
    return None


def has_condition(job: dict, type_: str) -> bool:
    cond = find_condition(job, type_)
    return cond is not None and cond.get("status") == "True"


def is_finished(job: dict) -> bool:
    return has_condition(job, "Complete") or has_condition(job, "Failed")


def set_condition(job: dict, cond: dict) -> bool:
    """Add or update a condition; True when something changed."""
    conditions = job.setdefault("status", {}).setdefault("conditions", [])
    for i, existing in enumerate(conditions):
        if existing.get("type") == cond["type"]:
            if existing.get("status") == cond["status"] and existing.get("reason") == cond["reason"]:
                return False
            conditions[i] = cond
            return True
    conditions.append(cond)
    return True


def new_pod(job: dict, index: int | None, index_failures: int | None = None) -> dict:
    template = copy.deepcopy((job.get("spec") or {}).get("template") or {})
    tmeta = template.get("metadata") or {}
    name = job["metadata"]["name"]
    meta = {"generateName": f"{name}-" if index is None else f"{name}-{index}-",
            "namespace": job["metadata"]["namespace"],
            "labels": dict(tmeta.get("labels") or {}),
            "annotations": dict(tmeta.get("annotations") or {}),
            "ownerReferences": [new_controller_ref(job, "batch/v1", "Job")],
            "finalizers": [jp.TRACKING_FINALIZER]}
    spec = template.get("spec") or {}
    if index is not None:
        meta["annotations"][jp.COMPLETION_INDEX] = str(index)
        if index_failures is not None:  # backoffLimitPerIndex: how often this index failed before
            meta["annotations"][jp.INDEX_FAILURE_COUNT] = str(index_failures)
        meta["labels"][jp.COMPLETION_INDEX] = str(index)
        if not spec.get("hostname"):
            spec["hostname"] = f"{name}-{index}"
        env_var = {"name": jp.INDEX_ENV, "valueFrom": {"fieldRef": {
            "fieldPath": f"metadata.annotations['{jp.COMPLETION_INDEX}']"}}}
        for container in (spec.get("initContainers") or []) + (spec.get("containers") or []):
            env = container.setdefault("env", [])
            if not any(e.get("name") == jp.INDEX_ENV for e in env):
                env.append(dict(env_var))
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


class _Backoff:
    """Failures in a row (since the last success) and when the last one happened."""

    def __init__(self):
        self.failures = 0
        self.last_failure: datetime.datetime | None = None


class JobController(Controller):
    name = "job"
    uses_expectations = True
    workers = 5

    async def setup(self) -> None:
        self.backoffs: dict[str, _Backoff] = {}
        self.jobs = self.ctx.informer("batch/v1", "jobs")
        self.pods = self.ctx.informer("v1", "pods")
        index_by_controller(self.ctx, self.pods)
        self.jobs.add_handler(on_add=self.enqueue, on_update=lambda old, new: self.enqueue(new),
                              on_delete=self._job_deleted)
        owner = enqueue_owner(self, "Job")
        self.pods.add_handler(on_add=self._pod_added, on_update=lambda old, new: self._pod_changed(new),
                              on_delete=self._pod_deleted)
        self._owner = owner

    # -- event handlers

    def _job_deleted(self, job: dict) -> None:
        key = object_key_of(job)
        self.expectations.forget(key)
        self.backoffs.pop(key, None)
        for pod in owned_by(self.pods, job):  # let its pods go: nobody will count them now
            if jp.has_tracking_finalizer(pod):
                self.enqueue("pod:" + object_key_of(pod))

    def _pod_added(self, pod: dict) -> None:
        key = owner_key(pod, "Job")
        if key:
            self.expectations.creation_observed(key)
        self._pod_changed(pod)

    def _pod_changed(self, pod: dict) -> None:
        key = owner_key(pod, "Job")
        if key and self.jobs.get(key) is not None:
            self.enqueue(key)
            return
        if controller_ref(pod) is None:
            for job in self._selecting_jobs(pod):  # an orphan: the Jobs that may adopt it
                self.enqueue(job)
        if jp.has_tracking_finalizer(pod):
            self.enqueue("pod:" + object_key_of(pod))

    def _selecting_jobs(self, pod: dict) -> list[dict]:
        labels = pod["metadata"].get("labels") or {}
        found = []
        for job in self.jobs.by_index("namespace", pod["metadata"].get("namespace", "")):
            selector = selector_from_label_selector((job.get("spec") or {}).get("selector"))
            if selector is not None and not selector.empty() and selector.matches(labels):
                found.append(job)
        return found

    def _pod_deleted(self, pod: dict) -> None:
        key = owner_key(pod, "Job")
        if key:
            self.expectations.deletion_observed(key, pod["metadata"].get("uid"))
            self.enqueue(key)

    # -- sync

    async def sync(self, key: str) -> None:
        if key.startswith("pod:"):
            await self._release_orphan(key[4:])
            return
        job = self.jobs.get(key)
        if job is None or job["metadata"].get("deletionTimestamp"):
            return
        job = copy.deepcopy(job)
        namespace, _ = split_key(key)
        pods = await self._claim_pods(job)
        if is_finished(job):
            await self._remove_finalizers([p for p in pods if jp.has_tracking_finalizer(p)])
            return
        try:
            await JobSync(self, key, job, pods).run()
        except ApiError as e:
            if not namespace_terminating(e):
                raise

    async def _claim_pods(self, job: dict) -> list[dict]:
        selector = selector_from_label_selector((job.get("spec") or {}).get("selector"))
        if selector is None:
            return []
        namespace = job["metadata"]["namespace"]
        candidates = [p for p in self.pods.by_index("namespace", namespace)]
        pods_api = self.client.resource("v1", "pods", namespace)

        async def fresh():
            try:
                return await self.client.resource("batch/v1", "jobs", namespace).get(job["metadata"]["name"])
            except ApiError as e:
                if e.not_found:
                    return None
                raise
        return await claim(job, candidates, lambda p: selector.matches(p["metadata"].get("labels")), pods_api,
                           owner_ref=new_controller_ref(job, "batch/v1", "Job"), fresh_owner=fresh)

    async def _release_orphan(self, pod_key: str) -> None:
        pod = self.pods.get(pod_key)
        if pod is None or not jp.has_tracking_finalizer(pod):
            return
        key = owner_key(pod, "Job")
        if key is None and controller_ref(pod) is None:
            candidates = self._selecting_jobs(pod)  # an unfinished Job will adopt it and count it
        else:
            candidates = [self.jobs.get(key)] if key and self.jobs.get(key) else []
        if any(not is_finished(j) and not j["metadata"].get("deletionTimestamp") for j in candidates):
            return
        await self._remove_finalizers([pod])

    async def _remove_finalizers(self, pods: list[dict]) -> list[dict]:
        """Drop the tracking finalizer; returns the pods it is now off (or that are gone)."""
        released = []
        for pod in pods:
            meta = pod["metadata"]
            api = self.client.resource("v1", "pods", meta["namespace"])
            remaining = [f for f in meta.get("finalizers") or [] if f != jp.TRACKING_FINALIZER]
            patch = [{"op": "test", "path": "/metadata/finalizers", "value": meta.get("finalizers") or []},
                     {"op": "replace", "path": "/metadata/finalizers", "value": remaining}]
            try:
                await api.patch(meta["name"], patch, patch_type="json")
            except ApiError as e:
                if e.not_found:
                    released.append(pod)
                    continue
                if e.code in (409, 422):  # changed meanwhile: the next sync sees it again
                    continue
                raise
            released.append(pod)
        return released


def object_key_of(obj: dict) -> str:
    meta = obj["metadata"]
    return f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]


class JobSync:
    """One reconcile of one Job (state gathered once, then decisions, then writes)."""

    def __init__(self, controller: JobController, key: str, job: dict, pods: list[dict]):
        self.c = controller
        self.key = key
        self.job = job
        self.spec = job.get("spec") or {}
        self.status = job.setdefault("status", {})
        self.pods = copy.deepcopy(pods)  # counting edits them; the informer's cache stays intact
        self.namespace = job["metadata"]["namespace"]
        self.indexed = self.spec.get("completionMode") == "Indexed"
        self.only_failed_phase = self.spec.get("podReplacementPolicy") == "Failed" or \
            bool(self.spec.get("podFailurePolicy"))
        self.now = utc_now()
        self.api = controller.client.resource("batch/v1", "jobs", self.namespace)
        self.pods_api = controller.client.resource("v1", "pods", self.namespace)
        self.original = copy.deepcopy(self.status)
        self.policy_failure: jp.PolicyMatch | None = None

    async def run(self) -> None:
        await self._count_finished_pods()
        active = [p for p in self.pods if jp.is_active(p)]
        self.status["terminating"] = sum(1 for p in self.pods if jp.is_terminating(p))
        suspended = bool(self.spec.get("suspend"))
        self._track_suspension(suspended, active)
        if not suspended and not self.status.get("startTime"):
            self.status["startTime"] = rfc3339(self.now)

        # An interim condition already set decides the outcome: pods counted later cannot flip it.
        if has_condition(self.job, "SuccessCriteriaMet"):
            failure, success = None, self._success_reason()
        else:
            failure = self._failure_reason(active)
            success = None if failure else self._success_reason()
        if failure:
            set_condition(self.job, _condition("FailureTarget", *failure))
        elif success:
            set_condition(self.job, _condition("SuccessCriteriaMet", *success))
        if failure or success:
            if active:
                await self._delete_pods(active)  # finished once they are gone
                active = []
            elif self.status["terminating"] == 0 and not self._uncounted():
                self._finish(failure, success)
        elif suspended:
            await self._delete_pods(active)
            active = []
        else:
            active = await self._scale(active)

        if active:
            self.status["active"] = len(active)
        else:
            self.status.pop("active", None)
        self.status["ready"] = sum(1 for p in active if jp.is_ready(p))
        self.status.setdefault("uncountedTerminatedPods", {})
        await self._write_status()
        self._schedule_deadline_check()

    # -- counting

    def _uncounted(self) -> bool:
        uncounted = self.status.get("uncountedTerminatedPods") or {}
        return bool(uncounted.get("succeeded") or uncounted.get("failed"))

    async def _count_finished_pods(self) -> None:
        """Record finished tracked pods as uncounted, release them, then count them."""
        uncounted = self.status.setdefault("uncountedTerminatedPods", {})
        known = set(uncounted.get("succeeded") or []) | set(uncounted.get("failed") or [])
        completed = jp.parse_indexes(self.status.get("completedIndexes"))
        failed_indexes = jp.parse_indexes(self.status.get("failedIndexes"))
        new_succeeded, new_failed, ignored = [], [], []
        for pod in self.pods:
            if not jp.has_tracking_finalizer(pod) or pod["metadata"]["uid"] in known:
                continue
            if jp.is_succeeded(pod):
                index = jp.pod_index(pod)
                if self.indexed:
                    if index is None or index in completed or index >= (self.spec.get("completions") or 0):
                        ignored.append(pod)  # a duplicate or stray index: released, not counted
                        continue
                    completed.add(index)
                new_succeeded.append(pod)
            elif jp.is_failed(pod, self.only_failed_phase):
                match = jp.match_failure_policy(self.spec.get("podFailurePolicy"), pod) \
                    if jp.phase(pod) == "Failed" else None
                if match is not None and match.action == "Ignore":
                    ignored.append(pod)  # released without counting against backoffLimit
                    continue
                if match is not None and match.action == "FailJob" and self.policy_failure is None:
                    self.policy_failure = match
                index = jp.pod_index(pod) if self.indexed else None
                if index is not None:
                    if match is not None and match.action == "FailIndex":
                        failed_indexes.add(index)
                    elif self.spec.get("backoffLimitPerIndex") is not None:
                        annotations = pod["metadata"].get("annotations") or {}
                        if int(annotations.get(jp.INDEX_FAILURE_COUNT, "0")) + 1 > self.spec["backoffLimitPerIndex"]:
                            failed_indexes.add(index)
                new_failed.append(pod)
        if not (new_succeeded or new_failed or ignored or known):
            return
        self._note_backoff(new_succeeded, new_failed)
        if new_succeeded or new_failed:
            for outcome, pods in (("succeeded", new_succeeded), ("failed", new_failed)):
                uids = set(uncounted.get(outcome) or []) | {p["metadata"]["uid"] for p in pods}
                if uids:
                    uncounted[outcome] = sorted(uids)
            self._store_indexes(completed, failed_indexes)
            await self._write_status()  # step 1: remembered before the finalizers go
        by_uid = {p["metadata"]["uid"]: p for p in self.pods}
        to_release = [by_uid[u] for u in (uncounted.get("succeeded") or []) + (uncounted.get("failed") or [])
                      if u in by_uid and jp.has_tracking_finalizer(by_uid[u])] + ignored
        released = {p["metadata"]["uid"] for p in await self.c._remove_finalizers(to_release)}
        for outcome in ("succeeded", "failed"):
            still = []
            for uid in uncounted.get(outcome) or []:
                if uid in released or uid not in by_uid or not jp.has_tracking_finalizer(by_uid[uid]):
                    self.status[outcome] = self.status.get(outcome, 0) + 1
                else:
                    still.append(uid)
            if still:
                uncounted[outcome] = still
            else:
                uncounted.pop(outcome, None)
        # Counted pods no longer carry the finalizer: treat them that way from here on.
        for pod in self.pods:
            if pod["metadata"]["uid"] in released:
                pod["metadata"]["finalizers"] = [f for f in pod["metadata"].get("finalizers") or []
                                                 if f != jp.TRACKING_FINALIZER]

    def _store_indexes(self, completed: set[int], failed: set[int]) -> None:
        if not self.indexed:
            return
        self.status["completedIndexes"] = jp.format_indexes(completed)
        if self.spec.get("backoffLimitPerIndex") is not None or failed:
            self.status["failedIndexes"] = jp.format_indexes(failed)

    def _note_backoff(self, succeeded: list[dict], failed: list[dict]) -> None:
        record = self.c.backoffs.setdefault(self.key, _Backoff())
        if succeeded:
            record.failures = 0
            record.last_failure = None
        for pod in failed:
            record.failures += 1
            t = jp.finish_time(pod) or self.now
            record.last_failure = max(record.last_failure or t, t)

    # -- outcomes

    def _failure_reason(self, active: list[dict]) -> tuple[str, str] | None:
        existing = find_condition(self.job, "FailureTarget")
        if existing is not None and existing.get("status") == "True":
            return existing.get("reason", ""), existing.get("message", "")
        if self.policy_failure is not None:
            return "PodFailurePolicy", self.policy_failure.message
        failed = self.status.get("failed", 0)
        limit = self.spec.get("backoffLimit", 6)
        if self.spec.get("backoffLimitPerIndex") is None and (
                failed > limit or jp.past_backoff_limit_on_failure(self.spec, active, failed)):
            return "BackoffLimitExceeded", "Job has reached the specified backoff limit"
        deadline = self.spec.get("activeDeadlineSeconds")
        start = parse_time(self.status.get("startTime"))
        if deadline is not None and start is not None and not self.spec.get("suspend") and \
                self.now >= start + datetime.timedelta(seconds=deadline):
            return "DeadlineExceeded", "Job was active longer than specified deadline"
        if self.indexed:
            failed_indexes = jp.parse_indexes(self.status.get("failedIndexes"))
            max_failed = self.spec.get("maxFailedIndexes")
            if max_failed is not None and len(failed_indexes) > max_failed:
                return "MaxFailedIndexesExceeded", "Job has exceeded the specified maximal number of failed indexes"
            completed = jp.parse_indexes(self.status.get("completedIndexes"))
            completions = self.spec.get("completions") or 0
            if failed_indexes and len(completed) + len(failed_indexes) >= completions:
                return "FailedIndexes", "Job has failed indexes"
        return None

    def _success_reason(self) -> tuple[str, str] | None:
        existing = find_condition(self.job, "SuccessCriteriaMet")
        if existing is not None and existing.get("status") == "True":
            return existing.get("reason", ""), existing.get("message", "")
        completions = self.spec.get("completions")
        succeeded = self.status.get("succeeded", 0)
        reached = ("CompletionsReached", "Reached expected number of succeeded pods")
        if self.indexed:
            done = jp.parse_indexes(self.status.get("completedIndexes"))
            rule = jp.matched_success_rule(self.spec.get("successPolicy"), done)
            if rule is not None:
                return "SuccessPolicy", f"Matched rules at index {rule}"
            return reached if completions is not None and len(done) >= completions else None
        if completions is None:
            still_running = any(jp.is_active(p) for p in self.pods)
            return reached if succeeded > 0 and not still_running else None
        return reached if succeeded >= completions else None

    def _finish(self, failure, success) -> None:
        if failure:
            set_condition(self.job, _condition("Failed", *failure))
            self.c.recorder.event(self.job, "Warning", failure[0], failure[1])
        else:
            set_condition(self.job, _condition("Complete", *success))
            self.status["completionTime"] = rfc3339(self.now)
            self.c.recorder.event(self.job, "Normal", "Completed", "Job completed")
        self.c.backoffs.pop(self.key, None)

    def _track_suspension(self, suspended: bool, active: list[dict]) -> None:
        cond = find_condition(self.job, "Suspended")
        if suspended and (cond is None or cond.get("status") != "True"):
            set_condition(self.job, _condition("Suspended", "JobSuspended", "Job suspended"))
            self.c.recorder.event(self.job, "Normal", "Suspended", "Job suspended")
        elif not suspended and cond is not None and cond.get("status") == "True":
            set_condition(self.job, _condition("Suspended", "JobResumed", "Job resumed", status="False"))
            self.c.recorder.event(self.job, "Normal", "Resumed", "Job resumed")
            self.status["startTime"] = rfc3339(self.now)  # the deadline counts from the resume

    # -- pods

    async def _scale(self, active: list[dict]) -> list[dict]:
        if not self.c.expectations.satisfied(self.key):
            return active
        # podReplacementPolicy Failed: a terminating pod is replaced only once it has failed.
        waiting = [p for p in self.pods if jp.is_terminating(p)] if self.only_failed_phase else []
        if self.indexed:
            completions = self.spec.get("completions") or 0
            completed = jp.parse_indexes(self.status.get("completedIndexes"))
            failed = jp.parse_indexes(self.status.get("failedIndexes"))
            active = await self._drop_bad_indexes(active, completed | failed, completions)
            remaining = completions - len(completed) - len(failed)
            want = jp.wanted_active(self.spec, self.status.get("succeeded", 0), remaining)
            pending = jp.pending_indexes(completions, completed, failed, active + waiting)
            indexes = pending[:max(want - len(active) - len(waiting), 0)]
        else:
            want = jp.wanted_active(self.spec, self.status.get("succeeded", 0), None)
            indexes = [None] * max(want - len(active) - len(waiting), 0)
        if len(active) > want:
            doomed = sorted(active, key=lambda p: (jp.is_ready(p), p["metadata"].get("creationTimestamp") or ""))
            doomed = doomed[:len(active) - want]
            await self._delete_pods(doomed)
            return [p for p in active if p not in doomed]
        if not indexes:
            return active
        record = self.c.backoffs.get(self.key)
        wait = jp.remaining_backoff(record.failures, record.last_failure, self.now) if record else 0.0
        if wait > 0:
            self.c.requeue_after(self.key, wait)
            return active
        return active + await self._create_pods(indexes[:MAX_BATCH])

    async def _drop_bad_indexes(self, active: list[dict], finished: set[int], completions: int) -> list[dict]:
        """Pods whose index is done, out of range or duplicated go away."""
        seen: set[int] = set()
        keep, doomed = [], []
        for pod in sorted(active, key=lambda p: (not jp.is_ready(p), p["metadata"].get("creationTimestamp") or "")):
            index = jp.pod_index(pod)
            if index is None or index in finished or index >= completions or index in seen:
                doomed.append(pod)
            else:
                seen.add(index)
                keep.append(pod)
        if doomed:
            await self._delete_pods(doomed)
        return keep

    async def _create_pods(self, indexes: list[int | None]) -> list[dict]:
        self.c.expectations.expect_creations(self.key, len(indexes))
        result = await create_in_batches(
            indexes, lambda index: self.pods_api.create(new_pod(self.job, index, self._index_failures(index))))
        for _, pod in result.created:
            self.c.recorder.event(self.job, "Normal", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}")
        for _ in range(len(result.errors) + len(result.unsent)):  # never to be observed
            self.c.expectations.creation_failed(self.key)
        for _, error in result.errors:
            if isinstance(error, ApiError) and namespace_terminating(error):
                continue
            self.c.recorder.event(self.job, "Warning", "FailedCreate", f"Error creating: {error}")
            raise error
        return [pod for _, pod in result.created]

    def _index_failures(self, index: int | None) -> int | None:
        if index is None or self.spec.get("backoffLimitPerIndex") is None:
            return None
        return jp.index_failures(self.pods, index, self.only_failed_phase)

    async def _delete_pods(self, pods: list[dict]) -> None:
        if not pods:
            return
        self.c.expectations.expect_deletions(self.key, [p["metadata"]["uid"] for p in pods])
        for pod in pods:
            name = pod["metadata"]["name"]
            try:
                await self.pods_api.delete(name)
            except ApiError as e:
                self.c.expectations.deletion_observed(self.key, pod["metadata"]["uid"])
                if e.not_found:
                    continue
                self.c.recorder.event(self.job, "Warning", "FailedDelete", f"Error deleting: {e}")
                raise
            self.c.recorder.event(self.job, "Normal", "SuccessfulDelete", f"Deleted pod: {name}")

    # -- writing

    async def _write_status(self) -> None:
        if self.status == self.original:
            return
        try:
            updated = await self.api.update_status(self.job)
        except ApiError as e:
            if e.not_found:
                return
            raise
        self.job["metadata"]["resourceVersion"] = updated["metadata"]["resourceVersion"]
        self.original = copy.deepcopy(self.status)

    def _schedule_deadline_check(self) -> None:
        deadline = self.spec.get("activeDeadlineSeconds")
        start = parse_time(self.status.get("startTime"))
        if deadline is None or start is None or is_finished(self.job) or self.spec.get("suspend"):
            return
        left = (start + datetime.timedelta(seconds=deadline) - utc_now()).total_seconds()
        self.c.requeue_after(self.key, max(left, 0) + 0.05)
