"""Reclaiming a Released volume by its persistentVolumeReclaimPolicy, as upstream's binder does.

- Retain: nothing; the volume stays Released (and is never bound again) until an
  administrator removes its claimRef.
- Recycle (hostPath and nfs only): a pod `recycler-for-<volume>` in the default
  namespace mounts the volume at /scrub and empties it; on success the volume
  is unbound and Available again (`VolumeRecycled`), on failure it is Failed
  (`VolumeFailedRecycle`). The pod's own events are repeated on the volume as
  "Recycler pod: ...". A volume a pod still uses is not touched.
- Delete: the deleter of the volume's plugin removes the storage, then the PV
  is deleted. Of upstream's in-tree deleters only hostPath is left, and it
  removes only paths under /tmp; a volume made by an external provisioner is
  left to it. Anything else is Failed with `VolumeFailedDelete`.

Recycling and deleting run in the background, one operation per volume at a
time, and a failed one is retried no sooner than an exponential back-off
allows (500 ms doubling to about 2 minutes, upstream's goroutinemap).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import shutil
import time

from k8py.api import volume_matching as matching
from k8py.client import ApiError
from k8py.controllers.volume.pods import CLAIM_INDEX, is_terminated

log = logging.getLogger("k8py.controllers.volume.reclaim")

ANN_DYNAMICALLY_PROVISIONED = "pv.kubernetes.io/provisioned-by"
RECYCLER_NAMESPACE = "default"
RECYCLER_PREFIX = "recycler-for-"
RECYCLER_IMAGE = "busybox"
RECYCLER_SCRIPT = 'test -e /scrub && rm -rf /scrub/..?* /scrub/.[!.]* /scrub/*  && test -z "$(ls -A /scrub)" || exit 1'
# (minimum seconds, seconds per GiB) a recycler pod may run, upstream's controller defaults
RECYCLER_TIMEOUTS = {"hostPath": (60, 30), "nfs": (300, 30)}
HOST_PATH_DELETABLE = re.compile("/tmp/.+")
BACKOFF_INITIAL, BACKOFF_MAX = 0.5, 122.0
GIB = 1024 ** 3


class ReclaimError(Exception):
    pass


class VolumeGone(Exception):
    """The volume was deleted while it was being recycled: nothing left to do."""


def recycler_timeout(volume: dict, source: str) -> int:
    minimum, per_gib = RECYCLER_TIMEOUTS[source]
    return max(minimum, int(matching.capacity(volume) // GIB) * per_gib)


def recycler_pod(volume: dict) -> dict:
    """The pod that scrubs a hostPath or nfs volume (upstream's recycler template)."""
    spec = volume["spec"]
    source = "hostPath" if spec.get("hostPath") else "nfs"
    if source == "hostPath":
        volume_source = {"hostPath": {"path": spec["hostPath"]["path"]}}
    else:
        volume_source = {"nfs": {"server": spec["nfs"].get("server", ""), "path": spec["nfs"].get("path", "")}}
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": RECYCLER_PREFIX + volume["metadata"]["name"], "namespace": RECYCLER_NAMESPACE},
        "spec": {
            "activeDeadlineSeconds": recycler_timeout(volume, source),
            "restartPolicy": "Never",
            "volumes": [{"name": "vol", **volume_source}],
            "containers": [{
                "name": "pv-recycler", "image": RECYCLER_IMAGE, "command": ["/bin/sh"],
                "args": ["-c", RECYCLER_SCRIPT],
                "volumeMounts": [{"name": "vol", "mountPath": "/scrub"}],
            }],
        },
    }


class Reclaimer:
    def __init__(self, binder):
        self.binder = binder
        self.client = binder.client
        self._running: dict[str, asyncio.Task] = {}
        self._backoff: dict[str, tuple[float, float]] = {}   # volume -> (delay, not before)
        self._pod_changes: dict[str, asyncio.Event] = {}     # recycler pod name -> set on any change

    async def stop(self) -> None:
        for task in self._running.values():
            task.cancel()
        await asyncio.gather(*self._running.values(), return_exceptions=True)
        self._running.clear()

    def pod_changed(self, pod: dict, *_ignored) -> None:
        meta = pod.get("metadata") or {}
        if meta.get("namespace") == RECYCLER_NAMESPACE and meta.get("name") in self._pod_changes:
            self._pod_changes[meta["name"]].set()

    async def reclaim(self, volume: dict) -> None:
        policy = volume["spec"].get("persistentVolumeReclaimPolicy")
        if policy == "Retain":
            return
        if policy == "Recycle":
            self._schedule(volume["metadata"]["name"], self._recycle)
        elif policy == "Delete":
            self._schedule(volume["metadata"]["name"], self._delete)
        else:
            await self.binder.update_volume_phase_with_event(
                volume, "Failed", "Warning", "VolumeUnknownReclaimPolicy",
                "Volume has unrecognized PersistentVolumeReclaimPolicy")

    def _schedule(self, name: str, operation) -> None:
        task = self._running.get(name)
        if task is not None and not task.done():
            return
        delay, not_before = self._backoff.get(name, (0.0, 0.0))
        if time.monotonic() < not_before:
            return
        self._running[name] = asyncio.create_task(self._run(name, operation, delay), name=f"reclaim {name}")

    async def _run(self, name: str, operation, delay: float) -> None:
        try:
            ok = await operation(name)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("reclaiming volume %s failed", name)
            ok = False
        if ok:
            self._backoff.pop(name, None)
        else:
            delay = min(BACKOFF_MAX, delay * 2 if delay else BACKOFF_INITIAL)
            self._backoff[name] = (delay, time.monotonic() + delay)
        self._running.pop(name, None)

    async def _fresh_released(self, name: str) -> dict | None:
        """The volume as the API server has it now, if it still needs reclaiming."""
        try:
            volume = await self.binder.pv_api.get(name)
        except ApiError as e:
            if e.not_found:
                return None
            raise
        ref = (volume.get("spec") or {}).get("claimRef")
        if not ref or not ref.get("uid"):
            return None
        if await self.binder.claim_of(volume) is not None:
            return None
        return volume

    def _pods_using(self, volume: dict) -> list[str]:
        ref = volume["spec"]["claimRef"]
        pods = self.binder.pods.by_index(CLAIM_INDEX, f"{ref.get('namespace', '')}/{ref.get('name', '')}")
        return sorted(f"{p['metadata'].get('namespace')}/{p['metadata']['name']}" for p in pods
                      if not is_terminated(p))

    # ---- Recycle ------------------------------------------------------------------------

    async def _recycle(self, name: str) -> bool:
        volume = await self._fresh_released(name)
        if volume is None:
            return True
        users = self._pods_using(volume)
        if users:
            self.binder.recorder.event(volume, "Normal", "VolumeFailedRecycle",
                                       f"Volume is used by pods: {','.join(users)}")
            return False
        if not (volume["spec"].get("hostPath") or volume["spec"].get("nfs")):
            await self.binder.update_volume_phase_with_event(volume, "Failed", "Warning", "VolumeFailedRecycle",
                                                             "No recycler plugin found for the volume!")
            return False
        try:
            await self._run_recycler_pod(volume)
        except VolumeGone:
            return True
        except ReclaimError as e:
            await self.binder.update_volume_phase_with_event(volume, "Failed", "Warning", "VolumeFailedRecycle",
                                                             f"Recycle failed: {e}")
            return False
        self.binder.recorder.event(volume, "Normal", "VolumeRecycled", "Volume recycled")
        await self.binder.unbind_volume(volume)
        return True

    async def _run_recycler_pod(self, volume: dict) -> None:
        pod = recycler_pod(volume)
        name = pod["metadata"]["name"]
        pods = self.client.resource("v1", "pods", RECYCLER_NAMESPACE)
        changed = self._pod_changes.setdefault(name, asyncio.Event())
        try:
            try:
                await pods.create(pod)
            except ApiError as e:
                if not e.already_exists:
                    raise ReclaimError(f"unexpected error creating recycler pod: {e}") from None
                # One left from an earlier try (the controller restarted): follow it to its end.
            phase, message = await self._wait_finished(volume, name, pod["spec"]["activeDeadlineSeconds"],
                                                       changed)
            await self._repeat_pod_events(volume, name)
            if phase == "Failed":
                raise ReclaimError(f"pod failed, pod.Status.Message {json.dumps(message)}")  # Go's %q
        finally:
            self._pod_changes.pop(name, None)
            try:
                await pods.delete(name)
            except ApiError as e:
                if not e.not_found:
                    log.warning("could not delete recycler pod %s: %s", name, e)

    async def _wait_finished(self, volume: dict, name: str, deadline_seconds: int,
                             changed: asyncio.Event) -> tuple[str, str]:
        # The kubelet enforces activeDeadlineSeconds; the extra minute covers a pod no node runs.
        give_up = time.monotonic() + deadline_seconds + 60
        key = f"{RECYCLER_NAMESPACE}/{name}"
        uid = volume["metadata"].get("uid")
        while True:
            current = self.binder.volumes.get(volume["metadata"]["name"])
            if current is None or current["metadata"].get("uid") != uid:
                raise VolumeGone()
            pod = self.binder.pods.get(key)
            status = (pod or {}).get("status") or {}
            if status.get("phase") in ("Succeeded", "Failed"):
                return status["phase"], status.get("message", "")
            left = give_up - time.monotonic()
            if left <= 0:
                raise ReclaimError("timed out waiting for the recycler pod to finish")
            changed.clear()
            try:
                await asyncio.wait_for(changed.wait(), timeout=min(left, 5.0))
            except asyncio.TimeoutError:
                pass

    async def _repeat_pod_events(self, volume: dict, pod_name: str) -> None:
        # A watch without a resourceVersion starts with the events there are now (as ADDED) and
        # ends after its timeout: upstream's persistent-volume-binder role may watch events, not list them.
        found = []
        try:
            async for kind, event in self.client.resource("v1", "events", RECYCLER_NAMESPACE).watch(
                    timeout_seconds=1, bookmarks=False,
                    field_selector=f"involvedObject.kind=Pod,involvedObject.name={pod_name}"):
                if kind == "ADDED":
                    found.append(event)
        except ApiError as e:
            log.warning("recycler pod events for %s: %s", pod_name, e)
            return
        items = sorted(found, key=lambda ev: ev.get("firstTimestamp") or ev.get("eventTime") or "")
        for event in items:
            self.binder.recorder.event(volume, event.get("type") or "Normal", "RecyclerPod",
                                       f"Recycler pod: {event.get('message', '')}")

    # ---- Delete -------------------------------------------------------------------------

    async def _delete(self, name: str) -> bool:
        volume = await self._fresh_released(name)
        if volume is None:
            return True
        try:
            deleted = await self._delete_storage(volume)
        except ReclaimError as e:
            await self.binder.update_volume_phase_with_event(volume, "Failed", "Warning", "VolumeFailedDelete",
                                                             str(e))
            return False
        if not deleted:
            return True  # an external provisioner deletes what it made
        try:
            await self.binder.pv_api.delete(name)
        except ApiError as e:
            if not e.not_found:
                raise
        return True

    async def _delete_storage(self, volume: dict) -> bool:
        """Remove the volume's storage; False when someone else (its external provisioner) does."""
        provisioner = ((volume.get("metadata") or {}).get("annotations") or {}).get(ANN_DYNAMICALLY_PROVISIONED)
        if provisioner and provisioner != "kubernetes.io/host-path":
            if not provisioner.startswith("kubernetes.io/"):
                return False
            raise ReclaimError(f"no volume plugin matched name: {provisioner}")
        host_path = volume["spec"].get("hostPath")
        if not host_path:
            raise ReclaimError(f'error getting deleter volume plugin for volume "{volume["metadata"]["name"]}": '
                               "no deletable volume plugin matched")
        path = host_path.get("path", "")
        if not HOST_PATH_DELETABLE.search(path):
            raise ReclaimError(f"host_path deleter only supports /tmp/.+ but received provided {path}")
        try:
            await asyncio.to_thread(_remove_all, path)
        except OSError as e:
            raise ReclaimError(str(e)) from None
        return True


def _remove_all(path: str) -> None:
    try:
        shutil.rmtree(path)
    except FileNotFoundError:
        pass
    except NotADirectoryError:
        os.remove(path)
