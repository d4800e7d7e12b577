"""The external-provisioner protocol (sig-storage-lib-external-provisioner's
ProvisionController), for one provisioner name.

Provisioning: a claim with no volume yet, annotated with our name (by the PV
controller, `volume.kubernetes.io/storage-provisioner` or the beta key), of a
class we serve, and for WaitForFirstConsumer classes with a node picked by the
scheduler (`volume.kubernetes.io/selected-node`), gets a PersistentVolume
named `pvc-<claim uid>` with `pv.kubernetes.io/provisioned-by`, the claim as
claimRef, the class's reclaimPolicy (default Delete) and mountOptions; the PV
controller then binds them. Events on the claim: `Provisioning`, then
`ProvisioningSucceeded` or `ProvisioningFailed` (retried with back-off; a
failed claim's selected-node is removed so the scheduler picks again).

Resizing: a Bound claim of a volume we made that asks for more storage gets
it (resizer.py, the external-resizer's protocol).

Deleting: a volume with our provisioned-by annotation, policy Delete and
phase Released has its storage removed by the provisioner, then the PV is
deleted (`VolumeFailedDelete` on the volume when that fails, retried).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass

from k8py.client import ApiError, EventRecorder, Informer
from k8py.client.workqueue import ShutDown, WorkQueue
from k8py.provisioners.resizer import Resizer

log = logging.getLogger("k8py.provisioners")

ANN_STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
ANN_BETA_STORAGE_PROVISIONER = "volume.beta.kubernetes.io/storage-provisioner"
ANN_SELECTED_NODE = "volume.kubernetes.io/selected-node"
ANN_DYNAMICALLY_PROVISIONED = "pv.kubernetes.io/provisioned-by"
BETA_STORAGE_CLASS = "volume.beta.kubernetes.io/storage-class"
RESYNC_SECONDS = 15.0
WORKERS = 4


class ProvisioningError(Exception):
    """Why a volume could not be made or removed (the event's message)."""


@dataclass
class ProvisionOptions:
    """What a provisioner is told (the library's ProvisionOptions)."""
    storage_class: dict
    claim: dict
    pv_name: str
    selected_node: dict | None

    @property
    def parameters(self) -> dict:
        return self.storage_class.get("parameters") or {}

    @property
    def requested_storage(self) -> str:
        return (((self.claim.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage", "")


def _annotations(obj: dict) -> dict:
    return (obj.get("metadata") or {}).get("annotations") or {}


def claim_class_name(claim: dict) -> str:
    annotations = _annotations(claim)
    if BETA_STORAGE_CLASS in annotations:
        return annotations[BETA_STORAGE_CLASS]
    return (claim.get("spec") or {}).get("storageClassName") or ""


def claim_key(claim: dict) -> str:
    return f"{claim['metadata'].get('namespace', '')}/{claim['metadata']['name']}"


def volume_name_for(claim: dict) -> str:
    return "pvc-" + claim["metadata"]["uid"]


def base_volume(options: ProvisionOptions, provisioner_name: str) -> dict:
    """The PV every provisioner returns, before it adds its volume source and affinity:
    pre-bound to the claim, with the class's policy, mount options and the requested size."""
    claim, storage_class = options.claim, options.storage_class
    meta = claim["metadata"]
    spec = {
        "capacity": {"storage": options.requested_storage},
        "accessModes": list((claim.get("spec") or {}).get("accessModes") or []),
        "persistentVolumeReclaimPolicy": storage_class.get("reclaimPolicy") or "Delete",
        "storageClassName": storage_class["metadata"]["name"],
        "claimRef": {"kind": "PersistentVolumeClaim", "namespace": meta.get("namespace", ""),
                     "name": meta["name"], "uid": meta["uid"], "apiVersion": "v1",
                     "resourceVersion": meta.get("resourceVersion", "")},
    }
    if (claim.get("spec") or {}).get("volumeMode"):
        spec["volumeMode"] = claim["spec"]["volumeMode"]
    if storage_class.get("mountOptions"):
        spec["mountOptions"] = list(storage_class["mountOptions"])
    return {"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": options.pv_name,
                         "annotations": {ANN_DYNAMICALLY_PROVISIONED: provisioner_name}},
            "spec": spec}


class ProvisionController:
    """Runs one provisioner (an object with `name`, `async provision(options) -> dict`
    returning the PV, and `async delete(volume, storage_class)`)."""

    def __init__(self, client, provisioner):
        self.client = client
        self.provisioner = provisioner
        self.name = provisioner.name
        self.recorder = EventRecorder(client, component=f"{self.name}_{socket.gethostname()}")
        self.claims = Informer(client, "v1", "persistentvolumeclaims")
        self.volumes = Informer(client, "v1", "persistentvolumes")
        self.classes = Informer(client, "storage.k8s.io/v1", "storageclasses")
        self.pv_api = client.resource("v1", "persistentvolumes")
        self.queue = WorkQueue(f"provisioner {self.name}", base_delay=1.0, max_delay=300.0)
        self.resizer = Resizer(client, self.name, self.volumes)

    async def run(self) -> None:
        self.claims.add_handler(on_add=self._claim_changed, on_update=lambda old, new: self._claim_changed(new))
        self.volumes.add_handler(on_add=self._volume_changed, on_update=lambda old, new: self._volume_changed(new))
        await asyncio.gather(self.classes.start(), self.claims.start(), self.volumes.start())
        workers = [asyncio.create_task(self._worker(), name=f"{self.name} worker") for _ in range(WORKERS)]
        resync = asyncio.create_task(self._resync(), name=f"{self.name} resync")
        log.info("provisioner %s started", self.name)
        try:
            await asyncio.gather(*workers, resync)
        finally:
            self.queue.shut_down()
            for task in [*workers, resync]:
                task.cancel()
            await asyncio.gather(*workers, resync, return_exceptions=True)
            for informer in (self.claims, self.volumes, self.classes):
                await informer.stop()
            await self.recorder.close()
            await self.resizer.recorder.close()

    def _claim_changed(self, claim: dict) -> None:
        if self._ours(claim):
            self.queue.add(("claim", claim_key(claim)))

    def _volume_changed(self, volume: dict) -> None:
        if _annotations(volume).get(ANN_DYNAMICALLY_PROVISIONED) == self.name:
            self.queue.add(("volume", volume["metadata"]["name"]))

    def _ours(self, claim: dict) -> bool:
        annotations = _annotations(claim)
        return self.name in (annotations.get(ANN_STORAGE_PROVISIONER), annotations.get(ANN_BETA_STORAGE_PROVISIONER))

    async def _resync(self) -> None:
        while True:
            await asyncio.sleep(RESYNC_SECONDS)
            for claim in self.claims.list():
                self._claim_changed(claim)
            for volume in self.volumes.list():
                self._volume_changed(volume)

    async def _worker(self) -> None:
        while True:
            try:
                item = await self.queue.get()
            except ShutDown:
                return
            try:
                kind, key = item
                done = await (self.sync_claim(key) if kind == "claim" else self.sync_volume(key))
                if done:
                    self.queue.forget(item)
                else:
                    self.queue.add_rate_limited(item)
            except Exception:
                log.exception("provisioner %s: syncing %s failed", self.name, item)
                self.queue.add_rate_limited(item)
            finally:
                self.queue.done(item)

    # ---- provisioning ---------------------------------------------------------------

    def _should_provision(self, claim: dict, storage_class: dict | None) -> bool:
        if (claim.get("spec") or {}).get("volumeName") or not self._ours(claim):
            return False
        if (claim.get("metadata") or {}).get("deletionTimestamp"):
            return False
        if storage_class is not None and storage_class.get("volumeBindingMode") == "WaitForFirstConsumer":
            return ANN_SELECTED_NODE in _annotations(claim)
        return True

    async def sync_claim(self, key: str) -> bool:
        """True when nothing is left to do for the claim; False to retry with back-off."""
        claim = self.claims.get(key)
        if claim is None:
            return True
        if (claim.get("spec") or {}).get("volumeName"):
            return await self.resizer.sync(claim)
        class_name = claim_class_name(claim)
        storage_class = self.classes.get(class_name)
        if not self._should_provision(claim, storage_class):
            return True
        pv_name = volume_name_for(claim)
        if self.volumes.get(pv_name) is not None:
            return True  # made already; the PV controller binds it
        if storage_class is None:
            self._failed(claim, class_name, f'storageclass.storage.k8s.io "{class_name}" not found')
            return False
        if storage_class.get("provisioner") != self.name:
            return True  # the class changed hands; not ours any more
        self.recorder.event(claim, "Normal", "Provisioning",
                            f'External provisioner is provisioning volume for claim "{key}"')
        try:
            node = await self._selected_node(claim)
            volume = await self.provisioner.provision(ProvisionOptions(storage_class, claim, pv_name, node))
        except ProvisioningError as e:
            self._failed(claim, class_name, str(e))
            await self._reschedule(claim)
            return False
        try:
            await self.pv_api.create(volume)
        except ApiError as e:
            if not e.already_exists:
                # No PV, so no storage either: undo it, as the library does, rather than orphan it.
                self._failed(claim, class_name, str(e))
                try:
                    await self.provisioner.delete(volume, storage_class)
                except ProvisioningError as cleanup:
                    log.warning("provisioner %s: cleaning up after %s failed: %s", self.name, pv_name, cleanup)
                return False
        log.info("provisioner %s: volume %s made for claim %s", self.name, pv_name, key)
        self.recorder.event(claim, "Normal", "ProvisioningSucceeded", f"Successfully provisioned volume {pv_name}")
        return True

    def _failed(self, claim: dict, class_name: str, message: str) -> None:
        self.recorder.event(claim, "Warning", "ProvisioningFailed",
                            f'failed to provision volume with StorageClass "{class_name}": {message}')

    async def _reschedule(self, claim: dict) -> None:
        """The volume can't be made on the node the scheduler chose: take the choice back
        (the library's rescheduleProvisioning) so the scheduler may choose again."""
        if ANN_SELECTED_NODE not in _annotations(claim):
            return
        meta = claim["metadata"]
        try:
            await self.client.resource("v1", "persistentvolumeclaims", meta["namespace"]).patch(
                meta["name"], {"metadata": {"annotations": {ANN_SELECTED_NODE: None}}})
        except ApiError as e:
            if not e.not_found:
                log.warning("provisioner %s: could not reset the selected node of %s: %s", self.name,
                            claim_key(claim), e)

    async def _selected_node(self, claim: dict) -> dict | None:
        name = _annotations(claim).get(ANN_SELECTED_NODE)
        if not name:
            return None
        try:
            return await self.client.resource("v1", "nodes").get(name)
        except ApiError as e:
            raise ProvisioningError(f"failed to get target node: {e}") from None

    # ---- deleting -----------------------------------------------------------------------

    def _should_delete(self, volume: dict) -> bool:
        return (_annotations(volume).get(ANN_DYNAMICALLY_PROVISIONED) == self.name
                and not volume["metadata"].get("deletionTimestamp")  # being deleted already
                and (volume.get("status") or {}).get("phase") == "Released"
                and (volume.get("spec") or {}).get("persistentVolumeReclaimPolicy") == "Delete")

    async def sync_volume(self, name: str) -> bool:
        volume = self.volumes.get(name)
        if volume is None or not self._should_delete(volume):
            return True
        storage_class = self.classes.get((volume.get("spec") or {}).get("storageClassName") or "")
        try:
            await self.provisioner.delete(volume, storage_class)
        except ProvisioningError as e:
            self.recorder.event(volume, "Warning", "VolumeFailedDelete", str(e))
            return False
        try:
            await self.pv_api.delete(name)
        except ApiError as e:
            if not e.not_found:
                raise
        log.info("provisioner %s: volume %s deleted", self.name, name)
        return True

