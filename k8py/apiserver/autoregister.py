"""APIService autoregistration, as upstream's kube-aggregator does it.

Every group-version the server itself serves has a Local APIService (no
`spec.service`), named `<version>.<group>` (`v1.` for the core group), with
upstream's groupPriorityMinimum/versionPriority. Built-in ones are labelled
`kube-aggregator.kubernetes.io/automanaged: onstart`: they are created or
corrected once when the server starts, so one deleted afterwards comes back at
the next start (upstream's "sync on start"). Each served version of a
CustomResourceDefinition gets one labelled `automanaged: "true"`, with the low
priority upstream gives CRDs; those are kept continuously: recreated when
deleted, corrected when changed, removed when the CRD or version goes.
The aggregator marks Local APIServices Available (reason Local).
"""

from __future__ import annotations

import asyncio
import logging

from k8py.apimachinery import errors
from k8py.apiserver.objects import DeleteOptions

log = logging.getLogger("k8py.apiserver.autoregister")

MANAGED_LABEL = "kube-aggregator.kubernetes.io/automanaged"
ON_START, CONTINUOUSLY = "onstart", "true"
CRD_PRIORITY = (1000, 100)
SYNC_INTERVAL = 1.0

# (group, version) -> (groupPriorityMinimum, versionPriority), upstream's table for the
# group-versions k8py serves; a group-version missing here gets no APIService, as upstream.
PRIORITIES = {
    ("", "v1"): (18000, 1),
    ("apps", "v1"): (17800, 15),
    ("events.k8s.io", "v1"): (17750, 15),
    ("authentication.k8s.io", "v1"): (17700, 15),
    ("authorization.k8s.io", "v1"): (17600, 15),
    ("autoscaling", "v1"): (17500, 15),
    ("autoscaling", "v2"): (17500, 30),
    ("batch", "v1"): (17400, 15),
    ("certificates.k8s.io", "v1"): (17300, 15),
    ("networking.k8s.io", "v1"): (17200, 15),
    ("policy", "v1"): (17100, 15),
    ("rbac.authorization.k8s.io", "v1"): (17000, 15),
    ("storage.k8s.io", "v1"): (16800, 15),
    ("apiextensions.k8s.io", "v1"): (16700, 15),
    ("admissionregistration.k8s.io", "v1"): (16700, 15),
    ("scheduling.k8s.io", "v1"): (16600, 15),
    ("coordination.k8s.io", "v1"): (16500, 15),
    ("node.k8s.io", "v1"): (16300, 15),
    ("discovery.k8s.io", "v1"): (16200, 15),
    ("flowcontrol.apiserver.k8s.io", "v1"): (16100, 21),
}


def apiservice(group: str, version: str, priority: tuple[int, int], managed: str) -> dict:
    return {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
            "metadata": {"name": f"{version}.{group}", "labels": {MANAGED_LABEL: managed}},
            "spec": {"group": group, "version": version, "groupPriorityMinimum": priority[0],
                     "versionPriority": priority[1]}}


class AutoRegister:
    def __init__(self, api, builtin_group_versions):
        self.api = api
        self.builtin = {f"{v}.{g}": apiservice(g, v, PRIORITIES[(g, v)], ON_START)
                        for g, v in builtin_group_versions if (g, v) in PRIORITIES}

    @property
    def store(self):
        return self.api.objects_for("apiregistration.k8s.io", "v1", "apiservices")

    def current(self) -> dict[str, dict]:
        return {c.obj["metadata"]["name"]: c.obj for c in self.store.cache.list(self.store.resource.key_prefix())[0]}

    def crd_apiservices(self) -> dict[str, dict]:
        crds = self.api.objects_for("apiextensions.k8s.io", "v1", "customresourcedefinitions")
        wanted = {}
        for cached in crds.cache.list(crds.resource.key_prefix())[0]:
            spec = cached.obj.get("spec") or {}
            for version in spec.get("versions") or []:
                if version.get("served") and (spec.get("group"), version.get("name")) not in PRIORITIES:
                    service = apiservice(spec.get("group", ""), version.get("name", ""), CRD_PRIORITY, CONTINUOUSLY)
                    wanted[service["metadata"]["name"]] = service
        return wanted

    async def sync_on_start(self) -> None:
        """Create or correct each built-in APIService once; drop start-managed ones no longer served."""
        current = self.current()
        for name, desired in self.builtin.items():
            existing = current.get(name)
            if existing is None or _managed(existing):  # one made by hand is left alone
                await self._ensure(desired, existing)
        for name, obj in current.items():
            if _managed(obj) == ON_START and name not in self.builtin:
                await self._delete(obj)

    async def sync_crds(self) -> None:
        current, wanted = self.current(), self.crd_apiservices()
        for name, desired in wanted.items():
            existing = current.get(name)
            if existing is None or _managed(existing) == CONTINUOUSLY:
                await self._ensure(desired, existing)
        for name, obj in current.items():
            if _managed(obj) == CONTINUOUSLY and name not in wanted:
                await self._delete(obj)

    async def run(self) -> None:
        while True:
            try:
                await self.sync_crds()
            except Exception:
                log.exception("syncing CRD APIServices")
            await asyncio.sleep(SYNC_INTERVAL)

    async def _ensure(self, desired: dict, existing: dict | None) -> None:
        name = desired["metadata"]["name"]
        if existing is None:
            try:
                await self.store.create(_copy(desired), "")
            except errors.StatusError as e:
                if e.code != 409:
                    raise
            return
        if existing.get("spec") == desired["spec"] and _managed(existing) == _managed(desired):
            return

        def correct(obj: dict) -> dict:
            obj["spec"] = dict(desired["spec"])
            obj["metadata"].setdefault("labels", {})[MANAGED_LABEL] = _managed(desired)
            return obj
        try:
            await self.store.guaranteed_update("", name, correct)
        except errors.StatusError as e:
            if e.code != 404:
                raise

    async def _delete(self, obj: dict) -> None:
        try:
            await self.store.delete("", obj["metadata"]["name"], DeleteOptions(uid=obj["metadata"].get("uid")))
        except errors.StatusError as e:
            if e.code not in (404, 409):
                raise


def _managed(obj: dict) -> str | None:
    return ((obj.get("metadata") or {}).get("labels") or {}).get(MANAGED_LABEL)


def _copy(obj: dict) -> dict:
    return {**obj, "metadata": {**obj["metadata"], "labels": dict(obj["metadata"]["labels"])},
            "spec": dict(obj["spec"])}
