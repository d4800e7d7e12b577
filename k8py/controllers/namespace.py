"""The namespace controller: empties a namespace being deleted, then lets it go.

Deleting a namespace marks it Terminating (spec.finalizers holds
`kubernetes`). This controller deletes every namespaced object in it; once
nothing is left it removes the `kubernetes` finalizer through the `finalize`
subresource, and the API server deletes the namespace.

It runs in the server process and talks to the object stores directly, which
take the same admission and validation path as HTTP requests.
"""

from __future__ import annotations

import asyncio
import logging

from k8py.apimachinery import errors
from k8py.apiserver.objects import DeleteOptions

log = logging.getLogger("k8py.controllers.namespace")

FINALIZER = "kubernetes"
RESYNC_SECONDS = 2.0  # how soon a namespace still holding objects is looked at again


class NamespaceController:
    def __init__(self, api):
        self.api = api
        self.queue: asyncio.Queue[str] = asyncio.Queue()
        self.queued: set[str] = set()

    def enqueue(self, name: str) -> None:
        if name not in self.queued:
            self.queued.add(name)
            self.queue.put_nowait(name)

    def enqueue_terminating(self) -> None:
        namespaces = self.api.objects_for("", "v1", "namespaces")
        for cached in namespaces.cache.list(namespaces.resource.key_prefix())[0]:
            if cached.obj["metadata"].get("deletionTimestamp"):
                self.enqueue(cached.obj["metadata"]["name"])

    async def run(self) -> None:
        self.enqueue_terminating()
        while True:
            name = await self.queue.get()
            self.queued.discard(name)
            try:
                done = await self.sync(name)
            except Exception:
                log.exception("namespace %s: cleanup failed", name)
                done = False
            if not done:
                asyncio.get_running_loop().call_later(RESYNC_SECONDS, self.enqueue, name)

    async def sync(self, name: str) -> bool:
        """One pass; True when there is nothing more to do for this namespace."""
        ns = self.api.namespace(name)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return True
        await self._delete_content(name)
        if self._remaining(name):
            return False
        await self._finalize(name)
        return True

    def _namespaced_stores(self):
        for resource in self.api.registry.storage_resources():
            if resource.namespaced:
                yield resource, self.api.objects(resource)

    def _remaining(self, namespace: str) -> int:
        return sum(len(store.cache.list(resource.key_prefix(namespace))[0])
                   for resource, store in self._namespaced_stores())

    async def _delete_content(self, namespace: str) -> None:
        options = DeleteOptions(propagation="Background")
        for resource, store in self._namespaced_stores():
            for cached in store.cache.list(resource.key_prefix(namespace))[0]:
                if cached.obj["metadata"].get("deletionTimestamp"):
                    continue
                try:
                    await store.delete(namespace, cached.obj["metadata"]["name"], options)
                except errors.StatusError as err:
                    if err.code != 404:
                        log.warning("namespace %s: deleting %s/%s: %s", namespace, resource.plural,
                                    cached.obj["metadata"]["name"], err.message)

    async def _finalize(self, name: str) -> None:
        namespaces = self.api.objects_for("", "v1", "namespaces")

        def drop_finalizer(ns: dict) -> dict:
            finalizers = [f for f in (ns.get("spec") or {}).get("finalizers") or [] if f != FINALIZER]
            if finalizers:
                ns["spec"]["finalizers"] = finalizers
            else:
                ns.get("spec", {}).pop("finalizers", None)
            return ns
        try:
            await namespaces.guaranteed_update("", name, drop_finalizer, subresource="finalize")
        except errors.StatusError as err:
            if err.code != 404:
                raise
