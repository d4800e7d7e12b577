"""Image pulls through the real ImageStore from a local docker-registry: events, policies, back-off."""

from __future__ import annotations

import time

import pytest

from k8py.kubelet.agent import AgentConfig, Kubelet
from k8py.kubelet.backoff import Backoff
from k8py.kubelet.images.store import ImageStore
from scripts.test_registry import start_registry
from tests.unit.kubelet.test_pod_lifecycle import condition, ctr, events_for, pod, status_of, wait_pod
from tests.unit.kubelet.memory_runtime import FakeRuntime


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    reg = start_registry(tmp_path_factory.mktemp("kc-registry"))
    yield reg
    reg.stop()


@pytest.fixture
async def kubelet(api, tmp_path, registry):
    await api.resource("v1", "configmaps", namespace="default").create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "kube-root-ca.crt"}, "data": {"ca.crt": "x"}})
    images = ImageStore(tmp_path / "images", registry.mirrors_config)
    k = Kubelet(api, AgentConfig(node_name="kc-node", data_dir=tmp_path / "agent", node_ip="127.0.0.1",
                                 relist_seconds=0.05), FakeRuntime(), images=images)
    await k.start()
    k.ctx.image_backoff = Backoff(initial=0.3, maximum=1.0)
    k.ctx.crash_backoff = Backoff(initial=0.3, maximum=1.0, clock=time.time)
    yield k
    await k.stop()


async def test_pull_then_run_and_policies(api, kubelet):
    pods = api.resource("v1", "pods", namespace="default")
    await pods.create(pod("pulled", [{**ctr("main"), "image": "busybox:1.36"}]))
    p = await wait_pod(api, "pulled", lambda p: condition(p, "Ready").get("status") == "True", timeout=20)
    assert status_of(p, "main")["imageID"]
    await kubelet.recorder.flush()
    events = await events_for(api, "pulled")
    assert ("Pulling", 'Pulling image "busybox:1.36"') in events
    pulled = [m for r, m in events if r == "Pulled"]
    assert pulled and pulled[0].startswith('Successfully pulled image "busybox:1.36" in ')
    assert "Image size: " in pulled[0]

    # IfNotPresent with the image there: no pull.
    await pods.create(pod("cached", [{**ctr("main"), "image": "busybox:1.36"}]))
    await wait_pod(api, "cached", lambda p: condition(p, "Ready").get("status") == "True")
    await kubelet.recorder.flush()
    assert ("Pulled", 'Container image "busybox:1.36" already present on machine') in \
        await events_for(api, "cached")

    # Never, and not there: ErrImageNeverPull.
    await pods.create(pod("never", [{**ctr("main"), "image": "nginx:1.0", "imagePullPolicy": "Never"}]))
    p = await wait_pod(api, "never", lambda p: p.get("status", {}).get("containerStatuses") and
                       status_of(p, "main")["state"].get("waiting", {}).get("reason") == "ErrImageNeverPull")
    assert status_of(p, "main")["state"]["waiting"]["message"] == \
        'Container image "nginx:1.0" is not present with pull policy of Never'


async def test_missing_image_backs_off(api, kubelet):
    pods = api.resource("v1", "pods", namespace="default")
    await pods.create(pod("missing", [{**ctr("main"), "image": "busybox:does-not-exist"}]))
    reasons = set()

    def seen(p):
        if p.get("status", {}).get("containerStatuses"):
            reasons.add(status_of(p, "main")["state"].get("waiting", {}).get("reason"))
        return {"ErrImagePull", "ImagePullBackOff"} <= reasons
    await wait_pod(api, "missing", seen, timeout=15)
    await kubelet.recorder.flush()
    events = await events_for(api, "missing")
    assert any(r == "Failed" and m.startswith('Failed to pull image "busybox:does-not-exist": ') for r, m in events)
    assert ("Failed", "Error: ErrImagePull") in events
    assert ("BackOff", 'Back-off pulling image "busybox:does-not-exist"') in events
