"""Static pods from a manifest folder, with mirror pods in the API."""

from __future__ import annotations

import time

from k8py.kubelet import static_pods
from k8py.kubelet.agent import AgentConfig, Kubelet
from k8py.kubelet.backoff import Backoff
from tests.unit.kubelet.conftest import eventually
from tests.unit.kubelet.memory_runtime import FakeRuntime

NODE = "kc-static"
MANIFEST = """apiVersion: v1
kind: Pod
metadata:
  name: static-web
  labels:
    role: myrole
spec:
  containers:
  - name: web
    image: nginx
    command: ["{cmd}"]
"""


async def mirror(api, name="static-web-kc-static"):
    from k8py.client import ApiError
    try:
        return await api.resource("v1", "pods", namespace="default").get(name)
    except ApiError:
        return None


def test_manifest_becomes_a_named_static_pod(tmp_path):
    path = tmp_path / "web.yaml"
    path.write_text(MANIFEST.format(cmd="sleep"))
    pod = static_pods.load_manifest(path, "n1")
    assert pod["metadata"]["name"] == "static-web-n1"
    assert pod["spec"]["nodeName"] == "n1"
    ann = pod["metadata"]["annotations"]
    assert ann["kubernetes.io/config.source"] == "file"
    assert ann["kubernetes.io/config.hash"] == pod["metadata"]["uid"]
    path.write_text(MANIFEST.format(cmd="other"))
    assert static_pods.load_manifest(path, "n1")["metadata"]["uid"] != pod["metadata"]["uid"]
    (tmp_path / "bad.yaml").write_text("kind: Service\n")
    assert static_pods.load_manifest(tmp_path / "bad.yaml", "n1") is None


async def test_static_pod_runs_with_a_mirror_that_comes_back(api, tmp_path, monkeypatch):
    monkeypatch.setattr(static_pods, "SCAN_SECONDS", 0.05)
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "web.yaml").write_text(MANIFEST.format(cmd="sleep"))
    runtime = FakeRuntime()
    kubelet = Kubelet(api, AgentConfig(node_name=NODE, data_dir=tmp_path / "agent", node_ip="127.0.0.1",
                                       relist_seconds=0.05, pod_manifest_path=manifests,
                                       materialize_volumes=False), runtime)
    await kubelet.start()
    kubelet.ctx.crash_backoff = Backoff(initial=0.2, clock=time.time)
    try:
        m = await eventually(lambda: _running_mirror(api), 5, "mirror pod Running")
        ann = m["metadata"]["annotations"]
        assert ann["kubernetes.io/config.mirror"] == ann["kubernetes.io/config.hash"]
        assert m["metadata"]["ownerReferences"][0]["kind"] == "Node"
        assert m["metadata"]["labels"] == {"role": "myrole"}
        first_uid = m["metadata"]["uid"]
        assert runtime.running("web") is not None

        # Deleted in the API: the kubelet creates it again, the container keeps running.
        container = runtime.running("web").id
        await api.resource("v1", "pods", namespace="default").delete("static-web-kc-static")
        m = await eventually(lambda: _mirror_other_than(api, first_uid), 5, "mirror recreated")
        assert runtime.running("web").id == container

        # The file changes: a new pod replaces the old one.
        (manifests / "web.yaml").write_text(MANIFEST.format(cmd="changed"))
        await eventually(lambda: any(c.command == ["changed"] and s.state == "running"
                                     for cid, c in runtime.configs.items()
                                     for s in [runtime.containers.get(cid)] if s), 5, "new static pod")
        assert runtime.containers.get(container) is None or runtime.containers[container].state == "exited"

        # The file goes: so do the pod and its mirror.
        (manifests / "web.yaml").unlink()
        await eventually(lambda: _gone(api), 5, "mirror removed")
        await eventually(lambda: runtime.running("web") is None, 5, "static pod stopped")
    finally:
        await kubelet.stop()


async def _running_mirror(api):
    m = await mirror(api)
    return m if m and (m.get("status") or {}).get("phase") == "Running" else None


async def _mirror_other_than(api, uid):
    m = await mirror(api)
    return m if m and m["metadata"]["uid"] != uid and (m.get("status") or {}).get("phase") == "Running" else None


async def _gone(api):
    return await mirror(api) is None


async def test_restarted_kubelet_adopts_static_pod_containers(api, tmp_path, monkeypatch):
    monkeypatch.setattr(static_pods, "SCAN_SECONDS", 0.05)
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    (manifests / "web.yaml").write_text(MANIFEST.format(cmd="sleep"))
    runtime = FakeRuntime()
    config = dict(node_name=NODE, data_dir=tmp_path / "agent", node_ip="127.0.0.1", relist_seconds=0.05,
                  pod_manifest_path=manifests, materialize_volumes=False)
    first = Kubelet(api, AgentConfig(**config), runtime)
    await first.start()
    await eventually(lambda: _running_mirror(api), 5, "mirror pod Running")
    container = runtime.running("web").id
    await first.stop()
    second = Kubelet(api, AgentConfig(**config), runtime)
    await second.start()
    try:
        # Several relists and manifest scans of the new kubelet: any of them would have started a new container.
        relisted = runtime.relists
        await eventually(lambda: runtime.relists >= relisted + 3, 5, "three relists by the restarted kubelet")
        await eventually(lambda: _running_mirror(api), 5, "the mirror pod Running")
        assert runtime.running("web") is not None and runtime.running("web").id == container
        assert len(runtime.containers) == 1
    finally:
        await second.stop()
