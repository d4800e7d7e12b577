"""The volume expand controller (upstream's persistentvolume-expander).

A Bound claim whose `spec.resources.requests.storage` grew past its
`status.capacity` is to be expanded. Upstream's controller expands volumes of
in-tree plugins that can grow; its plugin manager knows none of the volume
types k8py serves (hostPath, local, nfs), so, as upstream does for those and
for CSI volumes (the plugin lookup fails: a Warning), it only says an
external resizer has to do it: the Warning event `ExternalExpanding`
"waiting for an external controller to expand this PVC". k8py's
provisioners are that resizer for the volumes they made
(k8py/provisioners/resizer.py).
"""

from __future__ import annotations

from k8py.api.claim_size import needs_expansion, requested
from k8py.controllers.base import Controller

WAITING_MESSAGE = "waiting for an external controller to expand this PVC"


class ExpandController(Controller):
    name = "persistentvolume-expander"
    event_source = "volume_expand"
    workers = 1

    async def setup(self) -> None:
        self.claims = self.ctx.informer("v1", "persistentvolumeclaims")
        self.volumes = self.ctx.informer("v1", "persistentvolumes")
        self.claims.add_handler(on_add=self._claim_changed, on_update=self._claim_updated)

    def _claim_changed(self, claim: dict) -> None:
        if needs_expansion(claim):
            self.enqueue(claim)

    def _claim_updated(self, old: dict, new: dict) -> None:
        # Once per new request, not on every status write of the resize itself.
        if requested(new) != requested(old) or (needs_expansion(new) and not needs_expansion(old)):
            self._claim_changed(new)

    async def sync(self, key: str) -> None:
        claim = self.claims.get(key)
        if claim is None or not needs_expansion(claim):
            return
        volume = self.volumes.get(claim["spec"]["volumeName"])
        if volume is None:
            return
        ref = (volume.get("spec") or {}).get("claimRef") or {}
        if ref.get("uid") != claim["metadata"].get("uid"):
            return  # not (or no longer) this claim's volume
        self.recorder.event(claim, "Warning", "ExternalExpanding", WAITING_MESSAGE)
