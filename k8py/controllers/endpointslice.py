"""The EndpointSlice controller: discovery.k8s.io/v1 slices for every selector Service.

Each pod backing the Service becomes one endpoint with conditions: `serving`
(the pod is Ready), `terminating` (it is being deleted) and `ready` (serving
and not terminating; always true with publishNotReadyAddresses). Terminating
pods stay in the slices so proxies can drain them. Slices hold at most 100
endpoints, one slice per address type and resolved port set.
"""

from __future__ import annotations

import logging

from k8py.client import ApiError, Client, Informer
from k8py.controllers import servicepods as sp
from k8py.controllers import sliceplan
from k8py.controllers.base import Controller
from k8py.controllers.endpoints import pod_change_matters, services_for_pod
from k8py.controllers.endpoints import run as run_controller

log = logging.getLogger("k8py.controllers.endpointslice")

MANAGED_BY = "endpointslice-controller.k8s.io"


def pod_endpoint(pod: dict, service: dict, ip: str) -> dict:
    publish_not_ready = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
    serving = publish_not_ready or sp.is_pod_ready(pod)
    terminating = bool(pod["metadata"].get("deletionTimestamp"))
    endpoint = {"addresses": [ip],
                "conditions": {"ready": publish_not_ready or (serving and not terminating),
                               "serving": serving, "terminating": terminating},
                "targetRef": sp.target_ref(pod)}
    if (pod.get("spec") or {}).get("nodeName"):
        endpoint["nodeName"] = pod["spec"]["nodeName"]
    hostname = sp.endpoint_hostname(pod, service)
    if hostname:
        endpoint["hostname"] = hostname
    return endpoint


def desired_groups(service: dict, pods: list[dict]) -> list[sliceplan.Group]:
    headless_without_ports = sp.is_headless(service) and not (service.get("spec") or {}).get("ports")
    entries = []
    for pod in sp.selected_pods(service, pods):
        if not sp.should_be_endpoint(pod, include_terminating=True):
            continue
        # A pod none of whose ports resolve still gets an endpoint, in a slice without ports, as upstream.
        ports = [] if headless_without_ports else sp.endpoint_ports(service, pod)
        for ip in sp.pod_ips(pod):
            entries.append((sp.address_type(ip), ports, pod_endpoint(pod, service, ip)))
    return sliceplan.group_endpoints(entries)


def slice_labels(service: dict) -> dict:
    return {**sp.service_labels(service), sliceplan.SERVICE_NAME_LABEL: service["metadata"]["name"],
            sliceplan.MANAGED_BY_LABEL: MANAGED_BY}


def slice_factory(service: dict, labels: dict):
    meta = service["metadata"]

    def new_slice(address_type: str, ports: list[dict], endpoints: list[dict]) -> dict:
        return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"generateName": f"{meta['name']}-", "namespace": meta["namespace"],
                             "labels": dict(labels),
                             "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": meta["name"],
                                                  "uid": meta.get("uid", ""), "controller": True,
                                                  "blockOwnerDeletion": True}]},
                "addressType": address_type, "endpoints": endpoints, "ports": ports}
    return new_slice


def plan_for(service: dict, pods: list[dict], existing: list[dict]) -> sliceplan.Plan:
    labels = slice_labels(service)
    return sliceplan.plan(existing, desired_groups(service, pods), slice_factory(service, labels), labels)


async def apply_plan(client: Client, namespace: str, plan: sliceplan.Plan, trigger_time: str | None,
                     tracker: sliceplan.SliceTracker, key: str) -> None:
    slices = client.resource("discovery.k8s.io/v1", "endpointslices", namespace)
    for body in plan.create + plan.update:
        if trigger_time:
            body["metadata"].setdefault("annotations", {})[sp.TRIGGER_TIME_ANNOTATION] = trigger_time
    for body in plan.create:
        created = await slices.create(body)
        tracker.record(key, created, created["metadata"]["name"])
    for body in plan.update:
        updated = await slices.update(body)
        tracker.record(key, updated, updated["metadata"]["name"])
    for body in plan.delete:
        try:
            await slices.delete(body["metadata"]["name"])
        except ApiError as e:
            if not e.not_found:
                raise
        tracker.record(key, None, body["metadata"]["name"])


def service_key_of_slice(s: dict) -> list[str]:
    name = (s["metadata"].get("labels") or {}).get(sliceplan.SERVICE_NAME_LABEL)
    return [f"{s['metadata'].get('namespace', '')}/{name}"] if name else []


def managed_slices(slices: Informer, managed_by: str) -> None:
    """Index slices by their Service, counting only those a given controller manages."""
    def index(s: dict) -> list[str]:
        if (s["metadata"].get("labels") or {}).get(sliceplan.MANAGED_BY_LABEL) != managed_by:
            return []
        return service_key_of_slice(s)
    slices.add_index(f"service/{managed_by}", index)


class EndpointSliceController(Controller):
    name = "endpointslice"
    workers = 2
    event_source = "endpoint-slice-controller"

    async def setup(self) -> None:
        self.trigger_times: dict[str, str] = {}
        self.tracker = sliceplan.SliceTracker()
        self.services = self.ctx.informer("v1", "services")
        self.pods = self.ctx.informer("v1", "pods")
        self.slices = self.ctx.informer("discovery.k8s.io/v1", "endpointslices")
        managed_slices(self.slices, MANAGED_BY)
        self.services.add_handler(self._service_changed, lambda old, new: self._service_changed(new),
                                  self._service_changed)
        self.pods.add_handler(self._pod_added, self._pod_updated, self._pod_added)
        self.slices.add_handler(self._slice_changed, lambda old, new: self._slice_changed(new),
                                self._slice_changed)

    def _enqueue(self, key: str) -> None:
        self.trigger_times.setdefault(key, sp.now_rfc3339())
        self.enqueue(key)

    def _service_changed(self, service: dict) -> None:
        self._enqueue(Informer.key(service))

    def _pod_added(self, pod: dict) -> None:
        for key in services_for_pod(self.services, pod):
            self._enqueue(key)

    def _pod_updated(self, old: dict, new: dict) -> None:
        if not pod_change_matters(old, new):
            return
        for key in set(services_for_pod(self.services, old)) | set(services_for_pod(self.services, new)):
            self._enqueue(key)

    def _slice_changed(self, s: dict) -> None:
        # Someone else edited or deleted one of our slices: put it back the way it should be.
        if (s["metadata"].get("labels") or {}).get(sliceplan.MANAGED_BY_LABEL) == MANAGED_BY:
            for key in service_key_of_slice(s):
                self.enqueue(key)

    async def sync(self, key: str) -> None:
        namespace, _ = key.split("/", 1)
        service = self.services.get(key)
        existing = self.tracker.view(key, self.slices.by_index(f"service/{MANAGED_BY}", key))
        trigger_time = self.trigger_times.pop(key, None)
        if service is None or not sp.selects_pods(service):
            # Owner references let the garbage collector do this too; we do not rely on it.
            if existing:
                await apply_plan(self.client, namespace, sliceplan.Plan(delete=existing), None, self.tracker, key)
            return
        plan = plan_for(service, self.pods.by_index("namespace", namespace), existing)
        if not plan.empty:
            try:
                await apply_plan(self.client, namespace, plan, trigger_time, self.tracker, key)
            except ApiError as e:
                if not e.conflict:
                    self.recorder.event(service, "Warning", "FailedToUpdateEndpointSlices",
                                        f"Error updating Endpoint Slices for Service {key}: {e}")
                raise


async def run(client: Client) -> None:
    await run_controller(client, EndpointSliceController)
