"""The PersistentVolume controller (upstream's persistentvolume-binder).

Binds claims to volumes and walks both through their phases, as upstream:

- a claim without `spec.volumeName` gets the best Available volume
  (matching.py); none found, it stays Pending with `FailedBinding` when it
  has no class, `WaitForFirstConsumer` when its class delays binding, and
  otherwise its class's provisioner is asked for one (an external
  provisioner: the claim is annotated with its name and `ExternalProvisioning`
  says so; a missing class or an in-tree name nobody serves: `ProvisioningFailed`);
- a claim naming a volume binds to it if it fits (else `VolumeMismatch`);
  a volume whose `claimRef` names a claim is kept for that claim;
- binding writes, in order, the volume's claimRef (+ `bound-by-controller`
  when the controller chose it), its phase Bound, the claim's volumeName
  (+ `bound-by-controller`, `bind-completed`), its phase Bound with the
  volume's capacity and access modes;
- a volume whose claim is gone is Released and reclaimed by its policy
  (reclaim.py: Retain keeps it, Recycle scrubs it with a pod, Delete removes
  it where a deleter exists, else Failed with `VolumeFailedDelete`);
- a bound claim whose volume is gone or taken is Lost.

Objects this controller wrote are kept until the informer catches up
(upstream's storeObjectUpdate), so the next sync never works on a version
older than its own last write. Everything is re-synced every 15 seconds,
upstream's `--pvclaimbinder-sync-period`, which retries waiting claims.
"""

from __future__ import annotations

import asyncio
import copy
import logging

from k8py.api import volume_matching as matching
from k8py.api.storageclass import claim_has_class, default_class
from k8py.client import ApiError
from k8py.controllers.base import Controller, without_managed_fields
from k8py.controllers.volume.available import AvailableVolumes
from k8py.controllers.volume.pods import CLAIM_INDEX, pod_claim_keys
from k8py.controllers.volume.reclaim import RECYCLER_NAMESPACE, RECYCLER_PREFIX, Reclaimer

log = logging.getLogger("k8py.controllers.volume.binder")

ANN_BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
ANN_BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
ANN_SELECTED_NODE = "volume.kubernetes.io/selected-node"
ANN_STORAGE_PROVISIONER = "volume.kubernetes.io/storage-provisioner"
ANN_BETA_STORAGE_PROVISIONER = "volume.beta.kubernetes.io/storage-provisioner"
ANN_DYNAMICALLY_PROVISIONED = "pv.kubernetes.io/provisioned-by"
RESYNC_SECONDS = 15.0
WAKE_DELAY = 0.1
CLASS_INDEX = "storage-class"
CLAIM_REF_INDEX = "claim-ref"

NO_CLASS_MESSAGE = "no persistent volumes available for this claim and no storage class is set"
WAIT_FOR_CONSUMER_MESSAGE = "waiting for first consumer to be created before binding"


def external_provisioning_message(provisioner: str) -> str:
    return (f"Waiting for a volume to be created either by the external provisioner '{provisioner}' or "
            "manually by the system administrator. If volume creation is delayed, please verify that the "
            "provisioner is running and correctly registered.")


def _meta(obj: dict) -> dict:
    return obj.setdefault("metadata", {})


def _annotations(obj: dict) -> dict:
    return (obj.get("metadata") or {}).get("annotations") or {}


def _set_annotation(obj: dict, key: str, value: str) -> None:
    meta = _meta(obj)
    if meta.get("annotations") is None:
        meta["annotations"] = {}
    meta["annotations"][key] = value


def _rv(obj: dict | None) -> int:
    try:
        return int((obj or {}).get("metadata", {}).get("resourceVersion") or 0)
    except ValueError:
        return 0


def claim_key(claim: dict) -> str:
    return f"{claim['metadata'].get('namespace', '')}/{claim['metadata']['name']}"


def claim_reference(claim: dict) -> dict:
    """What upstream's reference.GetReference makes of a claim, field order included."""
    meta = claim["metadata"]
    return {"kind": "PersistentVolumeClaim", "namespace": meta.get("namespace", ""), "name": meta["name"],
            "uid": meta.get("uid", ""), "apiVersion": "v1", "resourceVersion": meta.get("resourceVersion", "")}


class PersistentVolumeBinder(Controller):
    name = "persistentvolume-binder"
    event_source = "persistentvolume-controller"
    # Claims and volumes are synced side by side; a volume being bound by one worker is
    # invisible to the others' choices (self._binding), so they never race for it.
    workers = 32

    def __init__(self, ctx):
        super().__init__(ctx)
        self.pv_api = self.client.resource("v1", "persistentvolumes")
        # name or ns/name -> the object as this controller last wrote it
        self._written: dict[str, dict] = {}
        self._binding: set[str] = set()
        self._wake_pending = False
        self._resync_task: asyncio.Task | None = None
        self.reclaimer = Reclaimer(self)
        self.available = AvailableVolumes()

    # ---- informers and the two kinds of keys --------------------------------------
    # A claim's key is "namespace/name"; a volume's is its name, which has no "/".

    async def setup(self) -> None:
        self.volumes = self.ctx.informer("v1", "persistentvolumes")
        self.claims = self.ctx.informer("v1", "persistentvolumeclaims")
        self.classes = self.ctx.informer("storage.k8s.io/v1", "storageclasses")
        self.pods = self.ctx.informer("v1", "pods")
        self.ctx.ensure_index(self.pods, CLAIM_INDEX, pod_claim_keys)
        self.ctx.ensure_index(self.volumes, CLASS_INDEX, lambda v: [matching.volume_class(v)])
        self.ctx.ensure_index(self.volumes, CLAIM_REF_INDEX, _claim_ref_keys)
        self.volumes.add_handler(on_add=self._volume_changed, on_update=lambda old, new: self._volume_changed(new),
                                 on_delete=self._volume_deleted)
        self.claims.add_handler(on_add=self.enqueue, on_update=lambda old, new: self.enqueue(new),
                                on_delete=self._claim_deleted)
        # A new class (a new default, one a claim names) may serve waiting claims: no need to
        # wait for the resync.
        self.classes.add_handler(on_add=lambda _: self._wake_waiting_claims())
        self.pods.add_handler(on_update=lambda old, new: self.reclaimer.pod_changed(new),
                              on_delete=self.reclaimer.pod_changed)

    def _volume_changed(self, volume: dict) -> None:
        name = volume["metadata"]["name"]
        written = self._written.get(name)
        self.available.update(written if written is not None and _rv(written) > _rv(volume) else volume)
        self.enqueue(volume)

    def _volume_deleted(self, volume: dict) -> None:
        self._written.pop(volume["metadata"]["name"], None)
        self.available.remove(volume["metadata"]["name"])
        self.reclaimer.pod_changed({"metadata": {"namespace": RECYCLER_NAMESPACE,
                                                 "name": RECYCLER_PREFIX + volume["metadata"]["name"]}})
        ref = (volume.get("spec") or {}).get("claimRef")
        if ref:
            self.enqueue(f"{ref.get('namespace', '')}/{ref.get('name', '')}")

    def _claim_deleted(self, claim: dict) -> None:
        self._written.pop(claim_key(claim), None)
        name = (claim.get("spec") or {}).get("volumeName")
        if name:
            self.enqueue(name)

    async def started(self) -> None:
        self._resync_task = asyncio.create_task(self._resync(), name="persistentvolume-binder resync")

    async def run(self) -> None:
        try:
            await super().run()
        finally:
            if self._resync_task is not None:
                self._resync_task.cancel()
            await self.reclaimer.stop()

    async def _resync(self) -> None:
        while True:
            await asyncio.sleep(RESYNC_SECONDS)
            for key in self.volumes.keys() + self.claims.keys():
                self.enqueue(key)

    def _latest(self, informer, key: str) -> dict | None:
        cached, written = informer.get(key), self._written.get(key)
        if cached is None:
            return None
        if written is not None and _rv(written) > _rv(cached):
            return written
        if written is not None:
            self._written.pop(key, None)
        return cached

    def volume(self, name: str) -> dict | None:
        return self._latest(self.volumes, name)

    def claim(self, key: str) -> dict | None:
        return self._latest(self.claims, key)

    def candidates(self, claim: dict) -> list[dict]:
        """The volumes a claim could take: those of its class, and those pre-bound to it whatever
        their class (upstream takes a pre-bound volume before looking at classes)."""
        names = {v["metadata"]["name"] for v in self.volumes.by_index(CLASS_INDEX, matching.claim_class(claim))}
        names |= {v["metadata"]["name"] for v in self.volumes.by_index(CLAIM_REF_INDEX, claim_key(claim))}
        found = (self.volume(name) for name in sorted(names))
        return [v for v in found if v is not None]

    def best_volume(self, claim: dict, delay: bool) -> dict | None:
        """The volume an unbound claim should take (matching.find_best_match's choice), found
        through the index of available volumes instead of a scan of all. Raises SelectorError."""
        if self.volumes.by_index(CLAIM_REF_INDEX, claim_key(claim)):
            # Pre-bound volumes (rare) win within their access-mode group: the full rules.
            return matching.find_best_match(claim, self.candidates(claim), delay_binding=delay,
                                            excluded=self._binding)
        matching.claim_selector(claim)
        if delay:
            return None  # without a node only pre-bound volumes bind; the scheduler does the rest
        for name in self.available.candidates(claim):
            volume = None if name in self._binding else self.volume(name)
            if volume is not None and matching.find_best_match(claim, [volume], excluded=self._binding) is volume:
                return volume
        return None

    def _remember(self, key: str, obj: dict) -> dict:
        # Kept like the informer's copies, without managedFields: half an object's size,
        # copied on every change and sent back with every write for nothing.
        obj = without_managed_fields(obj)
        self._written[key] = obj
        if "/" not in key:
            self.available.update(obj)
        return obj

    async def sync(self, key: str) -> None:
        if "/" in key:
            claim = self.claim(key)
            if claim is not None:
                await self.sync_claim(claim)
        else:
            volume = self.volume(key)
            if volume is not None:
                await self.sync_volume(volume)

    # ---- writes --------------------------------------------------------------------

    async def update_volume(self, volume: dict) -> dict:
        return self._remember(volume["metadata"]["name"], await self.pv_api.update(volume))

    async def update_volume_phase(self, volume: dict, phase: str, message: str = "") -> dict:
        status = volume.get("status") or {}
        if status.get("phase") == phase:
            return volume
        changed = copy.deepcopy(volume)
        changed["status"] = dict(status, phase=phase)
        if message:
            changed["status"]["message"] = message
        else:
            changed["status"].pop("message", None)
        return self._remember(volume["metadata"]["name"], await self.pv_api.update_status(changed))

    async def update_volume_phase_with_event(self, volume: dict, phase: str, type_: str, reason: str,
                                             message: str) -> dict:
        if (volume.get("status") or {}).get("phase") == phase:
            return volume  # said once already
        updated = await self.update_volume_phase(volume, phase, message)
        self.recorder.event(updated, type_, reason, message)
        return updated

    def _claim_api(self, claim: dict):
        return self.client.resource("v1", "persistentvolumeclaims", claim["metadata"].get("namespace"))

    async def update_claim(self, claim: dict) -> dict:
        return self._remember(claim_key(claim), await self._claim_api(claim).update(claim))

    async def update_claim_status(self, claim: dict, phase: str, volume: dict | None) -> dict:
        status = claim.get("status") or {}
        new_status = {**status, "phase": phase}
        dirty = status.get("phase") != phase
        if volume is None:
            for field in ("accessModes", "capacity"):
                if new_status.pop(field, None) is not None:
                    dirty = True
        else:
            modes = (volume.get("spec") or {}).get("accessModes")
            if status.get("accessModes") != modes:
                new_status["accessModes"] = copy.deepcopy(modes)
                dirty = True
            # Capacity is copied only as the claim becomes Bound: a later difference can be on purpose.
            if status.get("phase") != phase:
                size = ((volume.get("spec") or {}).get("capacity") or {}).get("storage")
                have = (status.get("capacity") or {}).get("storage")
                if have is None or matching.storage_size({"storage": have}) != matching.storage_size({"storage": size}):
                    new_status["capacity"] = copy.deepcopy(volume["spec"]["capacity"])
                    dirty = True
        if not dirty:
            return claim  # (most syncs of a bound claim: nothing copied, nothing written)
        changed = {**claim, "status": copy.deepcopy(new_status)}
        return self._remember(claim_key(claim), await self._claim_api(claim).update_status(changed))

    async def update_claim_status_with_event(self, claim: dict, phase: str, type_: str, reason: str,
                                             message: str) -> None:
        if (claim.get("status") or {}).get("phase") == phase:
            return
        updated = await self.update_claim_status(claim, phase, None)
        self.recorder.event(updated, type_, reason, message)

    # ---- binding ---------------------------------------------------------------------

    async def bind(self, volume: dict, claim: dict) -> None:
        volume = await self._bind_volume_to_claim(volume, claim)
        volume = await self.update_volume_phase(volume, "Bound")
        claim = await self._bind_claim_to_volume(claim, volume)
        await self.update_claim_status(claim, "Bound", volume)

    async def _bind_volume_to_claim(self, volume: dict, claim: dict) -> dict:
        chosen_by_us = not matching.is_bound_to_claim(volume, claim)
        ref = (volume.get("spec") or {}).get("claimRef") or {}
        meta = claim["metadata"]
        new_ref = (ref.get("name"), ref.get("namespace"), ref.get("uid")) != (meta["name"], meta.get("namespace"),
                                                                             meta.get("uid"))
        new_annotation = chosen_by_us and ANN_BOUND_BY_CONTROLLER not in _annotations(volume)
        if not (new_ref or new_annotation):
            return volume
        changed = copy.deepcopy(volume)
        if new_ref:
            changed["spec"]["claimRef"] = claim_reference(claim)
        if new_annotation:
            _set_annotation(changed, ANN_BOUND_BY_CONTROLLER, "yes")
        return await self.update_volume(changed)

    async def _bind_claim_to_volume(self, claim: dict, volume: dict) -> dict:
        new_name = (claim.get("spec") or {}).get("volumeName") != volume["metadata"]["name"]
        if not new_name and ANN_BIND_COMPLETED in _annotations(claim):
            return claim
        changed = copy.deepcopy(claim)
        if new_name:
            changed["spec"]["volumeName"] = volume["metadata"]["name"]
            if ANN_BOUND_BY_CONTROLLER not in _annotations(changed):
                _set_annotation(changed, ANN_BOUND_BY_CONTROLLER, "yes")
        if ANN_BIND_COMPLETED not in _annotations(changed):
            _set_annotation(changed, ANN_BIND_COMPLETED, "yes")
        return await self.update_claim(changed)

    async def unbind_volume(self, volume: dict) -> dict:
        """Give a volume back to the pool: the controller's own binding is undone; a user's
        pre-binding is kept, only the uid of the claim it was bound to is cleared."""
        changed = copy.deepcopy(volume)
        if ANN_BOUND_BY_CONTROLLER in _annotations(changed):
            changed["spec"].pop("claimRef", None)
            annotations = changed["metadata"]["annotations"]
            annotations.pop(ANN_BOUND_BY_CONTROLLER)
            if not annotations:
                changed["metadata"].pop("annotations")
        else:
            changed["spec"]["claimRef"].pop("uid", None)
        updated = await self.update_volume(changed)
        return await self.update_volume_phase(updated, "Available")

    # ---- claims ------------------------------------------------------------------------

    async def sync_claim(self, claim: dict) -> None:
        if ANN_BIND_COMPLETED in _annotations(claim):
            await self._sync_bound_claim(claim)
        elif (claim.get("spec") or {}).get("volumeName"):
            await self._sync_prebound_claim(claim)
        else:
            await self._sync_unbound_claim(claim)

    def _class(self, claim: dict) -> dict | None:
        name = matching.claim_class(claim)
        return self.classes.get(name) if name else None

    def _delays_binding(self, claim: dict) -> bool:
        storage_class = self._class(claim)
        return storage_class is not None and storage_class.get("volumeBindingMode") == "WaitForFirstConsumer"

    async def _sync_unbound_claim(self, claim: dict) -> None:
        delay = self._delays_binding(claim)
        try:
            volume = self.best_volume(claim, delay)
        except matching.SelectorError as e:
            log.warning("claim %s: %s", claim_key(claim), e)
            return
        if volume is not None:
            name = volume["metadata"]["name"]
            self._binding.add(name)
            try:
                await self.bind(volume, claim)
            finally:
                self._binding.discard(name)
            return
        if await self._assign_default_class(claim):
            return  # the claim's update brings it back with its new class
        if delay and ANN_SELECTED_NODE not in _annotations(claim):
            self.recorder.event(claim, "Normal", "WaitForFirstConsumer", WAIT_FOR_CONSUMER_MESSAGE)
        elif matching.claim_class(claim):
            await self._provision(claim)
            return
        else:
            self.recorder.event(claim, "Normal", "FailedBinding", NO_CLASS_MESSAGE)
        await self.update_claim_status(claim, "Pending", None)

    async def _assign_default_class(self, claim: dict) -> bool:
        """Retroactive default class: a claim that names no class and found no volume gets
        the default class, if there is one now (it may have been made before any was)."""
        if claim_has_class(claim):
            return False
        chosen = default_class(self.classes.list())
        if chosen is None:
            return False
        changed = copy.deepcopy(claim)
        changed.setdefault("spec", {})["storageClassName"] = chosen["metadata"]["name"]
        await self.update_claim(changed)
        return True

    async def _provision(self, claim: dict) -> None:
        """No volume fits: the claim's class says who makes one. No provisioner runs in this
        controller (upstream's in-tree ones are gone); an external one is told by annotation."""
        class_name = matching.claim_class(claim)
        storage_class = self.classes.get(class_name)
        if storage_class is None:
            self.recorder.event(claim, "Warning", "ProvisioningFailed",
                                f'storageclass.storage.k8s.io "{class_name}" not found')
            return
        provisioner = storage_class.get("provisioner") or ""
        if provisioner.startswith("kubernetes.io/"):
            self.recorder.event(claim, "Warning", "ProvisioningFailed",
                                f"no volume plugin matched name: {provisioner}")
            return
        annotations = _annotations(claim)
        if annotations.get(ANN_STORAGE_PROVISIONER) != provisioner or \
                annotations.get(ANN_BETA_STORAGE_PROVISIONER) != provisioner:
            changed = copy.deepcopy(claim)
            _set_annotation(changed, ANN_BETA_STORAGE_PROVISIONER, provisioner)
            _set_annotation(changed, ANN_STORAGE_PROVISIONER, provisioner)
            claim = await self.update_claim(changed)
        self.recorder.event(claim, "Normal", "ExternalProvisioning", external_provisioning_message(provisioner))

    async def _sync_prebound_claim(self, claim: dict) -> None:
        """The user asked for a volume by name."""
        name = claim["spec"]["volumeName"]
        volume = self.volume(name)
        if volume is None:
            await self.update_claim_status(claim, "Pending", None)
            return
        if not (volume.get("spec") or {}).get("claimRef"):
            reason = matching.unsatisfied_reason(volume, claim)
            if reason is not None:
                self.recorder.event(claim, "Warning", "VolumeMismatch",
                                    f'Cannot bind to requested volume "{name}": {reason}')
                await self.update_claim_status(claim, "Pending", None)
            else:
                await self.bind(volume, claim)
        elif matching.is_bound_to_claim(volume, claim):
            await self.bind(volume, claim)
        elif ANN_BOUND_BY_CONTROLLER not in _annotations(claim):
            await self.update_claim_status(claim, "Pending", None)  # taken by another claim: wait
        else:
            raise RuntimeError(f"invalid binding of claim {claim_key(claim)!r} to volume {name!r}: "
                               "volume already claimed by another claim")

    async def _sync_bound_claim(self, claim: dict) -> None:
        name = (claim.get("spec") or {}).get("volumeName")
        if not name:
            await self.update_claim_status_with_event(
                claim, "Lost", "Warning", "ClaimLost",
                "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!")
            return
        volume = self.volume(name)
        if volume is None:
            await self.update_claim_status_with_event(
                claim, "Lost", "Warning", "ClaimLost",
                "Bound claim has lost its PersistentVolume. Data on the volume is lost!")
            return
        ref = (volume.get("spec") or {}).get("claimRef")
        if ref is None or ref.get("uid") == claim["metadata"].get("uid"):
            await self.bind(volume, claim)  # (re)asserts every part of the binding; no writes when whole
        else:
            await self.update_claim_status_with_event(
                claim, "Lost", "Warning", "ClaimMisbound",
                "Two claims are bound to the same volume, this one is bound incorrectly")

    # ---- volumes -----------------------------------------------------------------------

    def _wake_waiting_claims(self) -> None:
        """A volume just became Available: claims still waiting need not wait for the resync.
        Many volumes made at once wake the claims once."""
        if not self._wake_pending:
            self._wake_pending = True
            asyncio.get_running_loop().call_later(WAKE_DELAY, self._wake)

    def _wake(self) -> None:
        self._wake_pending = False
        for key in self.claims.keys():
            claim = self.claims.get(key)
            if claim is not None and ANN_BIND_COMPLETED not in _annotations(claim):
                self.enqueue(key)

    async def claim_of(self, volume: dict) -> dict | None:
        """The claim the volume's claimRef points at, if it still exists with the same uid.
        A miss in the cache is checked against the API server before a volume is released."""
        ref = volume["spec"]["claimRef"]
        key = f"{ref.get('namespace', '')}/{ref.get('name', '')}"
        claim = self.claim(key)
        if claim is None or claim["metadata"].get("uid") != ref.get("uid"):
            try:
                claim = await self.client.resource("v1", "persistentvolumeclaims",
                                                   ref.get("namespace")).get(ref.get("name", ""))
            except ApiError as e:
                if not e.not_found:
                    raise
                return None
        return claim if claim["metadata"].get("uid") == ref.get("uid") else None

    async def sync_volume(self, volume: dict) -> None:
        ref = (volume.get("spec") or {}).get("claimRef")
        if not ref or not ref.get("uid"):
            # Unused, or kept for a claim that has not bound yet (its sync will do it).
            if (volume.get("status") or {}).get("phase") != "Available":
                await self.update_volume_phase(volume, "Available")
                self._wake_waiting_claims()
            return
        claim = await self.claim_of(volume)
        if claim is None:
            # The claim is gone: release the volume (once) and reclaim it by its policy.
            if (volume.get("status") or {}).get("phase") not in ("Released", "Failed"):
                volume = await self.update_volume_phase(volume, "Released")
            await self.reclaimer.reclaim(volume)
            return
        claim_volume = (claim.get("spec") or {}).get("volumeName")
        if not claim_volume:
            if matching.volume_mode_mismatch(claim, volume):
                self.recorder.event(volume, "Warning", "VolumeMismatch",
                                    f'Cannot bind PersistentVolume to requested PersistentVolumeClaim '
                                    f'"{claim["metadata"]["name"]}" due to incompatible volumeMode.')
                self.recorder.event(claim, "Warning", "VolumeMismatch",
                                    f'Cannot bind PersistentVolume "{volume["metadata"]["name"]}" to requested '
                                    "PersistentVolumeClaim due to incompatible volumeMode.")
                return
            self.enqueue(claim)  # the claim's sync completes the binding
        elif claim_volume == volume["metadata"]["name"]:
            await self.update_volume_phase(volume, "Bound")
        elif ANN_DYNAMICALLY_PROVISIONED in _annotations(volume) and \
                volume["spec"].get("persistentVolumeReclaimPolicy") == "Delete":
            # Made for this claim, which went elsewhere: not needed any more.
            if (volume.get("status") or {}).get("phase") not in ("Released", "Failed"):
                volume = await self.update_volume_phase(volume, "Released")
            await self.reclaimer.reclaim(volume)
        elif ANN_BOUND_BY_CONTROLLER in _annotations(volume):
            await self.unbind_volume(volume)  # we chose it, the claim took another: undo
        # else: pre-bound by the user to a claim bound elsewhere; left alone, as upstream


def _claim_ref_keys(volume: dict) -> list[str]:
    ref = (volume.get("spec") or {}).get("claimRef")
    return [f"{ref.get('namespace', '')}/{ref.get('name', '')}"] if ref else []
