"""projected volume: configMaps, secrets, downward API and service account tokens in one folder."""

from __future__ import annotations

from pathlib import Path

from k8py.kubelet.volumes import atomic_writer, payload


async def setup(ctx, pod: dict, volume: dict, target: Path) -> Path:
    atomic_writer.write(target, await payload.projected(ctx, pod, volume.get("projected") or {}))
    return target
