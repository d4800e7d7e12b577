"""persistentVolumeClaim: the hook the storage work fills in.

`resolve` gets the bound PersistentVolume and returns the host path to mount;
until storage lands, hostPath- and local-backed PVs are mounted directly and
anything else is reported as not supported.
"""

from __future__ import annotations

from pathlib import Path

from k8py.kubelet.volumes import hostpath
from k8py.kubelet.volumes.base import VolumeError

# Set by the storage work: async (ctx, pod, claim, pv) -> Path
resolver = None


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
    if resolver is not None:
        return await resolver(ctx, pod, claim, pv)
    spec = pv.get("spec") or {}
    if spec.get("hostPath"):
        hostpath.check(spec["hostPath"]["path"], spec["hostPath"].get("type") or "")
        return Path(spec["hostPath"]["path"])
    if spec.get("local"):
        return Path(spec["local"]["path"])
    raise VolumeError(f"volume {pv['metadata']['name']} has a source this node can't mount yet")
