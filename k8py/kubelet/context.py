"""What every pod worker shares: the node, the runtime, the API, settings."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from k8py.kubelet.backoff import Backoff
from k8py.kubelet.pod_dns import ClusterDNS


@dataclass
class KubeletContext:
    node_name: str
    node_ip: str
    data_dir: Path
    runtime: object                              # runtime.interface.Runtime
    client: object                               # k8py.client.Client
    recorder: object                             # k8py.client.EventRecorder
    images: object | None = None                 # runtime.interface.ImageService; None: images are "present"
    network: object | None = None                # network.cni.PodNetwork; None: no pod network (simulated)
    volumes: object | None = None                # volumes.VolumeManager; None: volumes aren't materialised
    dns: ClusterDNS = field(default_factory=lambda: ClusterDNS(servers=["10.43.0.10"]))
    node_allocatable: dict = field(default_factory=dict)
    run_probes: bool = True
    write_pod_files: bool = True                 # /etc/hosts, resolv.conf (real runtimes only)
    # Container finish times are wall-clock times, so the crash back-off runs on that clock.
    crash_backoff: Backoff = field(default_factory=lambda: Backoff(clock=time.time))
    image_backoff: Backoff = field(default_factory=Backoff)
    # Refresh period of configMap/secret volume contents.
    volume_refresh_seconds: float = 10.0

    def env_sources(self, pod: dict):
        from k8py.kubelet.env import EnvSources
        return EnvSources(self.get_config_map, self.get_secret, self.node_allocatable,
                          services=ServiceList(self, pod), master_services=ServiceList(self, None))

    async def get_config_map(self, namespace: str, name: str) -> dict | None:
        return await self._get_or_none("configmaps", namespace, name)

    async def get_secret(self, namespace: str, name: str) -> dict | None:
        return await self._get_or_none("secrets", namespace, name)

    async def _get_or_none(self, plural: str, namespace: str, name: str) -> dict | None:
        from k8py.client import ApiError
        try:
            return await self.client.resource("v1", plural, namespace=namespace).get(name)
        except ApiError as e:
            if e.code == 404:
                return None
            raise

    @property
    def runtime_name(self) -> str:
        return getattr(self.runtime, "name", "") or "k8py"

    @property
    def pods_dir(self) -> Path:
        return self.data_dir / "pods"

    @property
    def logs_dir(self) -> Path:
        return self.data_dir / "pod-logs"


class ServiceList:
    """The services whose link variables a container gets, listed when first read."""

    def __init__(self, ctx: KubeletContext, pod: dict | None):
        self.ctx, self.pod = ctx, pod
        self.items: list[dict] | None = None

    async def load(self) -> list[dict]:
        if self.items is None:
            from k8py.client import ApiError
            try:
                if self.pod is None:
                    svc = await self.ctx.client.resource("v1", "services", namespace="default").get("kubernetes")
                    self.items = [svc]
                else:
                    ns = self.pod["metadata"].get("namespace", "default")
                    listed = await self.ctx.client.resource("v1", "services", namespace=ns).list()
                    self.items = listed.get("items") or []
            except ApiError:
                self.items = []
        return self.items
