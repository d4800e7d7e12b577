"""The scheduler: informers feed the cache and queue; one loop places pods.

The scheduling cycle (filter, score, pick, assume) runs without awaiting, so
it sees one consistent cache; binding then runs as its own task, as
upstream's binding cycle runs in a goroutine, so the next pod starts at once.
"""

from __future__ import annotations

import asyncio
import datetime
import logging

from k8py.api import volume_matching
from k8py.client import ApiError, EventRecorder, Informer
from k8py.scheduler.cache import SchedulerCache, node_change_matters, pod_counts_for_node
from k8py.scheduler.framework import CycleState, FitError, NoNodesAvailable, Profile
from k8py.scheduler.plugins import DEFAULT_SCHEDULER, default_profile
from k8py.scheduler.plugins.volume_binding import VOLUME_CLASS_INDEX
from k8py.scheduler.podinfo import PodInfo
from k8py.scheduler.queue import (NAMESPACE_CHANGE, NODE_ADD, NODE_DELETE, NODE_UPDATE, POD_ADD, POD_DELETE,
                                  POD_UPDATE, STORAGE_CHANGE, SchedulingQueue)

log = logging.getLogger("k8py.scheduler")

MAX_BINDS_IN_FLIGHT = 64
UNSCHEDULABLE_FLUSH_PERIOD = 30.0
# Kinds whose selectors give pods default topology spreading, and the PDBs preemption respects.
LISTED = [("v1", "services"), ("v1", "replicationcontrollers"), ("apps/v1", "replicasets"),
          ("apps/v1", "statefulsets"), ("policy/v1", "poddisruptionbudgets")]
# What VolumeBinding reads; a change to any may let a pod waiting on its volumes through.
STORAGE_LISTED = [("v1", "persistentvolumeclaims"), ("v1", "persistentvolumes"), ("storage.k8s.io/v1", "storageclasses")]


LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def without_managed_fields(obj: dict) -> dict:
    """Trim what the scheduler never reads before caching: managedFields (as kube-scheduler does)
    and kubectl's last-applied copy of the object; together often half of a cached pod."""
    meta = obj.get("metadata", {})
    meta.pop("managedFields", None)
    annotations = meta.get("annotations")
    if annotations and LAST_APPLIED in annotations:
        meta["annotations"] = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
    return obj


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class PreBindError(Exception):
    pass


class Listers:
    """What plugins may look up beyond nodes and pods, read from informers on demand."""

    def __init__(self, informers: dict[str, Informer]):
        self.informers = informers

    def get(self, plural: str, default=None):
        inf = self.informers.get(plural)
        return inf.list() if inf is not None else default

    def in_namespace(self, plural: str, namespace: str) -> list[dict]:
        """One namespace's objects from the informer's namespace index (no walk over all of them)."""
        inf = self.informers.get(plural)
        return inf.by_index("namespace", namespace) if inf is not None else []

    def by_index(self, plural: str, index: str, value: str) -> list[dict]:
        inf = self.informers.get(plural)
        return inf.by_index(index, value) if inf is not None else []

    def watches(self, plural: str) -> bool:
        return plural in self.informers

    def named(self, plural: str, namespace: str, name: str) -> dict | None:
        inf = self.informers.get(plural)
        return inf.get(f"{namespace}/{name}" if namespace else name) if inf is not None else None


class Scheduler:
    def __init__(self, client, profiles: dict[str, Profile] | None = None, identity: str = "default-scheduler"):
        self.client = client
        self.profiles = profiles or {DEFAULT_SCHEDULER: default_profile()}
        self.cache = SchedulerCache()
        self.queue = SchedulingQueue()
        self.recorder = EventRecorder(client, component="default-scheduler")
        self.pods_api = client.resource("v1", "pods")
        self.pods = Informer(client, "v1", "pods", transform=without_managed_fields)
        self.nodes = Informer(client, "v1", "nodes", transform=without_managed_fields)
        self.namespaces = Informer(client, "v1", "namespaces")
        self.listed = {plural: Informer(client, gv, plural, transform=without_managed_fields)
                       for gv, plural in LISTED + STORAGE_LISTED}
        self.listed["persistentvolumes"].add_index(VOLUME_CLASS_INDEX, lambda v: [volume_matching.volume_class(v)])
        self.cache.listers = Listers(self.listed)
        self.nominated: dict[str, tuple[str, PodInfo]] = {}  # pod key -> (node, pod)
        self._bind_slots = asyncio.Semaphore(MAX_BINDS_IN_FLIGHT)
        self._tasks: set[asyncio.Task] = set()
        self._loops: list[asyncio.Task] = []
        self.scheduled = 0
        self.attempts = 0

    # ---- lifecycle --------------------------------------------------------------

    async def start(self) -> None:
        self.nodes.add_handler(self._node_added, self._node_updated, self._node_deleted)
        self.pods.add_handler(self._pod_added, self._pod_updated, self._pod_deleted)
        self.namespaces.add_handler(self._namespace_changed, lambda old, new: self._namespace_changed(new),
                                    self._namespace_deleted)
        for _, plural in STORAGE_LISTED:
            self.listed[plural].add_handler(self._storage_changed, lambda old, new: self._storage_changed(new),
                                            self._storage_changed)
        await asyncio.gather(self.nodes.start(), self.namespaces.start(),
                             *(inf.start() for inf in self.listed.values()))
        await self.pods.start()
        self._loops = [asyncio.create_task(self._schedule_loop(), name="scheduler"),
                       asyncio.create_task(self._flush_loop(), name="scheduler-flush")]
        log.info("scheduler started: %d nodes, %d pods pending", len(self.cache.nodes), len(self.queue.pending()))

    async def run(self) -> None:
        await self.start()
        try:
            await asyncio.gather(*self._loops)
        finally:
            await self.stop()

    async def stop(self) -> None:
        self.queue.close()
        for t in self._loops:
            t.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        for inf in [self.pods, self.nodes, self.namespaces, *self.listed.values()]:
            await inf.stop()
        await self.recorder.close()

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ---- informer handlers ----------------------------------------------------------

    def _ours(self, pod: dict) -> bool:
        return (pod.get("spec") or {}).get("schedulerName", DEFAULT_SCHEDULER) in self.profiles

    @staticmethod
    def _pending(pod: dict) -> bool:
        return not (pod.get("spec") or {}).get("nodeName") and not pod["metadata"].get("deletionTimestamp") \
            and (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed")

    def _pod_added(self, pod: dict) -> None:
        if pod_counts_for_node(pod):
            self.cache.add_pod(pod)
            self.queue.on_event(POD_ADD)
        elif self._pending(pod) and self._ours(pod):
            info = PodInfo(pod)
            self._track_nomination(info)
            self.queue.add(info)

    def _pod_updated(self, old: dict, new: dict) -> None:
        key = Informer.key(new)
        if pod_counts_for_node(new):
            was_bound = pod_counts_for_node(old)
            self.cache.add_pod(new)
            self.queue.delete(key)
            self.nominated.pop(key, None)
            if not was_bound:
                self.queue.on_event(POD_ADD)
            elif old["metadata"].get("labels") != new["metadata"].get("labels") or \
                    bool(old["metadata"].get("deletionTimestamp")) != bool(new["metadata"].get("deletionTimestamp")):
                self.queue.on_event(POD_UPDATE)
        elif pod_counts_for_node(old):
            self.cache.remove_pod_key(key)  # finished: its resources are free
            self.queue.on_event(POD_DELETE)
        elif key in self.cache.assumed:
            return  # our own status writes while the binding is in flight
        elif self._pending(new) and self._ours(new):
            info = PodInfo(new)
            self._track_nomination(info)
            changed = old.get("spec") != new.get("spec") or \
                old["metadata"].get("labels") != new["metadata"].get("labels")
            self.queue.update(info, changed)
        else:
            self.queue.delete(key)
            self.nominated.pop(key, None)

    def _pod_deleted(self, pod: dict) -> None:
        key = Informer.key(pod)
        if key in self.cache.pod_node:
            self.cache.remove_pod_key(key)
            self.queue.on_event(POD_DELETE)
        self.queue.delete(key)
        self.nominated.pop(key, None)

    def _track_nomination(self, info: PodInfo) -> None:
        node = (info.pod.get("status") or {}).get("nominatedNodeName")
        if node:
            self.nominated[info.key] = (node, info)
        else:
            self.nominated.pop(info.key, None)

    def _node_added(self, node: dict) -> None:
        self.cache.set_node(node)
        self.queue.on_event(NODE_ADD)

    def _node_updated(self, old: dict, new: dict) -> None:
        self.cache.set_node(new)
        if node_change_matters(old, new):
            self.queue.on_event(NODE_UPDATE)

    def _node_deleted(self, node: dict) -> None:
        self.cache.remove_node(node["metadata"]["name"])
        self.queue.on_event(NODE_DELETE)

    def _namespace_changed(self, ns: dict) -> None:
        self.cache.namespace_labels[ns["metadata"]["name"]] = ns["metadata"].get("labels") or {}
        self.cache.namespace_generation += 1
        self.queue.on_event(NAMESPACE_CHANGE)

    def _storage_changed(self, obj: dict) -> None:
        self.queue.on_event(STORAGE_CHANGE)

    def _namespace_deleted(self, ns: dict) -> None:
        self.cache.namespace_labels.pop(ns["metadata"]["name"], None)
        self.cache.namespace_generation += 1

    # ---- the scheduling cycle -------------------------------------------------------------

    async def _schedule_loop(self) -> None:
        while True:
            qp = await self.queue.pop()
            await self._bind_slots.acquire()
            try:
                self.schedule_one(qp)
            except Exception:
                log.exception("scheduling %s failed", qp.key)
                self._bind_slots.release()
                self.queue.requeue_error(qp)
            # Let informers and bindings run between pods.
            await asyncio.sleep(0)

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(UNSCHEDULABLE_FLUSH_PERIOD)
            self.queue.flush_unschedulable()

    def nominated_by_node(self) -> dict[str, list[PodInfo]]:
        out: dict[str, list[PodInfo]] = {}
        for node, info in self.nominated.values():
            out.setdefault(node, []).append(info)
        return out

    def schedule_one(self, qp) -> None:
        """One scheduling cycle. Holds a bind slot, which the binding (or failure) releases."""
        self.attempts += 1
        current = self.pods.get(qp.key)
        if current is None or not self._pending(current) or not self._ours(current):
            self.queue.delete(qp.key)
            self._bind_slots.release()
            return
        info = qp.info if current is qp.info.pod else qp.info.rebound(current)
        qp.info = info
        profile = self.profiles[(current.get("spec") or {}).get("schedulerName", DEFAULT_SCHEDULER)]
        profile.trace = log.isEnabledFor(logging.DEBUG)
        snapshot = self.cache.snapshot()
        state = CycleState()
        try:
            result = profile.schedule(state, info, snapshot, self.nominated_by_node() if self.nominated else None)
        except NoNodesAvailable as e:
            self._bind_slots.release()
            self._failed(qp, str(e), set(), None)
            return
        except FitError as fit:
            self._bind_slots.release()
            nominate = None
            preemption = profile.by_name.get("DefaultPreemption")
            if preemption is not None:
                post = preemption.post_filter(profile, info, snapshot, fit.diagnosis)
                fit.diagnosis.post_filter_msg = post.message
                nominate = post.nominated_node
                if post.victims:
                    self._spawn(self._preempt(info, post.nominated_node, post.victims))
                if nominate:
                    self.nominated[info.key] = (nominate, info)
            self._failed(qp, str(fit), fit.diagnosis.unschedulable_plugins, nominate)
            return
        if profile.trace:
            log.debug("pod %s: chose node %s (%d feasible of %d evaluated)", info.key, result.node,
                      result.feasible, result.evaluated)
        assumed = self.cache.assume(info, result.node)
        self.queue.done(qp.key)
        self.nominated.pop(qp.key, None)
        pre_binders = [p for p in profile.plugins if getattr(p, "needs_pre_bind", None) and p.needs_pre_bind(state)]
        for plugin in pre_binders:
            plugin.reserve(state, result.node)
        self._spawn(self._bind(qp, assumed, result.node, state, pre_binders))

    # ---- binding ---------------------------------------------------------------------------

    async def _bind(self, qp, assumed: PodInfo, node: str, state=None, pre_binders=()) -> None:
        try:
            for plugin in pre_binders:  # upstream's PreBind: the pod's volumes first
                try:
                    await plugin.pre_bind(self.client, state, assumed, node)
                except Exception as e:
                    raise PreBindError(f'running PreBind plugin "{plugin.name}": {e}') from None
            body = {"apiVersion": "v1", "kind": "Binding",
                    "metadata": {"name": assumed.name, "namespace": assumed.namespace, "uid": assumed.uid},
                    "target": {"apiVersion": "v1", "kind": "Node", "name": node}}
            await self.client.resource("v1", "pods", assumed.namespace).create_subresource(
                assumed.name, "binding", body)
        except ApiError as e:
            self.cache.forget(assumed.key)
            log.info("binding %s to %s rejected: %s", assumed.key, node, e)
            if not e.not_found:
                self.queue.retry_later(qp.info)
                self.recorder.event(assumed.pod, "Warning", "FailedScheduling", f"Binding rejected: {e}")
            return
        except PreBindError as e:
            self.cache.forget(assumed.key)
            log.info("binding %s to %s: %s", assumed.key, node, e)
            self.queue.retry_later(qp.info)
            self.recorder.event(assumed.pod, "Warning", "FailedScheduling", str(e))
            return
        except Exception as e:  # connection trouble: try again later
            self.cache.forget(assumed.key)
            log.warning("binding %s to %s failed: %s", assumed.key, node, e)
            self.queue.retry_later(qp.info)
            return
        finally:
            self._bind_slots.release()
        self.scheduled += 1
        log.info("Successfully assigned %s to %s", assumed.key, node)
        self.recorder.event(assumed.pod, "Normal", "Scheduled",
                            f"Successfully assigned {assumed.namespace}/{assumed.name} to {node}")

    # ---- failures ------------------------------------------------------------------------------

    def _failed(self, qp, message: str, plugins: set, nominate: str | None) -> None:
        info = qp.info
        log.info("unable to schedule pod %s: %s", info.key, message)
        self.queue.requeue_unschedulable(qp, plugins)
        self.recorder.event(info.pod, "Warning", "FailedScheduling", message)
        self._spawn(self._write_unschedulable(info, message, nominate))

    async def _write_unschedulable(self, info: PodInfo, message: str, nominate: str | None) -> None:
        status = info.pod.get("status") or {}
        current = next((c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"), None)
        patch: dict = {}
        if not (current and current.get("status") == "False" and current.get("reason") == "Unschedulable"
                and current.get("message") == message):
            patch["conditions"] = [{"type": "PodScheduled", "status": "False", "lastProbeTime": None,
                                    "lastTransitionTime": _now(), "reason": "Unschedulable", "message": message}]
        if nominate is not None and (status.get("nominatedNodeName") or "") != nominate:
            patch["nominatedNodeName"] = nominate or None
        if not patch:
            return
        try:
            await self.client.resource("v1", "pods", info.namespace).patch(
                info.name, {"status": patch}, patch_type="strategic", subresource="status")
        except ApiError as e:
            log.debug("could not record that %s is unschedulable: %s", info.key, e)

    # ---- preemption ------------------------------------------------------------------------------

    async def _preempt(self, preemptor: PodInfo, node: str, victims: list[PodInfo]) -> None:
        for victim in victims:
            api = self.client.resource("v1", "pods", victim.namespace)
            condition = {"type": "DisruptionTarget", "status": "True", "lastTransitionTime": _now(),
                         "reason": "PreemptionByScheduler",
                         "message": f"{DEFAULT_SCHEDULER}: preempting to accommodate a higher priority pod"}
            try:
                await api.patch(victim.name, {"status": {"conditions": [condition]}}, patch_type="strategic",
                                subresource="status")
                await api.delete(victim.name)
            except ApiError as e:
                if not e.not_found:
                    log.warning("preempting %s for %s failed: %s", victim.key, preemptor.key, e)
                continue
            log.info("preempted %s on %s for %s", victim.key, node, preemptor.key)
            self.recorder.event(victim.pod, "Normal", "Preempted",
                                f"Preempted by pod {preemptor.uid} on node {node}")
