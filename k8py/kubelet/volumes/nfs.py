"""nfs: the export mounted with the host's `mount -t nfs`, inline or as a claim's volume.

Where the host can't mount NFS (no kernel client, no mount.nfs helper) the
error is upstream's, carried by the FailedMount event ("mount failed: exit
status 32\\nMounting command: mount\\nMounting arguments: -t nfs ...\\nOutput: ...")
and the mount is retried with back-off; nothing else of the pod is touched.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from k8py.kubelet.volumes.base import VolumeError


async def mount(source: dict, target: Path, options: list[str] | None = None) -> Path:
    """Mount `source` ({server, path, readOnly}) at `target`, unless it is mounted already."""
    target.mkdir(parents=True, exist_ok=True)
    if os.path.ismount(target):
        return target
    opts = list(options or [])
    if source.get("readOnly") and "ro" not in opts:
        opts.append("ro")
    args = ["-t", "nfs", *(["-o", ",".join(opts)] if opts else []),
            f"{source.get('server', '')}:{source.get('path', '')}", str(target)]
    try:
        proc = await asyncio.create_subprocess_exec("mount", *args, stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.STDOUT)
        out, _ = await proc.communicate()
    except OSError as e:
        raise VolumeError(f"mount failed: {e}\nMounting command: mount\nMounting arguments: {' '.join(args)}\n"
                          "Output: ") from None
    if proc.returncode != 0:
        raise VolumeError(f"mount failed: exit status {proc.returncode}\nMounting command: mount\n"
                          f"Mounting arguments: {' '.join(args)}\nOutput: {out.decode(errors='replace')}")
    return target


async def setup(ctx, pod: dict, volume: dict, target: Path) -> Path:
    return await mount(volume.get("nfs") or {}, target)
