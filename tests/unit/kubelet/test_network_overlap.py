"""The pod network is wired while the first container is created, and no container starts
(and no status is written) before it is up."""

from __future__ import annotations

import asyncio
import time

import pytest

from k8py.kubelet.agent import AgentConfig, Kubelet
from k8py.kubelet.backoff import Backoff
from k8py.kubelet.network.cni import NetworkError
from tests.unit.kubelet.memory_runtime import FakeRuntime
from tests.unit.kubelet.conftest import eventually
from tests.unit.kubelet.test_pod_lifecycle import NODE, ctr, events_for, get_pod, pod, wait_pod


class GatedNetwork:
    """A pod network whose setup finishes when the test opens the gate (or fails, if told)."""

    def __init__(self, steps: list[str]):
        self.steps = steps
        self.gate = asyncio.Event()
        self.fail_next = False

    async def ensure_host_networking(self) -> None:
        pass

    async def setup(self, sandbox, pod: dict) -> str:
        self.steps.append("network:begin")
        await self.gate.wait()
        if self.fail_next:
            self.fail_next = False
            self.steps.append("network:failed")
            raise NetworkError('plugin type="bridge" failed (add): no luck')
        self.steps.append("network:up")
        return "10.42.0.9"

    async def teardown(self, sandbox, pod: dict) -> None:
        self.steps.append("network:down")


class StepRuntime(FakeRuntime):
    def __init__(self, steps: list[str]):
        super().__init__()
        self.steps = steps

    async def create_container(self, sandbox, config):
        cid = await super().create_container(sandbox, config)
        self.steps.append(f"create:{config.name}")
        return cid

    async def start_container(self, container_id: str) -> None:
        self.steps.append(f"start:{self.configs[container_id].name}")
        await super().start_container(container_id)

    async def remove_container(self, container_id: str) -> None:
        self.steps.append(f"remove:{self.configs[container_id].name}")
        await super().remove_container(container_id)


@pytest.fixture
async def node(api, tmp_path):
    for plural, obj in (("configmaps", {"apiVersion": "v1", "kind": "ConfigMap",
                                        "metadata": {"name": "kube-root-ca.crt"}, "data": {"ca.crt": "test-ca"}}),
                        ("serviceaccounts", {"apiVersion": "v1", "kind": "ServiceAccount",
                                             "metadata": {"name": "default"}})):
        await api.resource("v1", plural, namespace="default").create(obj)     # the token volume's sources
    steps: list[str] = []
    network = GatedNetwork(steps)
    runtime = StepRuntime(steps)
    kubelet = Kubelet(api, AgentConfig(node_name=NODE, data_dir=tmp_path / "agent", node_ip="127.0.0.1",
                                       relist_seconds=0.05), runtime, network_factory=lambda cidr: network)
    kubelet.pod_cidr_wait = 0
    await kubelet.start()
    kubelet.ctx.crash_backoff = Backoff(initial=0.3, maximum=1.2, clock=time.time)
    yield kubelet, network, runtime, steps
    await kubelet.stop()


async def test_container_is_created_during_network_setup_and_started_after(api, node):
    kubelet, network, runtime, steps = node
    await api.resource("v1", "pods", namespace="default").create(pod("overlap", [ctr("main")]))
    await eventually(lambda: "create:main" in steps or None, what="the container created")
    assert steps == ["network:begin", "create:main"]      # created while the network is still pending
    assert (await get_pod(api, "overlap")).get("status", {}).get("phase") != "Running"
    network.gate.set()
    p = await wait_pod(api, "overlap", lambda p: p.get("status", {}).get("phase") == "Running")
    assert steps == ["network:begin", "create:main", "network:up", "start:main"]   # started only once it was up
    assert p["status"]["podIP"] == "10.42.0.9"


async def test_a_container_whose_env_names_the_pod_ip_is_created_after_the_network(api, node):
    kubelet, network, runtime, steps = node
    env = [{"name": "MY_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]
    await api.resource("v1", "pods", namespace="default").create(pod("needs-ip", [ctr("main", env=env)]))
    await eventually(lambda: "network:begin" in steps or None, what="the network setup")
    network.gate.set()
    await wait_pod(api, "needs-ip", lambda p: p.get("status", {}).get("phase") == "Running")
    assert steps == ["network:begin", "network:up", "create:main", "start:main"]   # created only once it was up
    [config] = runtime.configs.values()
    assert ("MY_IP", "10.42.0.9") in [(k, v) for k, v in config.env]


async def test_a_failed_network_removes_the_created_container_and_is_retried(api, node):
    kubelet, network, runtime, steps = node
    network.fail_next = True
    await api.resource("v1", "pods", namespace="default").create(pod("net-fails", [ctr("main")]))
    await eventually(lambda: "create:main" in steps or None, what="the container created")
    network.gate.set()
    await eventually(lambda: "network:failed" in steps or None, what="the failed setup")
    await kubelet.recorder.flush()

    async def sandbox_event():
        return any(r == "FailedCreatePodSandBox" and "no luck" in m for r, m in await events_for(api, "net-fails"))
    await eventually(sandbox_event, what="FailedCreatePodSandBox event")
    # A later sync wires the network again and starts a fresh container.
    await wait_pod(api, "net-fails", lambda p: p.get("status", {}).get("phase") == "Running", timeout=10)
    assert steps[:4] == ["network:begin", "create:main", "network:failed", "remove:main"]
    retry = steps[4:]
    assert sorted(retry) == ["create:main", "network:begin", "network:up", "start:main"]
    assert retry[0] == "network:begin" and retry[-1] == "start:main"
