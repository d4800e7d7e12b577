"""The Endpoints controller: keeps each selector Service's Endpoints object equal to its pods.

Ready pods go to `addresses`, the others to `notReadyAddresses` (all of them to
`addresses` with publishNotReadyAddresses). Pods are grouped into subsets by the
ports they resolve to, since a named targetPort may mean a different number
on each pod. Services without a selector are left alone: their Endpoints
belong to the user (and the mirroring controller copies them to slices).
"""

from __future__ import annotations

import ipaddress
import logging

from k8py.client import ApiError, Client, Informer
from k8py.controllers.base import Controller, ControllerContext
from k8py.controllers import servicepods as sp

log = logging.getLogger("k8py.controllers.endpoints")

MAX_ADDRESSES = 1000  # upstream truncates beyond this and says so in an annotation
OVER_CAPACITY_ANNOTATION = "endpoints.kubernetes.io/over-capacity"


def desired_subsets(service: dict, pods: list[dict]) -> list[dict]:
    publish_not_ready = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
    headless_without_ports = sp.is_headless(service) and not (service.get("spec") or {}).get("ports")
    by_ports: dict[tuple, dict] = {}
    for pod in sp.selected_pods(service, pods):
        if not sp.should_be_endpoint(pod, include_terminating=publish_not_ready):
            continue
        ports = [] if headless_without_ports else sp.endpoint_ports(service, pod)
        if not ports and not headless_without_ports:
            continue
        address = {"ip": sp.pod_ips(pod)[0], "targetRef": sp.target_ref(pod)}
        if (pod.get("spec") or {}).get("nodeName"):
            address["nodeName"] = pod["spec"]["nodeName"]
        hostname = sp.endpoint_hostname(pod, service)
        if hostname:
            address["hostname"] = hostname
        key = tuple((p.get("name", ""), p["port"], p["protocol"]) for p in ports)
        subset = by_ports.setdefault(key, {"addresses": [], "notReadyAddresses": [], "ports": ports})
        ready = publish_not_ready or sp.is_pod_ready(pod)
        subset["addresses" if ready else "notReadyAddresses"].append(address)
    subsets = []
    for key in sorted(by_ports):
        subset = by_ports[key]
        out = {}
        for field in ("addresses", "notReadyAddresses"):
            if subset[field]:
                out[field] = sorted(subset[field], key=lambda a: ipaddress.ip_address(a["ip"]))
        if subset["ports"]:
            out["ports"] = subset["ports"]
        subsets.append(out)
    return subsets


def truncate(subsets: list[dict]) -> tuple[list[dict], bool]:
    """Keep at most MAX_ADDRESSES addresses in all, ready ones first, as upstream does."""
    total = sum(len(s.get("addresses", [])) + len(s.get("notReadyAddresses", [])) for s in subsets)
    if total <= MAX_ADDRESSES:
        return subsets, False
    budget = MAX_ADDRESSES
    out = []
    for field in ("addresses", "notReadyAddresses"):
        for subset in subsets:
            take = subset.get(field, [])[:budget]
            budget -= len(take)
            if take:
                out.append({field: take, **({"ports": subset["ports"]} if subset.get("ports") else {})})
    return out, True


def desired_endpoints(service: dict, pods: list[dict], existing: dict | None, trigger_time: str | None) -> dict:
    meta = service["metadata"]
    subsets, over = truncate(desired_subsets(service, pods))
    annotations = dict((existing or {}).get("metadata", {}).get("annotations") or {})
    annotations.pop(OVER_CAPACITY_ANNOTATION, None)
    if over:
        annotations[OVER_CAPACITY_ANNOTATION] = "truncated"
    if trigger_time:
        annotations[sp.TRIGGER_TIME_ANNOTATION] = trigger_time
    endpoints = {"apiVersion": "v1", "kind": "Endpoints",
                 "metadata": {"name": meta["name"], "namespace": meta["namespace"],
                              "labels": sp.service_labels(service)},
                 "subsets": subsets}
    if annotations:
        endpoints["metadata"]["annotations"] = annotations
    if existing is not None:
        endpoints["metadata"]["resourceVersion"] = existing["metadata"].get("resourceVersion")
    return endpoints


def needs_update(existing: dict, desired: dict) -> bool:
    return (existing.get("subsets") or []) != desired["subsets"] \
        or (existing["metadata"].get("labels") or {}) != desired["metadata"]["labels"] \
        or OVER_CAPACITY_ANNOTATION in (existing["metadata"].get("annotations") or {}) \
        != (OVER_CAPACITY_ANNOTATION in (desired["metadata"].get("annotations") or {}))


class EndpointsController(Controller):
    name = "endpoint"
    workers = 2

    async def setup(self) -> None:
        self.trigger_times: dict[str, str] = {}  # service key -> when the change being synced happened
        self.services = self.ctx.informer("v1", "services")
        self.pods = self.ctx.informer("v1", "pods")
        self.endpoints = self.ctx.informer("v1", "endpoints")
        self.services.add_handler(self._service_changed, lambda old, new: self._service_changed(new),
                                  self._service_changed)
        self.pods.add_handler(self._pod_added, self._pod_updated, self._pod_added)
        self.endpoints.add_handler(on_delete=self._endpoints_deleted)

    # -- event handlers: map every change to the Services it affects

    def _enqueue(self, key: str) -> None:
        self.trigger_times.setdefault(key, sp.now_rfc3339())
        self.enqueue(key)

    def _service_changed(self, service: dict) -> None:
        self._enqueue(Informer.key(service))

    def _services_for(self, pod: dict) -> list[str]:
        return services_for_pod(self.services, pod)

    def _pod_added(self, pod: dict) -> None:
        for key in self._services_for(pod):
            self._enqueue(key)

    def _pod_updated(self, old: dict, new: dict) -> None:
        if not pod_change_matters(old, new):
            return
        for key in set(self._services_for(old)) | set(self._services_for(new)):
            self._enqueue(key)

    def _endpoints_deleted(self, endpoints: dict) -> None:
        key = Informer.key(endpoints)
        if self.services.get(key) is not None:
            self.enqueue(key)  # recreate what someone deleted

    # -- reconcile

    async def sync(self, key: str) -> None:
        namespace, name = key.split("/", 1)
        resource = self.client.resource("v1", "endpoints", namespace)
        service = self.services.get(key)
        if service is None:
            try:
                await resource.delete(name)
            except ApiError as e:
                if not e.not_found:
                    raise
            return
        if not sp.selects_pods(service):
            return
        existing = self.endpoints.get(key)
        pods = self.pods.by_index("namespace", namespace)
        desired = desired_endpoints(service, pods, existing, self.trigger_times.pop(key, None))
        if existing is None:
            try:
                await resource.create(desired)
            except ApiError as e:
                if not e.already_exists:
                    self.recorder.event(service, "Warning", "FailedToCreateEndpoint",
                                        f"Failed to create endpoint for service {key}: {e}")
                    raise
                self.queue.add_rate_limited(key)  # our cache is behind: try again with the stored object
        elif needs_update(existing, desired):
            try:
                await resource.update(desired)
            except ApiError as e:
                if not e.conflict:  # a conflict only means our cache was behind; the retry sorts it out
                    self.recorder.event(service, "Warning", "FailedToUpdateEndpoint",
                                        f"Failed to update endpoint {key}: {e}")
                raise


def services_for_pod(services: Informer, pod: dict) -> list[str]:
    """Keys of the Services in the pod's namespace whose selector matches it."""
    namespace = pod["metadata"].get("namespace", "")
    return [Informer.key(s) for s in services.by_index("namespace", namespace)
            if sp.selector_matches((s.get("spec") or {}).get("selector"), pod["metadata"].get("labels"))]


def pod_change_matters(old: dict, new: dict) -> bool:
    """Only status, spec (hostname, ports), labels and deletion change what a pod contributes."""
    return not (old.get("status") == new.get("status") and old.get("spec") == new.get("spec")
                and old["metadata"].get("labels") == new["metadata"].get("labels")
                and old["metadata"].get("deletionTimestamp") == new["metadata"].get("deletionTimestamp"))


async def run(client: Client, controller_class=None) -> None:
    """Run one controller on its own (outside the controller-manager), e.g. in tests."""
    ctx = ControllerContext(client)
    try:
        await (controller_class or EndpointsController)(ctx).run()
    finally:
        await ctx.stop()
