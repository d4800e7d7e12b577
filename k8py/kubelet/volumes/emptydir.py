"""emptyDir: a folder that lives as long as the pod (tmpfs for medium: Memory)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from k8py.kubelet import quantity
from k8py.kubelet.volumes import ownership
from k8py.kubelet.volumes.base import VolumeError


async def setup(ctx, pod: dict, volume: dict, target: Path) -> Path:
    source = volume.get("emptyDir") or {}
    target.mkdir(parents=True, exist_ok=True)
    if source.get("medium") == "Memory" and not os.path.ismount(target):
        options = "mode=0777"
        if source.get("sizeLimit"):
            options += f",size={quantity.to_int(source['sizeLimit'])}"
        elif ctx.node_allocatable.get("memory"):
            options += f",size={quantity.to_int(ctx.node_allocatable['memory'])}"
        proc = await asyncio.create_subprocess_exec("mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target),
                                                    stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.STDOUT)
        out, _ = await proc.communicate()
        if proc.returncode != 0:
            raise VolumeError(f"mount failed: {out.decode(errors='replace').strip()}")
    os.chmod(target, 0o777)    # containers running as any user may write here, as upstream
    ownership.apply(pod, target)
    return target


def size_exceeded(volume: dict, path: Path) -> bool:
    """True when a disk-backed emptyDir grew over its sizeLimit (the pod gets evicted)."""
    limit = (volume.get("emptyDir") or {}).get("sizeLimit")
    if not limit or (volume.get("emptyDir") or {}).get("medium") == "Memory":
        return False
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(dirpath, f)).st_size
            except OSError:
                pass
    return total > quantity.to_int(limit)
