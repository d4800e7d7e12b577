"""The StatefulSet controller: ordered, uniquely named pods with their own storage.

A sync:
1. finds (or makes) the ControllerRevision of the current template: that is
   the update revision; the current revision is what status says the pods
   were on before (the update revision once a rollout finishes);
2. for each wanted ordinal, in order: replaces a Failed pod, creates a
   missing pod (and its claims first), fixes a pod's identity labels. With
   OrderedReady it stops at the first pod that is not yet Running and Ready
   (or is terminating): web-1 is only made once web-0 is ready. Parallel
   does them all at once. Each pod's claims get the ownerReferences the
   retention policy asks for (statefulset_claims.py);
3. deletes pods beyond `replicas`, highest ordinal first (one at a time, and
   only while the rest are healthy, for OrderedReady), after giving their
   claims the scaled-down ownerReferences (the pod's, for whenScaled: Delete);
4. rolls pods onto the update revision from the highest ordinal down to the
   partition, one at a time, each only once the updated ones above it are
   healthy (RollingUpdate; OnDelete leaves that to the user);
5. writes status and trims the revision history.
"""

from __future__ import annotations

import copy
import logging

from k8py.apimachinery.selectors import selector_from_label_selector
from k8py.client import ApiError
from k8py.controllers import podutil
from k8py.controllers import revisions as rev
from k8py.controllers import statefulset_claims as sc
from k8py.controllers import statefulset_pods as sp
from k8py.controllers.base import Controller, split_key
from k8py.controllers.owned import enqueue_owner, index_by_controller, namespace_terminating, owned_by
from k8py.controllers.ownership import claim, new_controller_ref

log = logging.getLogger("k8py.controllers.statefulset")


class StatefulSetController(Controller):
    name = "statefulset"
    workers = 5

    async def setup(self) -> None:
        self.sets = self.ctx.informer("apps/v1", "statefulsets")
        self.pods = self.ctx.informer("v1", "pods")
        self.revisions = self.ctx.informer("apps/v1", "controllerrevisions")
        self.claims = self.ctx.informer("v1", "persistentvolumeclaims")
        for informer in (self.pods, self.revisions):
            index_by_controller(self.ctx, informer)
        self.sets.add_handler(on_add=self.enqueue, on_update=lambda old, new: self.enqueue(new))
        owner = enqueue_owner(self, "StatefulSet")
        self.pods.add_handler(on_add=owner, on_update=lambda old, new: owner(new), on_delete=owner)
        self.revisions.add_handler(on_delete=owner)
        # A claim going away may let a waiting pod be made (whenScaled: Delete, scale up again).
        self.claims.add_handler(on_update=lambda old, new: self._claim_changed(new), on_delete=self._claim_changed)

    def _claim_changed(self, claim_obj: dict) -> None:
        meta = claim_obj["metadata"]
        if not (meta.get("deletionTimestamp") or meta.get("ownerReferences")):
            return
        for sts in self.sets.by_index("namespace", meta.get("namespace", "")):
            if any(meta["name"].startswith(f"{t['metadata'].get('name')}-{sts['metadata']['name']}-")
                   for t in sc.claim_templates(sts)):
                self.enqueue(sts)

    async def sync(self, key: str) -> None:
        sts = self.sets.get(key)
        if sts is None:
            return
        sts = copy.deepcopy(sts)
        namespace, _ = split_key(key)
        selector = selector_from_label_selector((sts.get("spec") or {}).get("selector"))
        if selector is None or selector.empty():
            return  # validation forbids it; never adopt a whole namespace
        pods = await self._claim(sts, selector)
        if sts["metadata"].get("deletionTimestamp"):
            return
        try:
            await StatefulSetSync(self, key, sts, pods).run()
        except ApiError as e:
            if not namespace_terminating(e):
                raise

    async def _claim(self, sts: dict, selector) -> list[dict]:
        namespace = sts["metadata"]["namespace"]
        # Only pods named like members (`<set>-<ordinal>`) are the set's to adopt or release.
        candidates = [p for p in self.pods.by_index("namespace", namespace) if sp.ordinal_of(sts, p) is not None]
        return await claim(sts, candidates, lambda p: selector.matches(p["metadata"].get("labels")),
                           self.client.resource("v1", "pods", namespace),
                           owner_ref=new_controller_ref(sts, "apps/v1", "StatefulSet"))


class StatefulSetSync:
    def __init__(self, controller: StatefulSetController, key: str, sts: dict, pods: list[dict]):
        self.c = controller
        self.key = key
        self.sts = sts
        self.spec = sts.get("spec") or {}
        self.namespace = sts["metadata"]["namespace"]
        self.name = sts["metadata"]["name"]
        self.pods_api = controller.client.resource("v1", "pods", self.namespace)
        self.claims_api = controller.client.resource("v1", "persistentvolumeclaims", self.namespace)
        self.revisions_api = controller.client.resource("apps/v1", "controllerrevisions", self.namespace)
        self.ordered = (self.spec.get("podManagementPolicy") or "OrderedReady") == "OrderedReady"
        self.min_ready = self.spec.get("minReadySeconds") or 0
        self.pods = {o: p for p in pods if (o := sp.ordinal_of(sts, p)) is not None}

    async def run(self) -> None:
        history = owned_by(self.c.revisions, self.sts)
        update, collision = await rev.ensure_revision(self.revisions_api, self.sts, "StatefulSet",
                                                      self.spec.get("template") or {}, history,
                                                      (self.spec.get("template") or {}).get("metadata", {})
                                                      .get("labels"))
        self.update = update["metadata"]["name"]
        status = self.sts.get("status") or {}
        known = {r["metadata"]["name"]: r for r in history}
        known[self.update] = update
        self.current = status.get("currentRevision") if status.get("currentRevision") in known else self.update
        self.templates = {name: rev.template_of(r) for name, r in known.items()}
        self.collision = collision

        await self._reconcile()
        await self._write_status()
        keep = {self.current, self.update} | {sp.pod_revision(p) for p in self.pods.values()}
        limit = self.spec.get("revisionHistoryLimit", 10)
        await rev.truncate_history(self.revisions_api, list(known.values()), keep, limit)
        if self.min_ready:
            self.c.requeue_after(self.key, self.min_ready)

    # -- the steps

    async def _reconcile(self) -> None:
        wanted = list(sp.wanted_ordinals(self.sts))
        # Pods of the wanted ordinals, lowest first.
        for ordinal in wanted:
            pod = self.pods.get(ordinal)
            if pod is not None and sp.is_failed(pod) and not sp.is_terminating(pod):
                await self._delete_pod(pod, "recreate failed")
                pod = None
                if self.ordered:
                    return
            if pod is None:
                if self._claims_stale(ordinal):
                    # A claim still owned by the pod this ordinal had before (whenScaled:
                    # Delete): wait for the garbage collector to remove it.
                    self.c.requeue_after(self.key, 1.0)
                    if self.ordered:
                        return
                    continue
                await self._create_pod(ordinal)
                if self.ordered:
                    return
                continue
            if sp.phase(pod) == "Pending":
                await self._ensure_claims(ordinal)
            if sp.is_terminating(pod):
                if self.ordered:
                    return
                continue
            if not sp.identity_matches(self.sts, pod, ordinal):
                self.pods[ordinal] = await self.pods_api.patch(pod["metadata"]["name"],
                                                               sp.identity_patch(self.sts, pod, ordinal),
                                                               patch_type="strategic")
            await self._sync_claim_owners(pod, ordinal)
            if self.ordered and not (sp.is_running_and_ready(pod) and podutil.is_available(pod, self.min_ready)):
                return  # OrderedReady: nothing further until this one is ready
        # Pods beyond replicas, highest first; their claims first get the owners
        # whenScaled asks for, so the garbage collector takes them with the pod.
        condemned = sorted((o for o in self.pods if o not in wanted), reverse=True)
        for ordinal in condemned:
            await self._sync_claim_owners(self.pods[ordinal], ordinal)
        for ordinal in condemned:
            pod = self.pods[ordinal]
            if sp.is_terminating(pod):
                if self.ordered:
                    return
                continue
            if self.ordered and not all(sp.is_healthy(p) for o, p in self.pods.items() if o != ordinal):
                return
            await self._delete_pod(pod, "scale down")
            if self.ordered:
                return
        # The rolling update: one pod at a time, highest ordinal first.
        target = sp.rollout_step(self.sts, {o: p for o, p in self.pods.items() if o in wanted}, self.update)
        if target is not None:
            await self._delete_pod(self.pods[target], "update")

    async def _create_pod(self, ordinal: int) -> None:
        if not await self._ensure_claims(ordinal):
            self.c.requeue_after(self.key, 1.0)  # a claim is still going away
            return
        revision = sp.revision_for_new_pod(self.sts, ordinal, self.current, self.update)
        template = self.templates.get(revision) or self.spec.get("template") or {}
        body = sp.new_pod(self.sts, template, revision, ordinal)
        name = body["metadata"]["name"]
        try:
            created = await self.pods_api.create(body)
        except ApiError as e:
            if e.already_exists:
                return  # the cache is behind; the next sync sees it
            self.c.recorder.event(self.sts, "Warning", "FailedCreate",
                                  f"create Pod {name} in StatefulSet {self.name} failed error: "
                                  f"{e.status.get('message') or e}")
            raise
        self.pods[ordinal] = created
        self.c.recorder.event(self.sts, "Normal", "SuccessfulCreate",
                              f"create Pod {name} in StatefulSet {self.name} successful")

    async def _ensure_claims(self, ordinal: int) -> bool:
        """Create the ordinal's missing claims; False while one is being deleted (no pod then)."""
        pod = sp.pod_name(self.sts, ordinal)
        for template in sc.claim_templates(self.sts):
            body = sc.new_claim(self.sts, template, ordinal)
            name = body["metadata"]["name"]
            existing = self.c.claims.get(f"{self.namespace}/{name}")
            if existing is not None:
                if existing["metadata"].get("deletionTimestamp"):
                    message = f"pvc {name} is being deleted"
                    self.c.recorder.event(self.sts, "Warning", "FailedCreate",
                                          f"create Pod {pod} in StatefulSet {self.name} failed error: {message}")
                    return False
                continue
            try:
                await self.claims_api.create(body)
            except ApiError as e:
                if e.already_exists:
                    continue
                why = e.status.get("message") or str(e)
                self.c.recorder.event(self.sts, "Warning", "FailedCreate", f"create Claim {name} for Pod {pod} in "
                                      f"StatefulSet {self.name} failed error: {why}")
                self.c.recorder.event(self.sts, "Warning", "FailedCreate",
                                      f"create Pod {pod} in StatefulSet {self.name} failed error: failed to create "
                                      f"PVC {name}: {why}")
                raise
            self.c.recorder.event(self.sts, "Normal", "SuccessfulCreate",
                                  f"create Claim {name} Pod {pod} in StatefulSet {self.name} success")
        return True

    def _claims_stale(self, ordinal: int) -> bool:
        """Whether a claim of the ordinal still names an earlier pod as its owner."""
        if sc.retention(self.sts)[1] != "Delete":
            return False
        pod = sp.pod_name(self.sts, ordinal)
        for template in sc.claim_templates(self.sts):
            name = sc.claim_name(template["metadata"]["name"], self.sts, ordinal)
            claim_obj = self.c.claims.get(f"{self.namespace}/{name}")
            if claim_obj is not None and any(r.get("kind") == "Pod" and r.get("name") == pod
                                             for r in claim_obj["metadata"].get("ownerReferences") or []):
                return True
        return False

    async def _sync_claim_owners(self, pod: dict, ordinal: int) -> None:
        """Give the pod's claims the ownerReferences the retention policy asks for."""
        for template in sc.claim_templates(self.sts):
            name = sc.claim_name(template["metadata"]["name"], self.sts, ordinal)
            claim_obj = self.c.claims.get(f"{self.namespace}/{name}")
            if claim_obj is None or sc.owner_refs_up_to_date(claim_obj, self.sts, pod, ordinal):
                continue
            refs = sc.updated_owner_refs(claim_obj, self.sts, pod, ordinal)
            # an update conditional on the cached resourceVersion: upstream's statefulset-controller
            # role may update claims, not patch them
            claim = {**claim_obj, "metadata": {**claim_obj["metadata"], "ownerReferences": refs}}
            try:
                await self.claims_api.update(claim)
            except ApiError as e:
                if not (e.not_found or e.code in (409, 422)):
                    raise
                self.c.requeue_after(self.key, 1.0)  # the cache was behind: look again

    async def _delete_pod(self, pod: dict, why: str) -> None:
        name = pod["metadata"]["name"]
        log.debug("statefulset %s/%s: deleting pod %s (%s)", self.namespace, self.name, name, why)
        try:
            await self.pods_api.delete(name, preconditions={"uid": pod["metadata"]["uid"]})
        except ApiError as e:
            if e.not_found or e.code == 409:
                return
            self.c.recorder.event(self.sts, "Warning", "FailedDelete",
                                  f"delete Pod {name} in StatefulSet {self.name} failed error: "
                                  f"{e.status.get('message') or e}")
            raise
        pod = copy.deepcopy(pod)
        pod["metadata"]["deletionTimestamp"] = "now"
        self.pods[sp.ordinal_of(self.sts, pod)] = pod
        self.c.recorder.event(self.sts, "Normal", "SuccessfulDelete",
                              f"delete Pod {name} in StatefulSet {self.name} successful")

    async def _write_status(self) -> None:
        live = [p for p in self.pods.values() if not sp.is_terminating(p)]
        status = dict(self.sts.get("status") or {})
        new = {
            "observedGeneration": self.sts["metadata"].get("generation"),
            "replicas": len(live),
            "readyReplicas": sum(1 for p in live if sp.is_running_and_ready(p)),
            "availableReplicas": sum(1 for p in live if sp.is_running_and_ready(p) and
                                     podutil.is_available(p, self.min_ready)),
            "currentReplicas": sum(1 for p in live if sp.pod_revision(p) == self.current),
            "updatedReplicas": sum(1 for p in live if sp.pod_revision(p) == self.update),
            "currentRevision": self.current,
            "updateRevision": self.update,
        }
        if self.collision:
            new["collisionCount"] = self.collision
        # The rollout is done once every wanted pod is updated and ready: current catches up.
        if new["updatedReplicas"] == sp.replicas(self.sts) and new["readyReplicas"] == sp.replicas(self.sts) \
                and new["replicas"] == sp.replicas(self.sts):
            new["currentRevision"] = self.update
            new["currentReplicas"] = new["updatedReplicas"]
        for zero in ("readyReplicas", "currentReplicas", "updatedReplicas"):
            if not new[zero]:
                new.pop(zero)
        kept = {k: v for k, v in status.items() if k == "conditions"}
        merged = {**kept, **new}
        if merged == status:
            return
        self.sts["status"] = merged
        try:
            await self.c.client.resource("apps/v1", "statefulsets", self.namespace).update_status(self.sts)
        except ApiError as e:
            if not e.not_found:
                raise
