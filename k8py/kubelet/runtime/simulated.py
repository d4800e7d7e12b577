"""SimulatedRuntime: containers that "run" without processes, as KWOK's nodes do.

Everything lives in memory and costs a few dicts per pod, so one agent can
carry a thousand pods. Containers start immediately and run until stopped;
exec always succeeds. Tests may end a container with `finish(id, exit_code)`.

Usage is synthetic: `usage_model(status)` says what a running container uses
now, as (CPU nanocores, memory bytes); its CPU time accumulates at that rate,
so the figures behave like a real container's for metrics-server and the HPA.
"""

from __future__ import annotations

import itertools
import secrets
import time
from dataclasses import replace

from k8py.kubelet.runtime.interface import (ContainerConfig, ContainerStats, ContainerStatus, ImageInfo,
                                            ImageService, Runtime, Sandbox, SandboxConfig)


class SimulatedRuntime(Runtime):
    name = "simulated"
    version = "0.1.0"

    def __init__(self):
        self._sandboxes: dict[str, Sandbox] = {}
        self._containers: dict[str, ContainerStatus] = {}
        self._pids = itertools.count(1000)
        self.usage_model = None           # (ContainerStatus) -> (nanocores, bytes); None: idle containers
        self._cpu: dict[str, tuple[float, float]] = {}     # container id -> (when, cumulative ns then)
        self._retired_ns = 0.0        # CPU time of removed containers: the node's counter never goes back

    async def run_sandbox(self, config: SandboxConfig) -> Sandbox:
        sandbox = Sandbox(id=secrets.token_hex(16), pod_uid=config.pod_uid, netns_path=None, ipc_ns_path=None,
                          uts_ns_path=None, pid_ns_path=None,
                          cgroup_parent=config.cgroup_parent or f"k8py/pod{config.pod_uid}",
                          labels=dict(config.labels))
        self._sandboxes[sandbox.id] = sandbox
        return sandbox

    async def remove_sandbox(self, sandbox_id: str) -> None:
        self._sandboxes.pop(sandbox_id, None)
        for cid in [c.id for c in self._containers.values() if c.sandbox_id == sandbox_id]:
            del self._containers[cid]
            self._forget(cid)

    async def list_sandboxes(self) -> list[Sandbox]:
        return list(self._sandboxes.values())

    async def create_container(self, sandbox: Sandbox, config: ContainerConfig) -> str:
        if sandbox.id not in self._sandboxes:
            raise KeyError(f"no such sandbox {sandbox.id}")
        cid = secrets.token_hex(16)
        self._containers[cid] = ContainerStatus(
            id=cid, sandbox_id=sandbox.id, name=config.name, state="created", image=config.image,
            image_id="sha256:" + "0" * 64, created_at=time.time(), log_path=config.log_path,
            labels=dict(config.labels))
        return cid

    def _get(self, container_id: str) -> ContainerStatus:
        try:
            return self._containers[container_id]
        except KeyError:
            raise KeyError(f"no such container {container_id}") from None

    async def start_container(self, container_id: str) -> None:
        status = self._get(container_id)
        if status.state == "created":
            status.state, status.started_at, status.pid = "running", time.time(), next(self._pids)

    def finish(self, container_id: str, exit_code: int = 0, reason: str = "") -> None:
        """End a running container as if its process had exited."""
        status = self._get(container_id)
        if status.state == "running":
            status.state, status.pid, status.exit_code = "exited", None, exit_code
            status.finished_at = time.time()
            status.reason = reason or ("Completed" if exit_code == 0 else "Error")
            status.oom_killed = reason == "OOMKilled"

    async def stop_container(self, container_id: str, timeout: float) -> None:
        self.finish(container_id, 137 if timeout <= 0 else 0)

    async def remove_container(self, container_id: str) -> None:
        self._containers.pop(container_id, None)
        self._forget(container_id)

    async def container_status(self, container_id: str) -> ContainerStatus:
        return replace(self._get(container_id))

    async def list_containers(self) -> list[ContainerStatus]:
        return [replace(c) for c in self._containers.values()]

    async def exec_sync(self, container_id: str, argv: list[str], timeout: float) -> tuple[int, bytes]:
        self._get(container_id)
        return 0, b""

    def _forget(self, container_id: str) -> None:
        self._retired_ns += self._cpu.pop(container_id, (0, 0.0))[1]

    def _usage(self, status: ContainerStatus, now: float) -> tuple[int, int]:
        """(cumulative CPU ns, memory bytes) of a container: the model's rate integrated over time."""
        if status.state != "running" or self.usage_model is None:
            return int(self._cpu.get(status.id, (0, 0))[1]), 0
        nanocores, memory = self.usage_model(status)
        since, total = self._cpu.get(status.id, (status.started_at or now, 0.0))
        total += max(0.0, now - since) * nanocores
        self._cpu[status.id] = (now, total)
        return int(total), int(memory)

    async def stats(self, container_id: str) -> ContainerStats | None:
        cpu_ns, memory = self._usage(self._get(container_id), time.time())
        return ContainerStats(cpu_usage_ns=cpu_ns, memory_working_set_bytes=memory, memory_usage_bytes=memory,
                              memory_rss_bytes=memory)

    async def node_usage(self) -> tuple[int, dict]:
        """The node's usage is its pods' (a hollow node has no system of its own)."""
        now = time.time()
        cpu_ns, memory = int(self._retired_ns), 0
        for status in self._containers.values():
            used_ns, used_bytes = self._usage(status, now)
            cpu_ns += used_ns
            memory += used_bytes
        return cpu_ns, {"usage": memory, "working_set": memory, "rss": memory}

    def container_pid(self, container_id: str) -> int | None:
        return self._get(container_id).pid


class SimulatedImages(ImageService):
    """Every image is 'present' at once: hollow nodes never pull."""

    def __init__(self):
        self._seen: dict[str, ImageInfo] = {}

    async def pull(self, reference: str, credentials: list[dict] | None = None) -> ImageInfo:
        return self.get(reference)

    def get(self, reference: str) -> ImageInfo | None:
        info = self._seen.get(reference)
        if info is None:
            digest = "sha256:" + secrets.token_hex(32)
            info = self._seen[reference] = ImageInfo(id=digest, repo_tags=[reference], repo_digests=[], size=0,
                                                     config={})
        return info

    def list(self) -> list[ImageInfo]:
        return list(self._seen.values())

    def remove(self, reference: str) -> None:
        self._seen.pop(reference, None)
