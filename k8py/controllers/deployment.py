"""The Deployment controller: rolls a pod template out through ReplicaSets.

Each template a deployment has had lives in a ReplicaSet named
`<deployment>-<pod-template-hash>`; the one matching the current template
is the *new* ReplicaSet, the others are *old*. A sync:

* claims its ReplicaSets (adopt orphans matching the selector, release strays);
* paused, or resized mid-rollout (a ReplicaSet's desired-replicas annotation
  differs from spec.replicas): resize proportionally and stop there;
* RollingUpdate: grow the new ReplicaSet up to replicas+maxSurge, shrink old
  ones while at least replicas-maxUnavailable pods stay available;
  Recreate: shrink old ones to 0, wait until their pods are gone, then grow
  the new one;
* once complete, delete old empty ReplicaSets beyond revisionHistoryLimit;
* status and the Available / Progressing / ReplicaFailure conditions.

Rollback is not the controller's business in apps/v1: `kubectl rollout undo`
writes the old template back into the deployment, which makes the matching
old ReplicaSet new again (its revision moves to the top, the old number goes
to revision-history). `rollout restart` just changes a template annotation.
The pure arithmetic lives in rollout.py.
"""

from __future__ import annotations

import copy
import datetime
import logging

from k8py.apimachinery.meta import now, parse_time, rfc3339
from k8py.apimachinery.selectors import selector_from_label_selector
from k8py.client import ApiError
from k8py.controllers import ownership, podutil, rollout
from k8py.controllers.base import Controller, split_key
from k8py.controllers.owned import index_by_controller, owned_by

log = logging.getLogger("k8py.controllers.deployment")

class DeploymentController(Controller):
    name = "deployment"
    workers = 5

    async def setup(self) -> None:
        self.deployments = self.ctx.informer("apps/v1", "deployments")
        self.replica_sets = self.ctx.informer("apps/v1", "replicasets")
        self.pods = self.ctx.informer("v1", "pods")
        for inf in (self.replica_sets, self.pods):
            index_by_controller(self.ctx, inf)
        self.deployments.add_handler(on_add=self.enqueue, on_update=lambda old, new: self.enqueue(new),
                                     on_delete=self.enqueue)
        self.replica_sets.add_handler(on_add=self._rs_changed, on_update=self._rs_updated,
                                      on_delete=self._rs_changed)
        self.pods.add_handler(on_delete=self._pod_deleted)

    # -- event handlers

    def _owner_key(self, obj: dict) -> str | None:
        ref = ownership.controller_ref(obj)
        if ref is None or ref.get("kind") != "Deployment":
            return None
        key = f"{obj['metadata']['namespace']}/{ref['name']}"
        d = self.deployments.get(key)
        return key if d is not None and d["metadata"].get("uid") == ref.get("uid") else None

    def _rs_changed(self, rs: dict) -> None:
        key = self._owner_key(rs)
        if key is not None:
            self.enqueue(key)
        elif ownership.controller_ref(rs) is None:
            labels = rs["metadata"].get("labels") or {}
            for d in self.deployments.by_index("namespace", rs["metadata"]["namespace"]):
                selector = selector_from_label_selector((d.get("spec") or {}).get("selector"))
                if selector is not None and not selector.empty() and selector.matches(labels):
                    self.enqueue(d)

    def _rs_updated(self, old: dict, new: dict) -> None:
        old_key = self._owner_key(old)
        if old_key is not None and old_key != self._owner_key(new):
            self.enqueue(old_key)
        self._rs_changed(new)

    def _pod_deleted(self, pod: dict) -> None:
        """Recreate waits for old pods to be gone: their deletion is its cue."""
        ref = ownership.controller_ref(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        rs = self.replica_sets.get(f"{pod['metadata']['namespace']}/{ref['name']}")
        if rs is not None:
            key = self._owner_key(rs)
            d = self.deployments.get(key) if key else None
            if d is not None and not rollout.is_rolling(d):
                self.enqueue(key)

    # -- sync

    async def sync(self, key: str) -> None:
        d = self.deployments.get(key)
        if d is None:
            return
        d = copy.deepcopy(d)
        namespace, name = split_key(key)
        selector = selector_from_label_selector((d.get("spec") or {}).get("selector"))
        if selector is None or selector.empty():
            self.recorder.event(d, "Warning", "SelectingAll",
                                "This deployment is selecting all pods. A non-empty selector is required.")
            if (d.get("status") or {}).get("observedGeneration") != d["metadata"].get("generation"):
                d.setdefault("status", {})["observedGeneration"] = d["metadata"].get("generation")
                await self._write_status(d)
            return
        rs_api = self.client.resource("apps/v1", "replicasets", namespace)
        candidates = self.replica_sets.by_index("namespace", namespace)
        rss = await ownership.claim(d, candidates, lambda rs: selector.matches(rs["metadata"].get("labels") or {}),
                                    rs_api, fresh_owner=lambda: self._fresh(namespace, name))
        rss = [copy.deepcopy(rs) for rs in rss]
        if d["metadata"].get("deletionTimestamp"):
            await self._sync_status_only(d, rss)
            return
        await self._check_paused_condition(d)
        spec = d.get("spec") or {}
        if spec.get("paused"):
            await self._resize(d, rss)
            return
        if self._is_scaling_event(d, rss):
            await self._resize(d, rss)
            return
        if rollout.is_rolling(d):
            await self._rollout_rolling(d, rss)
        else:
            await self._rollout_recreate(d, rss)

    async def _fresh(self, namespace: str, name: str) -> dict | None:
        try:
            return await self.client.resource("apps/v1", "deployments", namespace).get(name)
        except ApiError as e:
            if e.not_found:
                return None
            raise

    def _split(self, d: dict, rss: list[dict]) -> tuple[dict | None, list[dict]]:
        template = (d.get("spec") or {}).get("template") or {}
        matching = rollout.by_creation([rs for rs in rss if rollout.same_template(
            (rs.get("spec") or {}).get("template") or {}, template)])
        new_rs = matching[0] if matching else None
        return new_rs, [rs for rs in rss if rs is not new_rs]

    def _is_scaling_event(self, d: dict, rss: list[dict]) -> bool:
        wanted = rollout.replicas_of(d)
        for rs in rss:
            if rollout.replicas_of(rs) > 0:
                desired = rollout.annotated_int(rs, rollout.DESIRED_REPLICAS)
                if desired is not None and desired != wanted:
                    return True
        return False

    # -- the new ReplicaSet

    async def _new_and_old(self, d: dict, rss: list[dict], create: bool) -> tuple[dict | None, list[dict]]:
        new_rs, old_rss = self._split(d, rss)
        top = rollout.max_revision(old_rss)
        if new_rs is not None:
            new_rs = await self._sync_new_rs_revision(d, new_rs, top)
        elif create:
            new_rs = await self._create_new_rs(d, rss, old_rss, top + 1)
        if new_rs is not None:
            await self._sync_deployment_revision(d, new_rs)
        return new_rs, old_rss

    def _rs_annotations(self, d: dict, rs_annotations: dict, revision: int | None, replicas: int | None) -> dict:
        out = dict(rs_annotations)
        for k, v in (d["metadata"].get("annotations") or {}).items():
            if k not in rollout.NOT_COPIED:
                out[k] = v
        if revision is not None:
            old = out.get(rollout.REVISION)
            if old is not None and int(old or 0) < revision:
                history = [h for h in (out.get(rollout.REVISION_HISTORY) or "").split(",") if h]
                out[rollout.REVISION_HISTORY] = ",".join(history + [old])
            out[rollout.REVISION] = str(revision)
        if replicas is not None:
            out[rollout.DESIRED_REPLICAS] = str(rollout.replicas_of(d))
            out[rollout.MAX_REPLICAS] = str(rollout.replicas_of(d) + rollout.max_surge(d))
        return out

    async def _sync_new_rs_revision(self, d: dict, new_rs: dict, top_old: int) -> dict:
        current = rollout.revision_of(new_rs)
        revision = current if current > top_old else top_old + 1
        annotations = new_rs["metadata"].get("annotations") or {}
        wanted = self._rs_annotations(d, annotations, revision, None)
        min_ready = (d.get("spec") or {}).get("minReadySeconds", 0)
        if wanted == annotations and (new_rs.get("spec") or {}).get("minReadySeconds", 0) == min_ready:
            return new_rs
        new_rs["metadata"]["annotations"] = wanted
        new_rs["spec"]["minReadySeconds"] = min_ready
        return await self.client.resource("apps/v1", "replicasets", d["metadata"]["namespace"]).update(new_rs)

    async def _create_new_rs(self, d: dict, rss: list[dict], old_rss: list[dict], revision: int) -> dict | None:
        spec = d["spec"]
        collisions = (d.get("status") or {}).get("collisionCount")
        template = copy.deepcopy(spec.get("template") or {})
        pod_hash = rollout.template_hash(template, collisions)
        template.setdefault("metadata", {}).setdefault("labels", {})[rollout.HASH_LABEL] = pod_hash
        selector = copy.deepcopy(spec["selector"])
        selector.setdefault("matchLabels", {})[rollout.HASH_LABEL] = pod_hash
        replicas = rollout.new_rs_replicas(d, rss, None)
        rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
              "metadata": {"name": f"{d['metadata']['name']}-{pod_hash}", "namespace": d["metadata"]["namespace"],
                           "labels": dict(template["metadata"]["labels"]),
                           "ownerReferences": [ownership.new_controller_ref(d, "apps/v1", "Deployment")],
                           "annotations": self._rs_annotations(d, {}, revision, replicas)},
              "spec": {"replicas": replicas, "minReadySeconds": spec.get("minReadySeconds", 0),
                       "selector": selector, "template": template}}
        api = self.client.resource("apps/v1", "replicasets", d["metadata"]["namespace"])
        try:
            created = await api.create(rs)
        except ApiError as e:
            if not e.already_exists:
                if e.code == 403 and "being terminated" in str(e):
                    return None
                self._set_condition(d, "Progressing", "False", "ReplicaSetCreateError",
                                    f'Failed to create new replica set "{rs["metadata"]["name"]}": {e}')
                await self._write_status(d)
                raise
            existing = self.replica_sets.get(f"{d['metadata']['namespace']}/{rs['metadata']['name']}") \
                or await api.get(rs["metadata"]["name"])
            if ownership.is_controlled_by(existing, d) and rollout.same_template(
                    existing["spec"].get("template") or {}, spec.get("template") or {}):
                return existing  # ours already: the cache had not seen it yet
            # A different template hashed to the same name: bump collisionCount and try again next sync.
            d.setdefault("status", {})["collisionCount"] = (collisions or 0) + 1
            await self._write_status(d)
            raise
        if replicas > 0:
            self.recorder.event(d, "Normal", "ScalingReplicaSet",
                                f"Scaled up replica set {created['metadata']['name']} to {replicas}")
        if spec.get("progressDeadlineSeconds") is not None:
            self._set_condition(d, "Progressing", "True", "NewReplicaSetCreated",
                                f'Created new replica set "{created["metadata"]["name"]}"')
            await self._write_status(d)
        return created

    async def _sync_deployment_revision(self, d: dict, new_rs: dict) -> None:
        revision = str(rollout.revision_of(new_rs))
        annotations = d["metadata"].get("annotations") or {}
        changed = False
        if annotations.get(rollout.REVISION) != revision:
            # an update, as upstream's controller writes it (its role may update deployments, not patch them)
            d["metadata"]["annotations"] = {**annotations, rollout.REVISION: revision}
            api = self.client.resource("apps/v1", "deployments", d["metadata"]["namespace"])
            updated = await api.update(d)
            d["metadata"] = updated["metadata"]
            changed = True
        if self._condition(d, "Progressing") is None:
            self._set_condition(d, "Progressing", "True", "FoundNewReplicaSet",
                                f'Found new replica set "{new_rs["metadata"]["name"]}"')
            changed = True
        if changed and (d.get("spec") or {}).get("progressDeadlineSeconds") is not None:
            await self._write_status(d)

    # -- scaling ReplicaSets

    async def _scale(self, d: dict, rs: dict, size: int) -> bool:
        """Resize one ReplicaSet (and refresh its size annotations); True when its size changed."""
        old = rollout.replicas_of(rs)
        annotations = rs["metadata"].get("annotations") or {}
        wanted = self._rs_annotations(d, annotations, None, size)
        if old == size and annotations.get(rollout.DESIRED_REPLICAS) == wanted[rollout.DESIRED_REPLICAS] \
                and annotations.get(rollout.MAX_REPLICAS) == wanted[rollout.MAX_REPLICAS]:
            return False
        body = copy.deepcopy(rs)
        body["metadata"]["annotations"] = {**annotations, rollout.DESIRED_REPLICAS: wanted[rollout.DESIRED_REPLICAS],
                                           rollout.MAX_REPLICAS: wanted[rollout.MAX_REPLICAS]}
        body["spec"]["replicas"] = size
        updated = await self.client.resource("apps/v1", "replicasets", rs["metadata"]["namespace"]).update(body)
        rs.clear()
        rs.update(updated)
        if old != size:
            direction = "up" if size > old else "down"
            self.recorder.event(d, "Normal", "ScalingReplicaSet",
                                f"Scaled {direction} replica set {rs['metadata']['name']} to {size} from {old}")
        return old != size

    async def _resize(self, d: dict, rss: list[dict]) -> None:
        """Paused or resized: share spec.replicas out, clean history when paused, write status."""
        new_rs, old_rss = await self._new_and_old(d, rss, create=False)
        all_rss = ([new_rs] if new_rs else []) + old_rss
        await self._proportional_scale(d, new_rs, old_rss)
        if (d.get("spec") or {}).get("paused"):
            await self._cleanup(d, old_rss)
        await self._write_status_if_changed(d, self._status(d, all_rss, new_rs, with_progress=False))

    async def _proportional_scale(self, d: dict, new_rs: dict | None, old_rss: list[dict]) -> None:
        active = [rs for rs in ([new_rs] if new_rs else []) + old_rss if rollout.replicas_of(rs) > 0]
        wanted = rollout.replicas_of(d)
        if len(active) <= 1:
            target = active[0] if active else (new_rs or (rollout.by_creation(old_rss, True) or [None])[0])
            if target is not None:
                await self._scale(d, target, wanted)
            return
        if new_rs is not None and self._saturated(d, new_rs):
            for rs in old_rss:
                await self._scale(d, rs, 0)
            return
        if rollout.is_rolling(d):
            sizes = rollout.proportional_sizes(d, active)
            for rs in active:
                await self._scale(d, rs, sizes[rs["metadata"]["name"]])

    @staticmethod
    def _saturated(d: dict, rs: dict) -> bool:
        wanted = rollout.replicas_of(d)
        return rollout.replicas_of(rs) == wanted and rollout.annotated_int(rs, rollout.DESIRED_REPLICAS) == wanted \
            and rollout.status_of(rs, "availableReplicas") == wanted

    # -- strategies

    async def _rollout_rolling(self, d: dict, rss: list[dict]) -> None:
        new_rs, old_rss = await self._new_and_old(d, rss, create=True)
        if new_rs is None:
            return
        all_rss = [new_rs] + old_rss
        wanted = rollout.replicas_of(d)
        current = rollout.replicas_of(new_rs)
        if current != wanted:
            size = wanted if current > wanted else rollout.new_rs_replicas(d, all_rss, new_rs)
            if await self._scale(d, new_rs, size):
                await self._sync_rollout_status(d, all_rss, new_rs)
                return
        if await self._scale_down_old(d, all_rss, old_rss, new_rs):
            await self._sync_rollout_status(d, all_rss, new_rs)
            return
        if rollout.is_complete(d, d.get("status") or {}):
            await self._cleanup(d, old_rss)
        await self._sync_rollout_status(d, all_rss, new_rs)

    async def _scale_down_old(self, d: dict, all_rss: list[dict], old_rss: list[dict], new_rs: dict) -> bool:
        active_old = [rs for rs in old_rss if rollout.replicas_of(rs) > 0]
        if not active_old:
            return False
        budget = rollout.old_scale_down_budget(d, all_rss, new_rs)
        if budget <= 0:
            return False
        scaled = False
        for rs_name, size in rollout.plan_unhealthy_cleanup(active_old, budget).items():
            rs = next(r for r in active_old if r["metadata"]["name"] == rs_name)
            scaled |= await self._scale(d, rs, size)
        for rs_name, size in rollout.plan_old_scale_down(d, all_rss, active_old).items():
            rs = next(r for r in active_old if r["metadata"]["name"] == rs_name)
            scaled |= await self._scale(d, rs, size)
        return scaled

    async def _rollout_recreate(self, d: dict, rss: list[dict]) -> None:
        new_rs, old_rss = await self._new_and_old(d, rss, create=False)
        all_rss = ([new_rs] if new_rs else []) + old_rss
        scaled = False
        for rs in old_rss:
            if rollout.replicas_of(rs) > 0:
                scaled |= await self._scale(d, rs, 0)
        if scaled:
            await self._sync_rollout_status(d, all_rss, new_rs)
            return
        if self._old_pods_running(old_rss):
            await self._sync_rollout_status(d, all_rss, new_rs)
            return
        if new_rs is None:
            new_rs, old_rss = await self._new_and_old(d, rss, create=True)
            if new_rs is None:
                return
            all_rss = [new_rs] + old_rss
        await self._scale(d, new_rs, rollout.replicas_of(d))
        if rollout.is_complete(d, d.get("status") or {}):
            await self._cleanup(d, old_rss)
        await self._sync_rollout_status(d, all_rss, new_rs)

    def _old_pods_running(self, old_rss: list[dict]) -> bool:
        for rs in old_rss:
            if rollout.status_of(rs, "replicas") > 0:
                return True
            for pod in owned_by(self.pods, rs):
                if not podutil.is_terminal(pod):
                    return True
        return False

    async def _cleanup(self, d: dict, old_rss: list[dict]) -> None:
        limit = (d.get("spec") or {}).get("revisionHistoryLimit")
        if limit is None:
            return
        api = self.client.resource("apps/v1", "replicasets", d["metadata"]["namespace"])
        for rs in rollout.history_to_clean(old_rss, limit):
            try:
                await api.delete(rs["metadata"]["name"])
            except ApiError as e:
                if not e.not_found:
                    raise

    async def _sync_status_only(self, d: dict, rss: list[dict]) -> None:
        new_rs, old_rss = await self._new_and_old(d, rss, create=False)
        all_rss = ([new_rs] if new_rs else []) + old_rss
        await self._write_status_if_changed(d, self._status(d, all_rss, new_rs, with_progress=False))

    # -- status and conditions

    @staticmethod
    def _condition(d: dict, type_: str) -> dict | None:
        for cond in (d.get("status") or {}).get("conditions") or []:
            if cond.get("type") == type_:
                return cond
        return None

    @staticmethod
    def _put_condition(status: dict, type_: str, cond_status: str, reason: str, message: str) -> None:
        conditions = status.setdefault("conditions", [])
        stamp = rfc3339()
        for i, cond in enumerate(conditions):
            if cond.get("type") == type_:
                if cond.get("status") == cond_status and cond.get("reason") == reason:
                    if cond.get("message") != message:
                        cond["message"] = message
                        cond["lastUpdateTime"] = stamp
                    return
                transition = cond.get("lastTransitionTime") if cond.get("status") == cond_status else stamp
                conditions[i] = {"type": type_, "status": cond_status, "lastUpdateTime": stamp,
                                 "lastTransitionTime": transition or stamp, "reason": reason, "message": message}
                return
        conditions.append({"type": type_, "status": cond_status, "lastUpdateTime": stamp,
                           "lastTransitionTime": stamp, "reason": reason, "message": message})

    def _set_condition(self, d: dict, type_: str, cond_status: str, reason: str, message: str) -> None:
        self._put_condition(d.setdefault("status", {}), type_, cond_status, reason, message)

    def _status(self, d: dict, all_rss: list[dict], new_rs: dict | None, with_progress: bool) -> dict:
        old = d.get("status") or {}
        status = {k: copy.deepcopy(v) for k, v in old.items() if k in ("conditions", "collisionCount")}
        status["observedGeneration"] = d["metadata"].get("generation", 0)
        status["replicas"] = rollout.total_status(all_rss, "replicas")
        status["updatedReplicas"] = rollout.status_of(new_rs, "replicas") if new_rs else 0
        status["readyReplicas"] = rollout.total_status(all_rss, "readyReplicas")
        status["availableReplicas"] = rollout.total_status(all_rss, "availableReplicas")
        status["unavailableReplicas"] = max(rollout.replicas_of(d) - status["availableReplicas"], 0)
        if status["availableReplicas"] >= rollout.replicas_of(d) - rollout.max_unavailable(d):
            self._put_condition(status, "Available", "True", "MinimumReplicasAvailable",
                                "Deployment has minimum availability.")
        else:
            self._put_condition(status, "Available", "False", "MinimumReplicasUnavailable",
                                "Deployment does not have minimum availability.")
        if with_progress:
            self._progress(d, status, new_rs)
        failure = next((c for rs in all_rss for c in (rs.get("status") or {}).get("conditions") or []
                        if c.get("type") == "ReplicaFailure" and c.get("status") == "True"), None)
        if failure is not None:
            self._put_condition(status, "ReplicaFailure", failure["status"], failure.get("reason", ""),
                                failure.get("message", ""))
        elif status.get("conditions"):
            status["conditions"] = [c for c in status["conditions"] if c.get("type") != "ReplicaFailure"]
        for field in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas", "unavailableReplicas"):
            if not status[field]:
                status.pop(field)  # omitempty, as upstream
        return status

    def _progress(self, d: dict, status: dict, new_rs: dict | None) -> None:
        deadline = (d.get("spec") or {}).get("progressDeadlineSeconds")
        current = next((c for c in status.get("conditions") or [] if c.get("type") == "Progressing"), None)
        if deadline is None:
            return
        settled = current is not None and current.get("reason") == "NewReplicaSetAvailable" \
            and status.get("replicas", 0) == status.get("updatedReplicas", 0)
        if settled:
            return  # the last rollout finished; nothing to estimate until the next one
        name = new_rs["metadata"]["name"] if new_rs else ""
        if rollout.is_complete(d, status):
            self._put_condition(status, "Progressing", "True", "NewReplicaSetAvailable",
                                f'ReplicaSet "{name}" has successfully progressed.')
        elif rollout.is_progressing(d, status):
            message = f'ReplicaSet "{name}" is progressing.'
            if current is not None and current.get("status") == "True":
                # keep lastTransitionTime, move lastUpdateTime: the deadline counts from the last progress
                current.update(reason="ReplicaSetUpdated", message=message, lastUpdateTime=rfc3339())
            else:
                self._put_condition(status, "Progressing", "True", "ReplicaSetUpdated", message)
        elif self._timed_out(current, deadline):
            self._put_condition(status, "Progressing", "False", "ProgressDeadlineExceeded",
                                f'ReplicaSet "{name}" has timed out progressing.')

    @staticmethod
    def _timed_out(cond: dict | None, deadline: int) -> bool:
        if cond is None or cond.get("reason") == "NewReplicaSetAvailable":
            return False
        if cond.get("reason") == "ProgressDeadlineExceeded":
            return True
        updated = parse_time(cond.get("lastUpdateTime"))
        return updated is not None and updated + datetime.timedelta(seconds=deadline) < now()

    async def _sync_rollout_status(self, d: dict, all_rss: list[dict], new_rs: dict | None) -> None:
        status = self._status(d, all_rss, new_rs, with_progress=True)
        await self._write_status_if_changed(d, status)
        deadline = (d.get("spec") or {}).get("progressDeadlineSeconds")
        cond = next((c for c in status.get("conditions") or [] if c.get("type") == "Progressing"), None)
        if deadline is not None and cond is not None and cond.get("reason") not in (
                "NewReplicaSetAvailable", "ProgressDeadlineExceeded", "DeploymentPaused") \
                and not rollout.is_complete(d, status):
            updated = parse_time(cond.get("lastUpdateTime")) or now()
            left = (updated + datetime.timedelta(seconds=deadline) - now()).total_seconds()
            self.requeue_after(f"{d['metadata']['namespace']}/{d['metadata']['name']}", max(left, 0) + 1)

    async def _check_paused_condition(self, d: dict) -> None:
        if (d.get("spec") or {}).get("progressDeadlineSeconds") is None:
            return
        cond = self._condition(d, "Progressing")
        paused = bool((d.get("spec") or {}).get("paused"))
        if paused and (cond or {}).get("reason") != "DeploymentPaused":
            self._set_condition(d, "Progressing", "Unknown", "DeploymentPaused", "Deployment is paused")
        elif not paused and (cond or {}).get("reason") == "DeploymentPaused":
            self._set_condition(d, "Progressing", "Unknown", "DeploymentResumed", "Deployment is resumed")
        else:
            return
        await self._write_status(d)

    async def _write_status_if_changed(self, d: dict, status: dict) -> None:
        if _comparable(status) == _comparable(d.get("status") or {}):
            return
        d["status"] = status
        await self._write_status(d)

    async def _write_status(self, d: dict) -> None:
        api = self.client.resource("apps/v1", "deployments", d["metadata"]["namespace"])
        try:
            updated = await api.update_status(d)
        except ApiError as e:
            if e.not_found:
                return
            raise
        d["metadata"] = updated["metadata"]


def _comparable(status: dict) -> dict:
    """Status without timestamps that change on every write."""
    out = dict(status)
    out["conditions"] = [{k: v for k, v in c.items() if k not in ("lastUpdateTime", "lastTransitionTime")}
                         for c in status.get("conditions") or []]
    return out
