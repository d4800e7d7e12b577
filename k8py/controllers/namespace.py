"""The namespace controller: empties a namespace being deleted, then lets it go.

Deleting a namespace marks it Terminating (spec.finalizers holds
`kubernetes`). This controller deletes every namespaced object in it (every
resource discovery lists, custom resources included); once nothing is left
it removes the `kubernetes` finalizer through the `finalize` subresource,
and the API server deletes the namespace.
"""

from __future__ import annotations

import logging

from k8py.client import ApiError
from k8py.controllers.base import Controller
from k8py.controllers.discovery import Discovery

log = logging.getLogger("k8py.controllers.namespace")

FINALIZER = "kubernetes"
RESYNC_SECONDS = 2.0  # how soon a namespace still holding objects is looked at again


class NamespaceController(Controller):
    name = "namespace"
    workers = 2

    async def setup(self) -> None:
        self.discovery = Discovery(self.client)
        self.namespaces = self.ctx.informer("v1", "namespaces")
        self.namespaces.add_handler(on_add=self._maybe_enqueue, on_update=lambda old, new: self._maybe_enqueue(new))

    def _maybe_enqueue(self, ns: dict) -> None:
        if ns["metadata"].get("deletionTimestamp"):
            self.enqueue(ns)

    async def sync(self, key: str) -> None:
        ns = self.namespaces.get(key)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return
        if FINALIZER not in ((ns.get("spec") or {}).get("finalizers") or []):
            return
        remaining = await self._delete_content(key)
        if remaining:
            self.requeue_after(key, RESYNC_SECONDS)
            return
        await self._finalize(ns)

    async def _delete_content(self, namespace: str) -> int:
        """Delete what is left; returns how many objects still exist (some may be terminating)."""
        remaining = 0
        for resource in await self.discovery.deletable_namespaced():
            api = self.client.resource(resource.group_version, resource.plural, namespace)
            try:
                items = (await api.list()).get("items") or []
            except ApiError as e:
                if e.code in (404, 405):
                    continue
                raise
            remaining += len(items)
            for item in items:
                if item["metadata"].get("deletionTimestamp"):
                    continue
                try:
                    await api.delete(item["metadata"]["name"], propagation_policy="Background")
                except ApiError as e:
                    if e.code not in (404, 409):
                        log.warning("namespace %s: deleting %s/%s: %s", namespace, resource.plural,
                                    item["metadata"]["name"], e)
        return remaining

    async def _finalize(self, ns: dict) -> None:
        finalizers = [f for f in (ns.get("spec") or {}).get("finalizers") or [] if f != FINALIZER]
        body = {"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": ns["metadata"]["name"], "resourceVersion": ns["metadata"]["resourceVersion"]},
                "spec": {"finalizers": finalizers}}
        try:
            await self.client.request("PUT", f"/api/v1/namespaces/{ns['metadata']['name']}/finalize", body)
        except ApiError as e:
            if e.code != 404:
                raise
