"""The EndpointSlice mirroring controller: user-managed Endpoints copied to slices.

A Service without a selector has Endpoints written by its user; proxies and
DNS read slices, so each such Endpoints object is mirrored into slices
labelled as managed by `endpointslicemirroring-controller.k8s.io`. Endpoints
of Services with a selector are the Endpoints controller's, and an Endpoints
labelled `endpointslice.kubernetes.io/skip-mirror=true` is skipped, as upstream.
"""

from __future__ import annotations

import logging

from k8py.client import Client
from k8py.controllers import servicepods as sp
from k8py.controllers import sliceplan
from k8py.controllers.base import Controller
from k8py.controllers.endpoints import run as run_controller
from k8py.controllers.endpointslice import apply_plan, managed_slices, service_key_of_slice

log = logging.getLogger("k8py.controllers.endpointslice_mirroring")

MANAGED_BY = "endpointslicemirroring-controller.k8s.io"
SKIP_MIRROR_LABEL = "endpointslice.kubernetes.io/skip-mirror"
MAX_MIRRORED = 1000  # upstream's limit per Endpoints object
# Upstream does not copy these onto slices: they describe the Endpoints object itself.
NOT_MIRRORED_ANNOTATIONS = ("endpoints.kubernetes.io/last-change-trigger-time",
                            "kubectl.kubernetes.io/last-applied-configuration")


def should_mirror(endpoints: dict | None, service: dict | None) -> bool:
    if endpoints is None or service is None:
        return False
    if (endpoints["metadata"].get("labels") or {}).get(SKIP_MIRROR_LABEL) == "true":
        return False
    return not (service.get("spec") or {}).get("selector")


def mirrored_groups(endpoints: dict) -> list[sliceplan.Group]:
    entries = []
    for subset in endpoints.get("subsets") or []:
        ports = sorted(({k: v for k, v in p.items() if k in ("name", "port", "protocol", "appProtocol")}
                        for p in subset.get("ports") or []), key=lambda p: (p.get("name", ""), p.get("port")))
        for p in ports:
            p.setdefault("protocol", "TCP")
        for field, ready in (("addresses", True), ("notReadyAddresses", False)):
            for address in subset.get(field) or []:
                if len(entries) >= MAX_MIRRORED:
                    break
                endpoint = {"addresses": [address["ip"]], "conditions": {"ready": ready}}
                for name in ("hostname", "nodeName", "targetRef"):
                    if address.get(name):
                        endpoint[name] = address[name]
                try:
                    entries.append((sp.address_type(address["ip"]), ports, endpoint))
                except ValueError:
                    continue  # not an IP (validation should have said so): nothing a proxy could use
    return sliceplan.group_endpoints(entries)


def mirror_labels(endpoints: dict) -> dict:
    labels = dict(endpoints["metadata"].get("labels") or {})
    labels[sliceplan.SERVICE_NAME_LABEL] = endpoints["metadata"]["name"]
    labels[sliceplan.MANAGED_BY_LABEL] = MANAGED_BY
    return labels


def mirror_factory(endpoints: dict, labels: dict):
    meta = endpoints["metadata"]
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in NOT_MIRRORED_ANNOTATIONS}

    def new_slice(address_type: str, ports: list[dict], eps: list[dict]) -> dict:
        metadata = {"generateName": f"{meta['name']}-", "namespace": meta["namespace"], "labels": dict(labels),
                    "ownerReferences": [{"apiVersion": "v1", "kind": "Endpoints", "name": meta["name"],
                                         "uid": meta.get("uid", ""), "controller": True,
                                         "blockOwnerDeletion": True}]}
        if annotations:
            metadata["annotations"] = dict(annotations)
        return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": metadata,
                "addressType": address_type, "endpoints": eps, "ports": ports}
    return new_slice


def plan_for(endpoints: dict, existing: list[dict]) -> sliceplan.Plan:
    labels = mirror_labels(endpoints)
    groups = mirrored_groups(endpoints)
    result = sliceplan.plan(existing, groups, mirror_factory(endpoints, labels), labels)
    if not groups:  # upstream mirrors nothing for an empty Endpoints: no placeholder slice
        result.create.clear()
        result.delete.extend(result.update)
        result.update.clear()
    return result


class EndpointSliceMirroringController(Controller):
    name = "endpointslicemirroring"
    workers = 1
    event_source = "endpoint-slice-mirroring-controller"

    async def setup(self) -> None:
        self.tracker = sliceplan.SliceTracker()
        self.services = self.ctx.informer("v1", "services")
        self.endpoints = self.ctx.informer("v1", "endpoints")
        self.slices = self.ctx.informer("discovery.k8s.io/v1", "endpointslices")
        managed_slices(self.slices, MANAGED_BY)
        for informer in (self.services, self.endpoints):
            informer.add_handler(self.enqueue, lambda old, new: self.enqueue(new), self.enqueue)
        self.slices.add_handler(self._slice_changed, lambda old, new: self._slice_changed(new),
                                self._slice_changed)

    def _slice_changed(self, s: dict) -> None:
        if (s["metadata"].get("labels") or {}).get(sliceplan.MANAGED_BY_LABEL) == MANAGED_BY:
            for key in service_key_of_slice(s):
                self.enqueue(key)

    async def sync(self, key: str) -> None:
        namespace, _ = key.split("/", 1)
        endpoints = self.endpoints.get(key)
        existing = self.tracker.view(key, self.slices.by_index(f"service/{MANAGED_BY}", key))
        if not should_mirror(endpoints, self.services.get(key)):
            plan = sliceplan.Plan(delete=existing)
        else:
            plan = plan_for(endpoints, existing)
        if not plan.empty:
            await apply_plan(self.client, namespace, plan, None, self.tracker, key)


async def run(client: Client) -> None:
    await run_controller(client, EndpointSliceMirroringController)
