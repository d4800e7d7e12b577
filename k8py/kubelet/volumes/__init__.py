"""Pod volumes: one module per type, set up before containers start.

`VolumeManager.setup(pod)` prepares every volume and returns the host path of
each; API-backed volumes are rewritten atomically when their source changes
(`refresh`). `container_mounts` turns a container's volumeMounts (subPath,
subPathExpr, readOnly) into runtime mounts.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from pathlib import Path

from k8py.kubelet.expansion import expand
from k8py.kubelet.runtime.interface import Mount
from k8py.kubelet.volumes import configmap, downwardapi, emptydir, hostpath, nfs, projected, pvc, secret
from k8py.kubelet.volumes.base import VolumeContext, VolumeError

# volume source key -> (module, folder name as upstream's plugin names)
PLUGINS = {
    "emptyDir": (emptydir, "kubernetes.io~empty-dir"),
    "hostPath": (hostpath, "kubernetes.io~host-path"),
    "configMap": (configmap, "kubernetes.io~configmap"),
    "secret": (secret, "kubernetes.io~secret"),
    "downwardAPI": (downwardapi, "kubernetes.io~downward-api"),
    "projected": (projected, "kubernetes.io~projected"),
    "persistentVolumeClaim": (pvc, "kubernetes.io~pvc"),
    "nfs": (nfs, "kubernetes.io~nfs"),
}
# Volumes whose content comes from the API and is kept current.
REFRESHED = ("configMap", "secret", "downwardAPI", "projected")
# Volumes the kubelet always mounts read-only.
READ_ONLY = ("configMap", "secret", "downwardAPI", "projected")

log = logging.getLogger("k8py.kubelet.volumes")

__all__ = ["VolumeContext", "VolumeError", "VolumeManager", "PLUGINS"]


def source_type(volume: dict) -> str | None:
    return next((k for k in PLUGINS if k in volume), None)


class VolumeManager:
    def __init__(self, pods_dir: Path, ctx: VolumeContext):
        self.pods_dir = pods_dir
        self.ctx = ctx

    def pod_dir(self, pod_uid: str) -> Path:
        return self.pods_dir / pod_uid

    def volume_dir(self, pod_uid: str, kind: str, name: str) -> Path:
        return self.pod_dir(pod_uid) / "volumes" / PLUGINS[kind][1] / name

    async def setup(self, pod: dict, only: tuple[str, ...] | None = None) -> dict[str, Path]:
        """Prepare the pod's volumes; raises VolumeError naming the first that failed."""
        uid = pod["metadata"]["uid"]
        paths: dict[str, Path] = {}
        for volume in (pod.get("spec") or {}).get("volumes") or []:
            kind = source_type(volume)
            name = volume.get("name", "")
            if kind is None:
                raise VolumeError(f'MountVolume.SetUp failed for volume "{name}" : unsupported volume type')
            if only is not None and kind not in only:
                continue
            module = PLUGINS[kind][0]
            target = self.volume_dir(uid, kind, name)
            try:
                paths[name] = await module.setup(self.ctx, pod, volume, target)
            except VolumeError as e:
                name = getattr(e, "volume_name", name)     # a claim's failure names its PersistentVolume
                raise VolumeError(f'MountVolume.SetUp failed for volume "{name}" : {e}') from None
            except OSError as e:
                raise VolumeError(f'MountVolume.SetUp failed for volume "{name}" : {e}') from None
        return paths

    async def refresh(self, pod: dict) -> None:
        """Bring configMap/secret/downwardAPI/projected volumes up to date."""
        await self.setup(pod, only=REFRESHED)

    async def teardown(self, pod_uid: str) -> None:
        """Unmount tmpfs volumes and remove the pod's folder (never hostPath content)."""
        base = self.pod_dir(pod_uid)
        if not base.exists():
            return
        volumes = base / "volumes"
        for kind_dir in (volumes.iterdir() if volumes.exists() else []):
            for vol in kind_dir.iterdir():
                if os.path.ismount(vol):
                    proc = await asyncio.create_subprocess_exec("umount", "-l", str(vol))
                    await proc.wait()
                    if os.path.ismount(vol):
                        # Removing the pod's folder now would delete the volume's data (an nfs share).
                        log.warning("unmount of %s failed; the pod's folder is kept", vol)
                        return
        await asyncio.to_thread(shutil.rmtree, base, True)

    def container_mounts(self, pod: dict, container: dict, paths: dict[str, Path],
                         env: list[tuple[str, str]]) -> list[Mount]:
        volumes = {v.get("name"): v for v in (pod.get("spec") or {}).get("volumes") or []}
        env_map = dict(env)
        mounts = []
        for vm in container.get("volumeMounts") or []:
            name = vm.get("name", "")
            if name not in paths:
                raise VolumeError(f"unable to find volume {name!r} for container {container.get('name')}")
            host = paths[name]
            sub = vm.get("subPath") or ""
            if vm.get("subPathExpr"):
                sub = expand(vm["subPathExpr"], env_map)
            if sub:
                host = subpath(host, sub, source_type(volumes.get(name) or {}) not in READ_ONLY)
            read_only = bool(vm.get("readOnly")) or volume_read_only(volumes.get(name) or {})
            mounts.append(Mount(container_path=vm.get("mountPath", ""), host_path=str(host), read_only=read_only))
        return mounts


def volume_read_only(volume: dict) -> bool:
    """Mounted read-only in every container, whatever the volumeMount says."""
    kind = source_type(volume)
    return kind in READ_ONLY or bool((volume.get(kind) or {}).get("readOnly")) if kind else False


def subpath(volume_path: Path, sub: str, create: bool) -> Path:
    """The host path of `sub` inside a volume; it may not lead outside the volume."""
    if sub.startswith("/") or ".." in Path(sub).parts:
        raise VolumeError(f"subPath {sub!r} must be a relative path without '..'")
    candidate = volume_path / sub
    if not candidate.exists() and not candidate.is_symlink() and create:
        candidate.mkdir(parents=True, mode=0o777, exist_ok=True)
    resolved = Path(os.path.realpath(candidate))
    root = Path(os.path.realpath(volume_path))
    if resolved != root and root not in resolved.parents:
        raise VolumeError(f"subpath {sub!r} resolves outside the volume")
    return resolved
