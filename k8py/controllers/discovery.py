"""Which resources the API server serves, from its discovery documents.

The namespace controller (empty a namespace of everything) and the garbage
collector (follow ownerReferences of every kind) need the full list,
custom resources included, so they ask discovery rather than a fixed table.
Answers are cached briefly: CRDs come and go, but not every second.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from k8py.client import ApiError, Client

log = logging.getLogger("k8py.controllers.discovery")

CACHE_SECONDS = 10.0


@dataclass(frozen=True)
class APIResource:
    group_version: str
    plural: str
    kind: str
    namespaced: bool
    verbs: frozenset

    @property
    def group(self) -> str:
        return self.group_version.rpartition("/")[0] if "/" in self.group_version else ""


class Discovery:
    def __init__(self, client: Client):
        self.client = client
        self._cached: list[APIResource] = []
        self._stamp = -CACHE_SECONDS

    async def resources(self, refresh: bool = False) -> list[APIResource]:
        """Every top-level resource in each group's preferred version."""
        if refresh or time.monotonic() - self._stamp > CACHE_SECONDS:
            self._cached = await self._load()
            self._stamp = time.monotonic()
        return self._cached

    async def _load(self) -> list[APIResource]:
        versions = ["v1"]
        groups = await self.client.request("GET", "/apis")
        for group in groups.get("groups") or []:
            preferred = (group.get("preferredVersion") or {}).get("groupVersion")
            if preferred:
                versions.append(preferred)
        found: list[APIResource] = []
        for gv in versions:
            try:
                listing = await self.client.request("GET", "/api/v1" if gv == "v1" else f"/apis/{gv}")
            except ApiError as e:
                # An aggregated API whose backend is down must not blind us to everything else.
                if gv == "v1":
                    raise
                log.info("discovery of %s failed: %s", gv, e)
                continue
            for r in listing.get("resources") or []:
                if "/" in r["name"]:
                    continue  # subresources
                found.append(APIResource(gv, r["name"], r.get("kind", ""), bool(r.get("namespaced")),
                                         frozenset(r.get("verbs") or [])))
        return found

    async def deletable_namespaced(self) -> list[APIResource]:
        return [r for r in await self.resources() if r.namespaced and {"list", "delete"} <= r.verbs]

    async def by_kind(self, api_version: str, kind: str) -> APIResource | None:
        group = api_version.rpartition("/")[0] if "/" in api_version else ""
        matches = [r for r in await self.resources() if r.kind == kind and r.group == group]
        exact = [r for r in matches if r.group_version == api_version]
        if not (exact or matches):
            matches = [r for r in await self.resources(refresh=True) if r.kind == kind and r.group == group]
            exact = [r for r in matches if r.group_version == api_version]
        return (exact or matches or [None])[0]
