"""The garbage collector: deletes objects whose owners are gone, honouring the propagation policy.

It watches every resource discovery lists (events excepted) and keeps an
owner graph: for each object its ownerReferences, for each owner uid its
dependents. Three kinds of work, keyed by uid:

* attempt: an object with owners. If a live owner remains, references to
  owners that are gone (or waiting on foreground deletion) are removed;
  if none remains, the object is deleted (Background by default,
  Foreground when an owner waits on it and it has dependents itself).
* foreground: an owner deleted with propagationPolicy=Foreground carries
  the `foregroundDeletion` finalizer; its dependents are deleted, and once
  none with `blockOwnerDeletion: true` is left, the finalizer goes and the
  API server removes the owner.
* orphan: an owner deleted with propagationPolicy=Orphan carries the
  `orphan` finalizer; its dependents lose their reference to it, then the
  finalizer goes.

An owner missing from the graph is confirmed missing with a live GET before
anything is deleted (informers for different resources lag each other).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass, field

from k8py.client import ApiError, ShutDown
from k8py.controllers.base import Controller
from k8py.controllers.discovery import APIResource, Discovery

log = logging.getLogger("k8py.controllers.garbagecollector")

ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"
IGNORED = {("", "events"), ("events.k8s.io", "events")}
REDISCOVERY_SECONDS = 30.0
ABSENT_CACHE = 4096


@dataclass
class Node:
    resource: APIResource
    namespace: str
    name: str
    uid: str
    owners: list[dict] = field(default_factory=list)
    finalizers: tuple = ()
    deleting: bool = False

    @property
    def waits_for_dependents(self) -> bool:
        return self.deleting and FOREGROUND in self.finalizers


class GarbageCollector(Controller):
    name = "garbage-collector"
    workers = 5

    async def setup(self) -> None:
        self.discovery = Discovery(self.client)
        self.nodes: dict[str, Node] = {}
        self.dependents: dict[str, set[str]] = {}
        self.absent: OrderedDict[str, None] = OrderedDict()
        self.watched: set[tuple[str, str]] = set()
        while True:
            try:
                await self._watch_new_resources(start=False)
                return
            except ApiError as e:
                log.info("garbage collector: discovery failed (%s); retrying", e)
                await asyncio.sleep(1)

    async def started(self) -> None:
        self._rediscovery = asyncio.create_task(self._rediscover())

    async def _rediscover(self) -> None:
        """Custom resources appear later: watch them too."""
        while True:
            await asyncio.sleep(REDISCOVERY_SECONDS)
            try:
                await self._watch_new_resources(start=True)
            except ApiError as e:
                log.debug("garbage collector: rediscovery failed: %s", e)

    async def _watch_new_resources(self, start: bool) -> None:
        for resource in await self.discovery.resources(refresh=True):
            ident = (resource.group, resource.plural)
            if ident in self.watched or ident in IGNORED or not {"list", "watch", "delete"} <= resource.verbs:
                continue
            self.watched.add(ident)
            informer = self.ctx.informer(resource.group_version, resource.plural)
            informer.add_handler(on_add=lambda obj, r=resource: self._observe(r, obj),
                                 on_update=lambda old, new, r=resource: self._observe(r, new),
                                 on_delete=lambda obj, r=resource: self._forget(obj))
            if start:
                await informer.start()

    # -- the graph

    def _observe(self, resource: APIResource, obj: dict) -> None:
        meta = obj["metadata"]
        uid = meta.get("uid")
        if not uid:
            return
        owners = [ref for ref in meta.get("ownerReferences") or [] if ref.get("uid")]
        node = Node(resource, meta.get("namespace", ""), meta["name"], uid, owners,
                    tuple(meta.get("finalizers") or ()), bool(meta.get("deletionTimestamp")))
        previous = self.nodes.get(uid)
        self.nodes[uid] = node
        old_owner_uids = {r["uid"] for r in previous.owners} if previous else set()
        new_owner_uids = {r["uid"] for r in owners}
        for gone in old_owner_uids - new_owner_uids:
            self._unlink(gone, uid)
        for added in new_owner_uids - old_owner_uids:
            self.dependents.setdefault(added, set()).add(uid)
        self.absent.pop(uid, None)
        if owners and (previous is None or previous.owners != owners or previous.deleting != node.deleting
                       or previous.finalizers != node.finalizers):
            self.queue.add(("attempt", uid))
        if node.deleting and ORPHAN in node.finalizers:
            self.queue.add(("orphan", uid))
        if node.waits_for_dependents:
            self.queue.add(("foreground", uid))

    def _forget(self, obj: dict) -> None:
        uid = obj["metadata"].get("uid")
        node = self.nodes.pop(uid, None)
        if node is None:
            return
        self._remember_absent(uid)
        for ref in node.owners:
            self._unlink(ref["uid"], uid)
            owner = self.nodes.get(ref["uid"])
            if owner is not None and owner.waits_for_dependents:
                self.queue.add(("foreground", owner.uid))
        for dependent in self.dependents.get(uid, ()):
            self.queue.add(("attempt", dependent))

    def _unlink(self, owner_uid: str, dependent_uid: str) -> None:
        deps = self.dependents.get(owner_uid)
        if deps is not None:
            deps.discard(dependent_uid)
            if not deps:
                del self.dependents[owner_uid]

    def _remember_absent(self, uid: str) -> None:
        self.absent[uid] = None
        if len(self.absent) > ABSENT_CACHE:
            self.absent.popitem(last=False)

    # -- work

    async def _work(self) -> None:
        # Keys are (kind of work, uid) tuples rather than "ns/name": dispatch here.
        while True:
            try:
                item = await self.queue.get()
            except ShutDown:
                return
            try:
                kind, uid = item
                await {"attempt": self._attempt, "orphan": self._orphan, "foreground": self._foreground}[kind](uid)
            except asyncio.CancelledError:
                self.queue.done(item)
                raise
            except Exception as e:
                self.ctx.metrics.inc("controller_syncs_total", {"controller": self.name, "result": "error"})
                log.log(logging.WARNING if self.queue.num_requeues(item) >= 3 else logging.DEBUG,
                        "garbage collector: %s %s failed: %s", item[0], item[1], e,
                        exc_info=not isinstance(e, ApiError))
                self.queue.add_rate_limited(item)
            else:
                self.ctx.metrics.inc("controller_syncs_total", {"controller": self.name, "result": "success"})
                self.queue.forget(item)
            finally:
                self.queue.done(item)

    async def _owner_state(self, node: Node, ref: dict) -> str:
        """'solid' (alive), 'dangling' (gone) or 'waiting' (being deleted in the foreground)."""
        owner = self.nodes.get(ref["uid"])
        if owner is not None:
            return "waiting" if owner.waits_for_dependents else "solid"
        resource = await self.discovery.by_kind(ref.get("apiVersion", ""), ref.get("kind", ""))
        if resource is None:
            log.info("garbage collector: %s/%s has an owner of unknown kind %s %s; leaving it",
                     node.namespace, node.name, ref.get("apiVersion"), ref.get("kind"))
            return "solid"
        if resource.namespaced and not node.namespace:
            return "dangling"  # a cluster-scoped object cannot be owned by a namespaced one
        if ref["uid"] in self.absent:
            return "dangling"
        api = self.client.resource(resource.group_version, resource.plural,
                                   node.namespace if resource.namespaced else None)
        try:
            live = await api.get(ref.get("name", ""))
        except ApiError as e:
            if e.not_found:
                self._remember_absent(ref["uid"])
                return "dangling"
            raise
        if live["metadata"].get("uid") != ref["uid"]:
            self._remember_absent(ref["uid"])
            return "dangling"
        meta = live["metadata"]
        return "waiting" if meta.get("deletionTimestamp") and FOREGROUND in (meta.get("finalizers") or []) \
            else "solid"

    async def _attempt(self, uid: str) -> None:
        node = self.nodes.get(uid)
        if node is None or not node.owners:
            return
        if node.deleting and FOREGROUND not in node.finalizers:
            return  # already on its way out
        states = {ref["uid"]: await self._owner_state(node, ref) for ref in node.owners}
        solid = [u for u, s in states.items() if s == "solid"]
        if solid:
            stale = {u for u, s in states.items() if s != "solid"}
            if stale:
                await self._remove_owner_refs(node, stale)
            return
        if node.deleting:
            return
        waiting = any(s == "waiting" for s in states.values())
        if waiting and self.dependents.get(uid):
            policy = "Foreground"  # an owner waits on us: our own dependents must go first
        elif ORPHAN in node.finalizers:
            policy = "Orphan"
        elif FOREGROUND in node.finalizers:
            policy = "Foreground"
        else:
            policy = "Background"
        api = self.client.resource(node.resource.group_version, node.resource.plural, node.namespace or None)
        try:
            await api.delete(node.name, propagation_policy=policy, preconditions={"uid": uid})
        except ApiError as e:
            if e.not_found or e.conflict:
                return
            raise
        log.debug("garbage collector: deleted %s %s/%s (%s)", node.resource.kind, node.namespace, node.name, policy)

    async def _remove_owner_refs(self, node: Node, owner_uids: set[str]) -> None:
        remaining = [ref for ref in node.owners if ref["uid"] not in owner_uids]
        patch = {"metadata": {"ownerReferences": remaining or None, "uid": node.uid}}
        api = self.client.resource(node.resource.group_version, node.resource.plural, node.namespace or None)
        try:
            await api.patch(node.name, patch, patch_type="merge")
        except ApiError as e:
            if not (e.not_found or e.conflict):
                raise

    async def _orphan(self, uid: str) -> None:
        node = self.nodes.get(uid)
        if node is None or not node.deleting or ORPHAN not in node.finalizers:
            return
        for dependent_uid in list(self.dependents.get(uid, ())):
            dependent = self.nodes.get(dependent_uid)
            if dependent is not None:
                await self._remove_owner_refs(dependent, {uid})
        await self._remove_finalizer(node, ORPHAN)

    async def _foreground(self, uid: str) -> None:
        node = self.nodes.get(uid)
        if node is None or not node.waits_for_dependents:
            return
        blocking = False
        for dependent_uid in list(self.dependents.get(uid, ())):
            dependent = self.nodes.get(dependent_uid)
            if dependent is None:
                continue
            ref = next((r for r in dependent.owners if r["uid"] == uid), {})
            if ref.get("blockOwnerDeletion"):
                blocking = True
            self.queue.add(("attempt", dependent_uid))
        if not blocking:
            await self._remove_finalizer(node, FOREGROUND)

    async def _remove_finalizer(self, node: Node, finalizer: str) -> None:
        api = self.client.resource(node.resource.group_version, node.resource.plural, node.namespace or None)
        for _ in range(5):
            try:
                live = await api.get(node.name)
            except ApiError as e:
                if e.not_found:
                    return
                raise
            if live["metadata"].get("uid") != node.uid:
                return
            finalizers = live["metadata"].get("finalizers") or []
            if finalizer not in finalizers:
                return
            live["metadata"]["finalizers"] = [f for f in finalizers if f != finalizer]
            try:
                await api.update(live)
                return
            except ApiError as e:
                if e.not_found:
                    return
                if not e.conflict:
                    raise
        raise ApiError({"code": 409, "reason": "Conflict", "message": f"could not remove {finalizer} finalizer"})
