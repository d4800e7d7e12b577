"""downwardAPI volume: pod fields (labels, annotations, name, resources) as files."""

from __future__ import annotations

from pathlib import Path

from k8py.kubelet.volumes import atomic_writer, payload


async def setup(ctx, pod: dict, volume: dict, target: Path) -> Path:
    source = volume.get("downwardAPI") or {}
    atomic_writer.write(target, payload.downward_api(ctx, pod, source, source.get("defaultMode")))
    return target
