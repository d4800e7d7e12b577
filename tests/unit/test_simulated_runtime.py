"""SimulatedRuntime: processless containers, cheap enough for a thousand pods."""

from __future__ import annotations

import time

import pytest

from k8py.kubelet.runtime.interface import ContainerConfig, SandboxConfig
from k8py.kubelet.runtime.simulated import SimulatedImages, SimulatedRuntime


async def test_lifecycle_without_processes():
    rt = SimulatedRuntime()
    sandbox = await rt.run_sandbox(SandboxConfig(pod_uid="u", name="p", namespace="d", hostname="p"))
    cid = await rt.create_container(sandbox, ContainerConfig(name="c", image="nginx", labels={"a": "b"}))
    assert (await rt.container_status(cid)).state == "created"
    await rt.start_container(cid)
    status = await rt.container_status(cid)
    assert status.state == "running" and status.pid and status.labels == {"a": "b"}
    assert await rt.exec_sync(cid, ["anything"], 1) == (0, b"")
    rt.finish(cid, 1)
    assert (await rt.container_status(cid)).reason == "Error"
    await rt.remove_sandbox(sandbox.id)
    assert await rt.list_containers() == [] and await rt.list_sandboxes() == []
    with pytest.raises(KeyError):
        await rt.container_status(cid)


async def test_a_thousand_pods_are_cheap():
    rt = SimulatedRuntime()
    started = time.monotonic()
    for i in range(1000):
        sandbox = await rt.run_sandbox(SandboxConfig(pod_uid=str(i), name=f"p{i}", namespace="d", hostname="p"))
        cid = await rt.create_container(sandbox, ContainerConfig(name="c", image="busybox"))
        await rt.start_container(cid)
    assert time.monotonic() - started < 2
    assert sum(1 for c in await rt.list_containers() if c.state == "running") == 1000


async def test_simulated_images_are_always_present():
    images = SimulatedImages()
    info = await images.pull("nginx")
    assert images.get("nginx").id == info.id and images.list() == [info]
