"""A tiny in-memory Runtime for pod-worker tests: containers 'run' until the test ends them.

Behaviour is driven by the container's command, so a test reads like a pod spec:
  ["exit", "<code>"]  exits with that code as soon as it starts
  ["oom"]            is OOM-killed as soon as it starts
anything else runs until stopped (exit 143 on SIGTERM). exec_sync answers from
`exec_results` keyed by the argv's first word (default: exit 0, b"ok").
"""

from __future__ import annotations

import itertools
import time

from k8py.kubelet.runtime.interface import (ContainerConfig, ContainerStats, ContainerStatus, Runtime, Sandbox,
                                            SandboxConfig)


class FakeRuntime(Runtime):
    name = "fake"
    version = "0.1"

    def __init__(self):
        self.sandboxes: dict[str, Sandbox] = {}
        self.containers: dict[str, ContainerStatus] = {}
        self.configs: dict[str, ContainerConfig] = {}
        self.exec_results: dict[str, tuple[int, bytes]] = {}
        self.execs: list[tuple[str, list[str]]] = []
        self.stopped: list[tuple[str, float]] = []
        self.relists = 0            # list_containers calls: the kubelet's relists (and a few other reads)
        self._ids = itertools.count(1)

    async def run_sandbox(self, config: SandboxConfig) -> Sandbox:
        sid = f"sb{next(self._ids)}"
        sb = Sandbox(id=sid, pod_uid=config.pod_uid, netns_path=None, ipc_ns_path=None, uts_ns_path=None,
                     pid_ns_path=None, cgroup_parent=config.cgroup_parent, labels=dict(config.labels))
        self.sandboxes[sid] = sb
        return sb

    async def remove_sandbox(self, sandbox_id: str) -> None:
        self.sandboxes.pop(sandbox_id, None)
        for cid in [c for c, s in self.containers.items() if s.sandbox_id == sandbox_id]:
            self.containers.pop(cid)

    async def list_sandboxes(self):
        return list(self.sandboxes.values())

    async def create_container(self, sandbox: Sandbox, config: ContainerConfig) -> str:
        cid = f"c{next(self._ids)}"
        self.configs[cid] = config
        self.containers[cid] = ContainerStatus(id=cid, sandbox_id=sandbox.id, name=config.name, state="created",
                                               image=config.image, image_id="sha256:fake",
                                               created_at=time.time(), labels=dict(config.labels),
                                               log_path=config.log_path)
        return cid

    async def start_container(self, container_id: str) -> None:
        cs = self.containers[container_id]
        cmd = self.configs[container_id].command
        cs.state, cs.started_at, cs.pid = "running", time.time(), 1000 + len(self.containers)
        if cmd[:1] == ["exit"]:
            self.finish(container_id, int(cmd[1]))
        elif cmd[:1] == ["oom"]:
            self.finish(container_id, 137, oom=True)

    def finish(self, container_id: str, code: int, oom: bool = False) -> None:
        cs = self.containers[container_id]
        cs.state, cs.exit_code, cs.finished_at, cs.oom_killed, cs.pid = "exited", code, time.time(), oom, None

    def running(self, name: str) -> ContainerStatus | None:
        return next((c for c in self.containers.values() if c.name == name and c.state == "running"), None)

    async def stop_container(self, container_id: str, timeout: float) -> None:
        self.stopped.append((container_id, timeout))
        cs = self.containers.get(container_id)
        if cs is not None and cs.state == "running":
            self.finish(container_id, 143)

    async def remove_container(self, container_id: str) -> None:
        self.containers.pop(container_id, None)

    async def container_status(self, container_id: str) -> ContainerStatus:
        if container_id not in self.containers:
            raise KeyError(container_id)
        cs = self.containers[container_id]
        return ContainerStatus(**cs.__dict__)

    async def list_containers(self):
        self.relists += 1
        return [ContainerStatus(**c.__dict__) for c in self.containers.values()]

    async def exec_sync(self, container_id: str, argv: list[str], timeout: float):
        self.execs.append((container_id, list(argv)))
        return self.exec_results.get(argv[0] if argv else "", (0, b"ok"))

    async def stats(self, container_id: str):
        return ContainerStats(0, 0)
