"""persistentVolumeClaim: the volume the claim is bound to, mounted as its PV's source says.

- hostPath PVs (what local-path provisions): the path, checked against its type;
- local PVs: the path, which must exist; fsGroup applies to it;
- nfs PVs: the export mounted in the pod's folder (nfs.py), with the PV's
  mountOptions, read-only when the PV or the pod's volume says so.

`readOnly: true` on the pod's claim volume makes every mount of it read-only
(VolumeManager.container_mounts); the claim's access modes alone (ReadOnlyMany)
do not, as upstream: they are matched at binding, not enforced at mount.
Failures name the PersistentVolume, as upstream's FailedMount events do.
"""

from __future__ import annotations

import os
from pathlib import Path

from k8py.kubelet.volumes import hostpath, nfs, ownership
from k8py.kubelet.volumes.base import VolumeError


class VolumeSetupError(VolumeError):
    """A failure of the claim's PersistentVolume, named as upstream names it."""

    def __init__(self, message: str, volume_name: str):
        super().__init__(message)
        self.volume_name = volume_name


def read_only(volume: dict) -> bool:
    return bool((volume.get("persistentVolumeClaim") or {}).get("readOnly"))


async def setup(ctx, pod: dict, volume: dict, target: Path) -> Path:
    claim_name = (volume.get("persistentVolumeClaim") or {}).get("claimName", "")
    if ctx.persistent_volume_claim is None:
        raise VolumeError(f'persistentvolumeclaim "{claim_name}" not found')
    namespace = (pod.get("metadata") or {}).get("namespace", "default")
    claim, pv = await ctx.persistent_volume_claim(namespace, claim_name)
    if claim is None:
        raise VolumeError(f'persistentvolumeclaim "{claim_name}" not found')
    if pv is None:
        raise VolumeError(f'PVC {namespace}/{claim_name} is not bound')
    try:
        return await mount(pod, pv, target, read_only(volume))
    except VolumeError as e:
        raise VolumeSetupError(str(e), pv["metadata"]["name"]) from None
    except OSError as e:
        raise VolumeSetupError(str(e), pv["metadata"]["name"]) from None


async def mount(pod: dict, pv: dict, target: Path, read_only: bool) -> Path:
    spec = pv.get("spec") or {}
    if spec.get("hostPath"):
        hostpath.check(spec["hostPath"].get("path", ""), spec["hostPath"].get("type") or "")
        return Path(spec["hostPath"]["path"])
    if spec.get("local"):
        path = spec["local"].get("path", "")
        if not os.path.exists(path):
            raise VolumeError(f"stat {path}: no such file or directory")
        if os.path.isdir(path):
            ownership.apply(pod, Path(path), read_only)
        return Path(path)
    if spec.get("nfs"):
        source = dict(spec["nfs"], readOnly=bool(spec["nfs"].get("readOnly")) or read_only)
        return await nfs.mount(source, target, spec.get("mountOptions"))
    raise VolumeError(f"volume {pv['metadata']['name']} has a source this node can't mount")
