"""The DaemonSet controller: one pod on every eligible node.

A sync:
1. claims the pods the selector matches and finds (or makes) the
   ControllerRevision of the template; its hash is the pods'
   `controller-revision-hash` label;
2. per node (nodeSelector, required node affinity, taints against the
   template plus the default daemon tolerations, see daemonset_nodes):
   creates the missing pod pinned to the node, deletes failed pods, extra
   pods and pods on nodes they must leave;
3. rolls old-hash pods over (RollingUpdate): with maxSurge the new pod starts
   beside the old one, which goes once the new is available; without it old
   pods are deleted while at most maxUnavailable nodes lack an available pod.
   OnDelete only replaces pods the user deletes;
4. writes status and trims the revision history.
"""

from __future__ import annotations

import copy
import logging

from k8py.apimachinery.selectors import selector_from_label_selector
from k8py.client import ApiError
from k8py.controllers import daemonset_nodes as dn
from k8py.controllers import podutil
from k8py.controllers import revisions as rev
from k8py.controllers.base import Controller, object_key, split_key
from k8py.controllers.batches import create_in_batches
from k8py.controllers.owned import enqueue_owner, index_by_controller, namespace_terminating, owned_by, owner_key
from k8py.controllers.ownership import claim, new_controller_ref

log = logging.getLogger("k8py.controllers.daemonset")

FAILED_POD_BACKOFF = 1.0  # seconds before a failed daemon pod's replacement is looked at again


class DaemonSetController(Controller):
    name = "daemonset"
    uses_expectations = True
    workers = 2

    async def setup(self) -> None:
        self.sets = self.ctx.informer("apps/v1", "daemonsets")
        self.pods = self.ctx.informer("v1", "pods")
        self.nodes = self.ctx.informer("v1", "nodes")
        self.revisions = self.ctx.informer("apps/v1", "controllerrevisions")
        for informer in (self.pods, self.revisions):
            index_by_controller(self.ctx, informer)
        self.sets.add_handler(on_add=self.enqueue, on_update=lambda old, new: self.enqueue(new),
                              on_delete=lambda ds: self.expectations.forget(object_key(ds)))
        owner = enqueue_owner(self, "DaemonSet")
        self.pods.add_handler(on_add=self._pod_added, on_update=lambda old, new: owner(new),
                              on_delete=self._pod_deleted)
        self.nodes.add_handler(on_add=self._all, on_update=self._node_changed, on_delete=self._all)

    def _pod_added(self, pod: dict) -> None:
        key = owner_key(pod, "DaemonSet")
        if key:
            self.expectations.creation_observed(key)
            self.enqueue(key)

    def _pod_deleted(self, pod: dict) -> None:
        key = owner_key(pod, "DaemonSet")
        if key:
            self.expectations.deletion_observed(key, pod["metadata"].get("uid"))
            self.enqueue(key)

    def _all(self, *_ignored) -> None:
        for ds in self.sets.list():
            self.enqueue(ds)

    def _node_changed(self, old: dict, new: dict) -> None:
        # Heartbeats change nothing a daemon pod cares about: only labels, taints and readiness.
        def relevant(node):
            ready = [c.get("status") for c in (node.get("status") or {}).get("conditions") or []
                     if c.get("type") == "Ready"]
            return node["metadata"].get("labels"), (node.get("spec") or {}).get("taints"), ready
        if relevant(old) != relevant(new):
            self._all()

    async def sync(self, key: str) -> None:
        ds = self.sets.get(key)
        if ds is None:
            return
        ds = copy.deepcopy(ds)
        namespace, _ = split_key(key)
        selector = selector_from_label_selector((ds.get("spec") or {}).get("selector"))
        if selector is None or selector.empty():
            return
        candidates = self.pods.by_index("namespace", namespace)
        pods = await claim(ds, candidates, lambda p: selector.matches(p["metadata"].get("labels")),
                           self.client.resource("v1", "pods", namespace),
                           owner_ref=new_controller_ref(ds, "apps/v1", "DaemonSet"))
        if ds["metadata"].get("deletionTimestamp"):
            return
        try:
            await DaemonSetSync(self, key, ds, pods).run()
        except ApiError as e:
            if not namespace_terminating(e):
                raise


class DaemonSetSync:
    def __init__(self, controller: DaemonSetController, key: str, ds: dict, pods: list[dict]):
        self.c = controller
        self.key = key
        self.ds = ds
        self.spec = ds.get("spec") or {}
        self.namespace = ds["metadata"]["namespace"]
        self.pods_api = controller.client.resource("v1", "pods", self.namespace)
        self.revisions_api = controller.client.resource("apps/v1", "controllerrevisions", self.namespace)
        self.min_ready = self.spec.get("minReadySeconds") or 0
        self.by_node: dict[str, list[dict]] = {}
        for pod in copy.deepcopy(pods):  # ours to mark as deleted during the sync; the cache stays intact
            node = dn.pinned_node(pod)
            if node:
                self.by_node.setdefault(node, []).append(pod)

    async def run(self) -> None:
        template = self.spec.get("template") or {}
        history = owned_by(self.c.revisions, self.ds)
        revision, collision = await rev.ensure_revision(self.revisions_api, self.ds, "DaemonSet", template, history,
                                                        (template.get("metadata") or {}).get("labels"))
        self.hash = revision["metadata"]["name"].removeprefix(self.ds["metadata"]["name"] + "-")
        self.template = rev.template_of(revision)
        self.collision = collision
        nodes = self.c.nodes.list()
        self.placements = {n["metadata"]["name"]: dn.placement(template, n) for n in nodes}

        if self.c.expectations.satisfied(self.key):
            await self._manage()
            if ((self.spec.get("updateStrategy") or {}).get("type") or "RollingUpdate") == "RollingUpdate":
                await self._roll()
        await self._write_status()
        in_use = {revision["metadata"]["name"]} | {
            f"{self.ds['metadata']['name']}-{(p['metadata'].get('labels') or {}).get(rev.REVISION_HASH_LABEL)}"
            for pods in self.by_node.values() for p in pods}
        await rev.truncate_history(self.revisions_api, history + [revision], in_use,
                                   self.spec.get("revisionHistoryLimit", 10))
        if self.min_ready:
            self.c.requeue_after(self.key, self.min_ready)

    def _live(self, node: str) -> list[dict]:
        return [p for p in self.by_node.get(node, []) if not p["metadata"].get("deletionTimestamp")]

    def _is_new(self, pod: dict) -> bool:
        return (pod["metadata"].get("labels") or {}).get(rev.REVISION_HASH_LABEL) == self.hash

    # -- step 2: one pod per eligible node

    async def _manage(self) -> None:
        to_create: list[str] = []
        to_delete: list[dict] = []
        for node, where in self.placements.items():
            live = self._live(node)
            failed = [p for p in live if (p.get("status") or {}).get("phase") == "Failed"]
            for pod in failed:
                self.c.recorder.event(self.ds, "Warning", "FailedDaemonPod",
                                      f"Found failed daemon pod {self.namespace}/{pod['metadata']['name']} on node "
                                      f"{node}, will try to kill it")
            to_delete += failed
            running = [p for p in live if p not in failed]
            if where.should_run and not running:
                if not [p for p in self.by_node.get(node, []) if p["metadata"].get("deletionTimestamp")]:
                    to_create.append(node)
            elif not where.should_continue:
                to_delete += running
            elif len(running) > 1 and not self._surging(running):
                keep = sorted(running, key=lambda p: (not self._is_new(p), not podutil.is_ready(p),
                                                      p["metadata"].get("creationTimestamp") or ""))[0]
                to_delete += [p for p in running if p is not keep]
        # Pods pinned to nodes that no longer exist.
        for node, pods in self.by_node.items():
            if node not in self.placements:
                to_delete += [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        await self._delete(to_delete)
        await self._create(to_create)
        if to_delete and any((p.get("status") or {}).get("phase") == "Failed" for p in to_delete):
            self.c.requeue_after(self.key, FAILED_POD_BACKOFF)

    def _surging(self, running: list[dict]) -> bool:
        """One old and one new pod on a node is a surge in progress, not a duplicate."""
        max_surge, _ = dn.rolling_limits(self.ds, len(self.placements))
        return max_surge > 0 and len(running) == 2 and sum(self._is_new(p) for p in running) == 1

    # -- step 3: the rolling update

    async def _roll(self) -> None:
        eligible = {n: self._live(n) for n, w in self.placements.items() if w.should_run}
        max_surge, max_unavailable = dn.rolling_limits(self.ds, len(eligible))
        doomed, creates = dn.plan_rollout(eligible, self._is_new,
                                          lambda p: podutil.is_available(p, self.min_ready),
                                          max_surge, max_unavailable)
        await self._delete(doomed)
        await self._create(creates)

    # -- writes

    async def _create(self, nodes: list[str]) -> None:
        if not nodes:
            return
        self.c.expectations.expect_creations(self.key, len(nodes))
        result = await create_in_batches(
            nodes, lambda node: self.pods_api.create(dn.new_pod(self.ds, self.template, node, self.hash)))
        for node, pod in result.created:
            self.by_node.setdefault(node, []).append(pod)
            self.c.recorder.event(self.ds, "Normal", "SuccessfulCreate", f"Created pod: {pod['metadata']['name']}")
        for _ in range(len(result.errors) + len(result.unsent)):  # never to be observed
            self.c.expectations.creation_failed(self.key)
        for _, error in result.errors:
            if isinstance(error, ApiError) and namespace_terminating(error):
                continue
            self.c.recorder.event(self.ds, "Warning", "FailedCreate", f"Error creating: {error}")
            raise error

    async def _delete(self, pods: list[dict]) -> None:
        if not pods:
            return
        self.c.expectations.expect_deletions(self.key, [p["metadata"]["uid"] for p in pods])
        for pod in pods:
            name = pod["metadata"]["name"]
            try:
                await self.pods_api.delete(name, preconditions={"uid": pod["metadata"]["uid"]})
            except ApiError as e:
                self.c.expectations.deletion_observed(self.key, pod["metadata"]["uid"])
                if e.not_found or e.code == 409:
                    continue
                self.c.recorder.event(self.ds, "Warning", "FailedDelete", f"Error deleting: {e}")
                raise
            pod["metadata"]["deletionTimestamp"] = "now"
            self.c.recorder.event(self.ds, "Normal", "SuccessfulDelete", f"Deleted pod: {name}")

    async def _write_status(self) -> None:
        current = misscheduled = ready = updated = available = 0
        for node, pods in self.by_node.items():
            live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
            where = self.placements.get(node)
            if not live:
                continue
            if where is None or not where.should_run:
                misscheduled += 1  # a pod where none belongs, even one allowed to stay
                continue
            current += 1
            newest = sorted(live, key=lambda p: (not self._is_new(p), not podutil.is_ready(p)))[0]
            if podutil.is_ready(newest):
                ready += 1
                if podutil.is_available(newest, self.min_ready):
                    available += 1
            if self._is_new(newest):
                updated += 1
        desired = sum(1 for w in self.placements.values() if w.should_run)
        status = {"currentNumberScheduled": current, "numberMisscheduled": misscheduled,
                  "desiredNumberScheduled": desired, "numberReady": ready,
                  "observedGeneration": self.ds["metadata"].get("generation"),
                  "updatedNumberScheduled": updated, "numberAvailable": available,
                  "numberUnavailable": desired - available}
        if self.collision:
            status["collisionCount"] = self.collision
        for omit in ("updatedNumberScheduled", "numberAvailable", "numberUnavailable"):
            if not status[omit]:
                status.pop(omit)
        before = self.ds.get("status") or {}
        merged = {**{k: v for k, v in before.items() if k == "conditions"}, **status}
        if merged == before:
            return
        self.ds["status"] = merged
        try:
            await self.c.client.resource("apps/v1", "daemonsets", self.namespace).update_status(self.ds)
        except ApiError as e:
            if not e.not_found:
                raise
