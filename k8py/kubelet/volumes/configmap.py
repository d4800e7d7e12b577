"""configMap volume: the ConfigMap's keys as files, kept current as it changes."""

from __future__ import annotations

from pathlib import Path

from k8py.kubelet.volumes import atomic_writer, payload


async def setup(ctx, pod: dict, volume: dict, target: Path) -> Path:
    source = volume.get("configMap") or {}
    namespace = (pod.get("metadata") or {}).get("namespace", "default")
    files = await payload.config_map(ctx, namespace, source, source.get("defaultMode"))
    atomic_writer.write(target, files)
    return target
