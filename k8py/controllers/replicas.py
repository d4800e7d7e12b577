"""Keep N copies of a pod template running: the logic ReplicaSets and ReplicationControllers share.

One sync of a replica controller:
1. claim pods: the active pods it controls and the orphans in its namespace
   (two informer indexes, so a sync costs its own pods, not the namespace's)
   that its selector matches (adopting orphans, releasing pods relabelled out);
2. if its expectations are met, create the missing pods in slow-start
   batches (1, 2, 4, ...: a create that fails stops the rest) or delete the
   surplus in upstream's deletion order;
3. write status (replicas, fullyLabeledReplicas, readyReplicas,
   availableReplicas, observedGeneration, the ReplicaFailure condition).

Subclasses say which resource they drive and how their selector is spelt.
"""

from __future__ import annotations

import asyncio
import copy
import logging

from k8py.apimachinery.meta import now, rfc3339
from k8py.client import ApiError
from k8py.controllers import ownership, podutil
from k8py.controllers.base import Controller, split_key
from k8py.controllers.owned import BY_CONTROLLER, index_by_controller

log = logging.getLogger("k8py.controllers.replicas")

ORPHANS_BY_NAMESPACE = "orphans-by-namespace"

BURST_REPLICAS = 500  # at most this many creates or deletes per sync, as upstream


class ReplicaManagerBase(Controller):
    group_version = "apps/v1"
    plural = "replicasets"
    kind = "ReplicaSet"
    workers = 5
    uses_expectations = True

    # -- what differs between ReplicaSet and ReplicationController

    def selector_matches(self, owner: dict, labels: dict) -> bool:
        raise NotImplementedError

    def label_matcher(self, owner: dict):
        """labels -> bool for one owner; subclasses parse their selector once here, as a sync
        asks it of every candidate pod."""
        return lambda labels: self.selector_matches(owner, labels)

    def template(self, owner: dict) -> dict:
        return (owner.get("spec") or {}).get("template") or {}

    # -- wiring

    async def setup(self) -> None:
        self.owners = self.ctx.informer(self.group_version, self.plural)
        self.pods = self.ctx.informer("v1", "pods")
        index_by_controller(self.ctx, self.pods)
        self.ctx.ensure_index(self.pods, ORPHANS_BY_NAMESPACE, _orphan_namespace)
        self.owners.add_handler(on_add=self.enqueue, on_update=self._owner_updated, on_delete=self._owner_deleted)
        self.pods.add_handler(on_add=self._pod_added, on_update=self._pod_updated, on_delete=self._pod_deleted)

    def _owner_updated(self, old: dict, new: dict) -> None:
        self.enqueue(new)

    def _owner_deleted(self, owner: dict) -> None:
        key = self._key(owner)
        self.expectations.forget(key)
        self.enqueue(key)

    @staticmethod
    def _key(obj: dict) -> str:
        return f"{obj['metadata']['namespace']}/{obj['metadata']['name']}"

    def _owner_of(self, pod: dict) -> str | None:
        """The key of our controller of `pod`, when it is one of ours and still exists."""
        ref = ownership.controller_ref(pod)
        if ref is None or ref.get("kind") != self.kind:
            return None
        key = f"{pod['metadata']['namespace']}/{ref.get('name')}"
        owner = self.owners.get(key)
        if owner is None or owner["metadata"].get("uid") != ref.get("uid"):
            return None
        return key

    def _enqueue_matching(self, pod: dict) -> None:
        """An orphan changed: every owner that might adopt it takes a look."""
        labels = pod["metadata"].get("labels") or {}
        for owner in self.owners.by_index("namespace", pod["metadata"]["namespace"]):
            if self.selector_matches(owner, labels):
                self.enqueue(owner)

    def _pod_added(self, pod: dict) -> None:
        if pod["metadata"].get("deletionTimestamp"):
            self._pod_deleted(pod)  # a restarted informer can list a pod already going away
            return
        key = self._owner_of(pod)
        if key is not None:
            self.expectations.creation_observed(key)
            self.enqueue(key)
        elif ownership.controller_ref(pod) is None:
            self._enqueue_matching(pod)

    def _pod_updated(self, old: dict, new: dict) -> None:
        if old["metadata"].get("resourceVersion") == new["metadata"].get("resourceVersion"):
            return
        labels_changed = (old["metadata"].get("labels") or {}) != (new["metadata"].get("labels") or {})
        if new["metadata"].get("deletionTimestamp") and not old["metadata"].get("deletionTimestamp"):
            self._pod_deleted(new)  # graceful deletion begins: the pod no longer counts
            if labels_changed:
                self._pod_deleted(old)
            return
        old_key, new_key = self._owner_of(old), self._owner_of(new)
        if old_key and old_key != new_key:
            self.enqueue(old_key)
        if new_key is not None:
            self.enqueue(new_key)
            owner = self.owners.get(new_key)
            min_ready = ((owner or {}).get("spec") or {}).get("minReadySeconds") or 0
            if min_ready and not podutil.is_ready(old) and podutil.is_ready(new):
                # availability flips min_ready seconds after readiness: look again then
                self.requeue_after(new_key, min_ready + 0.1)
        elif ownership.controller_ref(new) is None and (labels_changed or ownership.controller_ref(old)):
            self._enqueue_matching(new)

    def _pod_deleted(self, pod: dict) -> None:
        key = self._owner_of(pod)
        if key is None:
            return
        self.expectations.deletion_observed(key, pod["metadata"].get("uid"))
        self.enqueue(key)

    # -- one sync

    async def sync(self, key: str) -> None:
        owner = self.owners.get(key)
        if owner is None:
            self.expectations.forget(key)
            return
        namespace, name = split_key(key)
        needs_sync = self.expectations.satisfied(key)
        api = self.client.resource("v1", "pods", namespace)
        # Only pods it controls and orphans it might adopt: a sync never walks the namespace's other pods.
        candidates = [p for p in self.pods.by_index(BY_CONTROLLER, owner["metadata"].get("uid", ""))
                      + self.pods.by_index(ORPHANS_BY_NAMESPACE, namespace) if podutil.is_active(p)]
        matcher = self.label_matcher(owner)
        labels_match = lambda pod: matcher(pod["metadata"].get("labels") or {})  # noqa: E731
        pods = await ownership.claim(owner, candidates, labels_match, api,
                                     fresh_owner=lambda: self._fresh_owner(namespace, name))
        manage_error = None
        if needs_sync and not owner["metadata"].get("deletionTimestamp"):
            try:
                await self.manage_replicas(owner, pods, key, api)
            except ApiError as e:
                manage_error = e
        status = await self.update_status(owner, pods, manage_error)
        if manage_error is not None:
            raise manage_error
        min_ready = (owner.get("spec") or {}).get("minReadySeconds") or 0
        if min_ready and status.get("readyReplicas", 0) > status.get("availableReplicas", 0):
            self.requeue_after(key, min_ready)

    async def _fresh_owner(self, namespace: str, name: str) -> dict | None:
        try:
            return await self.client.resource(self.group_version, self.plural, namespace).get(name)
        except ApiError as e:
            if e.not_found:
                return None
            raise

    async def manage_replicas(self, owner: dict, pods: list[dict], key: str, api) -> None:
        wanted = (owner.get("spec") or {}).get("replicas")
        wanted = 1 if wanted is None else wanted
        diff = len(pods) - wanted
        if diff < 0:
            await self._create_pods(owner, min(-diff, BURST_REPLICAS), key, api)
        elif diff > 0:
            victims = podutil.deletion_order(pods, related=pods)[:min(diff, BURST_REPLICAS)]
            await self._delete_pods(owner, victims, key, api)

    def pod_from_template(self, owner: dict) -> dict:
        template = copy.deepcopy(self.template(owner))
        meta = template.get("metadata") or {}
        pod_meta = {"generateName": f"{owner['metadata']['name']}-", "namespace": owner["metadata"]["namespace"],
                    "ownerReferences": [ownership.new_controller_ref(owner, self.group_version, self.kind)]}
        for field in ("labels", "annotations", "finalizers"):
            if meta.get(field):
                pod_meta[field] = meta[field]
        return {"apiVersion": "v1", "kind": "Pod", "metadata": pod_meta, "spec": template.get("spec") or {}}

    async def _create_pods(self, owner: dict, count: int, key: str, api) -> None:
        self.expectations.expect_creations(key, count)
        left = count
        for batch in podutil.slow_start_batches(count):
            results = await asyncio.gather(*(api.create(self.pod_from_template(owner)) for _ in range(batch)),
                                           return_exceptions=True)
            left -= batch
            errors = [r for r in results if isinstance(r, BaseException)]
            for created in results:
                if isinstance(created, dict):
                    self.recorder.event(owner, "Normal", "SuccessfulCreate",
                                        f"Created pod: {created['metadata']['name']}")
            for err in errors:
                self.expectations.creation_failed(key)
                if isinstance(err, ApiError) and err.code == 403 and "being terminated" in str(err):
                    continue  # the namespace is going away: nothing to report
                self.recorder.event(owner, "Warning", "FailedCreate", f"Error creating: {_message(err)}")
            if errors:
                for _ in range(left):  # the batches never sent will never be observed
                    self.expectations.creation_failed(key)
                first = errors[0]
                if isinstance(first, ApiError):
                    raise first
                raise ApiError({"code": 500, "reason": "InternalError", "message": str(first)})

    async def _delete_pods(self, owner: dict, victims: list[dict], key: str, api) -> None:
        self.expectations.expect_deletions(key, [p["metadata"]["uid"] for p in victims])
        results = await asyncio.gather(*(api.delete(p["metadata"]["name"]) for p in victims),
                                       return_exceptions=True)
        failure = None
        for pod, result in zip(victims, results):
            name = pod["metadata"]["name"]
            if isinstance(result, BaseException):
                self.expectations.deletion_observed(key, pod["metadata"]["uid"])
                if isinstance(result, ApiError) and result.not_found:
                    continue
                self.recorder.event(owner, "Warning", "FailedDelete", f"Error deleting: {_message(result)}")
                failure = failure or result
            else:
                self.recorder.event(owner, "Normal", "SuccessfulDelete", f"Deleted pod: {name}")
        if failure is not None:
            raise failure if isinstance(failure, ApiError) else ApiError(
                {"code": 500, "reason": "InternalError", "message": str(failure)})

    # -- status

    def compute_status(self, owner: dict, pods: list[dict], manage_error: Exception | None) -> dict:
        spec = owner.get("spec") or {}
        status = copy.deepcopy(owner.get("status") or {})
        template_labels = (self.template(owner).get("metadata") or {}).get("labels") or {}
        min_ready = spec.get("minReadySeconds") or 0
        labeled = ready = available = 0
        at = now() if min_ready else None
        for p in pods:  # one pass: this runs on every sync, over every pod of the owner
            labeled += template_labels.items() <= (p["metadata"].get("labels") or {}).items()
            if podutil.is_ready(p):
                ready += 1
                available += not min_ready or podutil.is_available(p, min_ready, at)
        status["replicas"] = len(pods)
        status["fullyLabeledReplicas"] = labeled
        status["readyReplicas"] = ready
        status["availableReplicas"] = available
        status["observedGeneration"] = owner["metadata"].get("generation", 0)
        conditions = [c for c in status.get("conditions") or [] if c.get("type") != "ReplicaFailure"]
        failure = next((c for c in status.get("conditions") or [] if c.get("type") == "ReplicaFailure"), None)
        if manage_error is not None and failure is None:
            wanted = spec.get("replicas", 1)
            reason = "FailedCreate" if len(pods) < wanted else "FailedDelete"
            failure = {"type": "ReplicaFailure", "status": "True", "reason": reason,
                       "message": _message(manage_error), "lastTransitionTime": rfc3339()}
        if manage_error is None:
            failure = None
        if failure is not None:
            conditions.append(failure)
        if conditions:
            status["conditions"] = conditions
        else:
            status.pop("conditions", None)
        for field in ("fullyLabeledReplicas", "readyReplicas", "availableReplicas"):
            if not status[field]:
                status.pop(field)  # omitempty on the wire, as upstream
        return status

    async def update_status(self, owner: dict, pods: list[dict], manage_error: Exception | None) -> dict:
        """Writes the owner's status when it changed; returns the status computed."""
        status = self.compute_status(owner, pods, manage_error)
        if status == _normalised(owner.get("status") or {}):
            return status
        api = self.client.resource(self.group_version, self.plural, owner["metadata"]["namespace"])
        body = copy.deepcopy(owner)
        body["status"] = status
        for attempt in range(2):
            try:
                await api.update_status(body)
                return status
            except ApiError as e:
                if e.not_found:
                    return status
                if not e.conflict or attempt:
                    raise
                body = await api.get(owner["metadata"]["name"])
                body["status"] = status = self.compute_status(body, pods, manage_error)
        return status


def _orphan_namespace(pod: dict) -> list[str]:
    """Index of pods no controller owns, by namespace: the ones a ReplicaSet could adopt."""
    return [pod["metadata"].get("namespace", "")] if ownership.controller_ref(pod) is None else []


def _normalised(status: dict) -> dict:
    return {k: v for k, v in status.items() if v not in (0, None) or k in ("replicas", "observedGeneration")}


def _message(err: BaseException) -> str:
    if isinstance(err, ApiError):
        return (err.status or {}).get("message") or str(err)
    return str(err)

