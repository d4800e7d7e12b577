"""Storage object in-use protection: the pvc-protection and pv-protection controllers.

Claims and volumes get a finalizer when they are created (the admission in
k8py/apiserver/storage_protection.py; these controllers add it too, to
objects made before it existed). When one is deleted, the finalizer holds it
in Terminating while it is in use and these controllers remove it after:

- a claim is in use while a pod scheduled to a node mentions it (a generic
  ephemeral volume's claim: only until that pod is shut down); the pod cache
  saying "unused" is confirmed by a live list of the namespace's pods;
- a volume is in use while it is Bound.
"""

from __future__ import annotations

import copy

from k8py.client import ApiError
from k8py.controllers.base import Controller, split_key
from k8py.controllers.volume.pods import CLAIM_INDEX, is_shut_down, pod_claim_keys

PVC_PROTECTION_FINALIZER = "kubernetes.io/pvc-protection"
PV_PROTECTION_FINALIZER = "kubernetes.io/pv-protection"


def needs_finalizer(obj: dict, finalizer: str) -> bool:
    meta = obj.get("metadata") or {}
    return not meta.get("deletionTimestamp") and finalizer not in (meta.get("finalizers") or [])


def is_deletion_candidate(obj: dict, finalizer: str) -> bool:
    meta = obj.get("metadata") or {}
    return bool(meta.get("deletionTimestamp")) and finalizer in (meta.get("finalizers") or [])


def with_finalizer(obj: dict, finalizer: str, present: bool) -> dict:
    changed = copy.deepcopy(obj)
    finalizers = [f for f in changed["metadata"].get("finalizers") or [] if f != finalizer]
    if present:
        finalizers.append(finalizer)
    changed["metadata"]["finalizers"] = finalizers
    return changed


def pod_uses_claim(pod: dict, claim: dict) -> bool:
    """Upstream's rule: only scheduled pods count (the kubelet will not start a pod whose claim is
    being deleted); a plain claim volume counts as long as the pod exists."""
    if not (pod.get("spec") or {}).get("nodeName"):
        return False
    claim_name = claim["metadata"]["name"]
    for vol in pod["spec"].get("volumes") or []:
        if (vol.get("persistentVolumeClaim") or {}).get("claimName") == claim_name:
            return True
        if vol.get("ephemeral") is not None and not is_shut_down(pod) and \
                f"{pod['metadata']['name']}-{vol.get('name', '')}" == claim_name and _owned_by(claim, pod):
            return True
    return False


def _owned_by(claim: dict, pod: dict) -> bool:
    uid = pod["metadata"].get("uid")
    return any(ref.get("uid") == uid and ref.get("controller") for ref in claim["metadata"].get("ownerReferences") or [])


class PVCProtectionController(Controller):
    name = "persistentvolumeclaim-protection"
    workers = 2

    async def setup(self) -> None:
        self.claims = self.ctx.informer("v1", "persistentvolumeclaims")
        self.pods = self.ctx.informer("v1", "pods")
        self.ctx.ensure_index(self.pods, CLAIM_INDEX, pod_claim_keys)
        self.claims.add_handler(on_add=self._claim_changed, on_update=lambda old, new: self._claim_changed(new))
        self.pods.add_handler(on_update=self._pod_changed, on_delete=self._pod_deleted)

    def _claim_changed(self, claim: dict) -> None:
        if needs_finalizer(claim, PVC_PROTECTION_FINALIZER) or \
                is_deletion_candidate(claim, PVC_PROTECTION_FINALIZER):
            self.enqueue(claim)

    def _pod_changed(self, old: dict, new: dict) -> None:
        # A pod that got its node, finished or is going may change whether its claims are used.
        if (old.get("spec") or {}).get("nodeName") != (new.get("spec") or {}).get("nodeName") or \
                (old.get("status") or {}).get("phase") != (new.get("status") or {}).get("phase") or \
                bool(new["metadata"].get("deletionTimestamp")):
            self._pod_deleted(new)

    def _pod_deleted(self, pod: dict) -> None:
        for key in pod_claim_keys(pod):
            self.enqueue(key)

    async def sync(self, key: str) -> None:
        claim = self.claims.get(key)
        if claim is None:
            return
        api = self.client.resource("v1", "persistentvolumeclaims", claim["metadata"]["namespace"])
        if is_deletion_candidate(claim, PVC_PROTECTION_FINALIZER):
            if not await self._in_use(claim):
                await _update(api, with_finalizer(claim, PVC_PROTECTION_FINALIZER, False))
        elif needs_finalizer(claim, PVC_PROTECTION_FINALIZER):
            await _update(api, with_finalizer(claim, PVC_PROTECTION_FINALIZER, True))

    async def _in_use(self, claim: dict) -> bool:
        if any(pod_uses_claim(pod, claim) for pod in self.pods.by_index(CLAIM_INDEX, _key(claim))):
            return True
        # The cache may lag a pod that was just created: ask the API server before letting go.
        namespace, _ = split_key(_key(claim))
        listed = await self.client.resource("v1", "pods", namespace).list()
        return any(pod_uses_claim(pod, claim) for pod in listed.get("items") or [])



class PVProtectionController(Controller):
    name = "persistentvolume-protection"
    workers = 1

    async def setup(self) -> None:
        self.volumes = self.ctx.informer("v1", "persistentvolumes")
        self.volumes.add_handler(on_add=self._volume_changed, on_update=lambda old, new: self._volume_changed(new))

    def _volume_changed(self, volume: dict) -> None:
        if needs_finalizer(volume, PV_PROTECTION_FINALIZER) or \
                is_deletion_candidate(volume, PV_PROTECTION_FINALIZER):
            self.enqueue(volume)

    async def sync(self, key: str) -> None:
        volume = self.volumes.get(key)
        if volume is None:
            return
        api = self.client.resource("v1", "persistentvolumes")
        if is_deletion_candidate(volume, PV_PROTECTION_FINALIZER):
            if (volume.get("status") or {}).get("phase") != "Bound":
                await _update(api, with_finalizer(volume, PV_PROTECTION_FINALIZER, False))
        elif needs_finalizer(volume, PV_PROTECTION_FINALIZER):
            await _update(api, with_finalizer(volume, PV_PROTECTION_FINALIZER, True))


async def _update(api, obj: dict) -> None:
    try:
        await api.update(obj)
    except ApiError as e:
        if not e.not_found:
            raise


def _key(claim: dict) -> str:
    return f"{claim['metadata'].get('namespace', '')}/{claim['metadata']['name']}"
