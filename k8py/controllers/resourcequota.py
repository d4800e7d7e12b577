"""The resourcequota controller: keeps each ResourceQuota's status current.

status.hard mirrors spec.hard; status.used is what the namespace's objects
count against it (k8py.api.quota). Any change to a counted object re-syncs
the quotas of its namespace; a full resync every five minutes catches what
an event may have missed, as upstream's does.
"""

from __future__ import annotations

import logging

from k8py.api import quota as usage
from k8py.client import ApiError
from k8py.controllers.base import Controller, split_key

log = logging.getLogger("k8py.controllers.resourcequota")

# the kinds whose objects quotas count, as (group/version for the client, group, plural)
WATCHED = (("v1", "", "pods"), ("v1", "", "services"), ("v1", "", "secrets"), ("v1", "", "configmaps"),
           ("v1", "", "replicationcontrollers"), ("v1", "", "persistentvolumeclaims"),
           ("apps/v1", "apps", "replicasets"), ("apps/v1", "apps", "deployments"),
           ("apps/v1", "apps", "statefulsets"), ("batch/v1", "batch", "jobs"), ("batch/v1", "batch", "cronjobs"))
RESYNC_SECONDS = 300


class ResourceQuotaController(Controller):
    name = "resourcequota"
    workers = 2
    event_source = "resource-quota-controller"

    async def setup(self) -> None:
        self.quotas = self.ctx.informer("v1", "resourcequotas")
        self.quotas.add_handler(on_add=self.enqueue, on_update=lambda old, new: self.enqueue(new))
        self.counted = {}
        for group_version, group, plural in WATCHED:
            informer = self.ctx.informer(group_version, plural)
            self.counted[(group, plural)] = informer
            informer.add_handler(on_add=self._namespace_changed,
                                 on_update=lambda old, new: self._namespace_changed(new),
                                 on_delete=self._namespace_changed)
        self.counted[("", "resourcequotas")] = self.quotas
        self.quotas.add_handler(on_delete=self._namespace_changed)

    def _namespace_changed(self, obj: dict) -> None:
        namespace = (obj.get("metadata") or {}).get("namespace", "")
        for quota in self.quotas.by_index("namespace", namespace):
            self.enqueue(quota)

    async def sync(self, key: str) -> None:
        quota = self.quotas.get(key)
        if quota is None:
            return
        namespace, _ = split_key(key)
        objects = {kind: informer.by_index("namespace", namespace) for kind, informer in self.counted.items()}
        hard = dict((quota.get("spec") or {}).get("hard") or {})
        used = usage.total_usage(quota, objects)
        status = quota.get("status") or {}
        if status.get("hard") != hard or status.get("used") != used:
            updated = dict(quota, status={**status, "hard": hard, "used": used})
            try:
                await self.client.resource("v1", "resourcequotas", namespace).update_status(updated)
            except ApiError as err:
                if err.code == 404:
                    return
                raise  # a conflict: the informer brings the newer quota and we try again
        self.requeue_after(key, RESYNC_SECONDS)
