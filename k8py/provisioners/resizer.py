"""The external-resizer's part of a provisioner (kubernetes-csi/external-resizer's
controller, with RecoverVolumeExpansionFailure as in v1.32): it grows the
volumes its provisioner made when their Bound claim asks for more.

For a claim whose `spec.resources.requests.storage` exceeds `status.capacity`
and whose volume carries our `pv.kubernetes.io/provisioned-by`:
1. the claim's status says a controller resize is under way: condition
   `Resizing`, `allocatedResources.storage` = the request,
   `allocatedResourceStatuses.storage: ControllerResizeInProgress`; event
   `Resizing` "External resizer is resizing volume <pv>";
2. the volume's `spec.capacity.storage` becomes the request. A directory
   volume has no filesystem of its own to grow, so the recorded capacity is
   its size limit and no node-side step (FileSystemResizePending) is needed;
3. the claim's `status.capacity` becomes the request, the condition and the
   resize status go; event `VolumeResizeSuccessful` "Resize volume succeeded".
A failure is the `VolumeResizeFailed` event, `ControllerResizeFailed` on the
claim, and a retry with back-off.
"""

from __future__ import annotations

import datetime
import logging

from k8py.api.claim_size import needs_expansion, storage_value
from k8py.client import ApiError, EventRecorder

log = logging.getLogger("k8py.provisioners.resizer")

ANN_DYNAMICALLY_PROVISIONED = "pv.kubernetes.io/provisioned-by"
RESIZE_CONDITIONS = ("Resizing", "FileSystemResizePending")


def request_of(claim: dict) -> str:
    return (((claim.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage", "")


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _other_conditions(claim: dict) -> list[dict]:
    return [c for c in (claim.get("status") or {}).get("conditions") or [] if c.get("type") not in RESIZE_CONDITIONS]


class Resizer:
    def __init__(self, client, name: str, volumes):
        self.client = client
        self.name = name
        self.volumes = volumes  # the provisioner's PV informer
        self.pv_api = client.resource("v1", "persistentvolumes")
        self.recorder = EventRecorder(client, component=f"external-resizer {name}")

    def volume_for(self, claim: dict) -> dict | None:
        """The claim's volume when it is ours to resize."""
        volume = self.volumes.get(claim["spec"]["volumeName"])
        if volume is None:
            return None
        annotations = volume["metadata"].get("annotations") or {}
        ref = (volume.get("spec") or {}).get("claimRef") or {}
        if annotations.get(ANN_DYNAMICALLY_PROVISIONED) != self.name or ref.get("uid") != claim["metadata"]["uid"]:
            return None
        return volume

    async def sync(self, claim: dict) -> bool:
        """True when nothing is left to do; False to retry with back-off."""
        if not needs_expansion(claim):
            return True
        volume = self.volume_for(claim)
        if volume is None:
            return True
        size = request_of(claim)
        claims_api = self.client.resource("v1", "persistentvolumeclaims", claim["metadata"]["namespace"])
        name, pv_name = claim["metadata"]["name"], volume["metadata"]["name"]
        await claims_api.patch(name, {"status": {
            "conditions": _other_conditions(claim) + [{"type": "Resizing", "status": "True",
                                                       "lastProbeTime": None, "lastTransitionTime": _now()}],
            "allocatedResources": {"storage": size},
            "allocatedResourceStatuses": {"storage": "ControllerResizeInProgress"}}}, subresource="status")
        self.recorder.event(claim, "Normal", "Resizing", f"External resizer is resizing volume {pv_name}")
        try:
            if storage_value((volume.get("spec") or {}).get("capacity")) < storage_value({"storage": size}):
                await self.pv_api.patch(pv_name, {"spec": {"capacity": {"storage": size}}})
        except ApiError as e:
            message = f'resize volume "{pv_name}" by resizer "{self.name}" failed: {e.status.get("message", e)}'
            self.recorder.event(claim, "Warning", "VolumeResizeFailed", message)
            await claims_api.patch(name, {"status": {
                "conditions": _other_conditions(claim),
                "allocatedResourceStatuses": {"storage": "ControllerResizeFailed"}}}, subresource="status")
            return False
        await claims_api.patch(name, {"status": {
            "capacity": {"storage": size}, "conditions": _other_conditions(claim) or None,
            "allocatedResourceStatuses": None}}, subresource="status")
        log.info("resizer %s: volume %s of claim %s/%s is now %s", self.name, pv_name,
                 claim["metadata"]["namespace"], name, size)
        self.recorder.event(claim, "Normal", "VolumeResizeSuccessful", "Resize volume succeeded")
        return True
