"""local-path with real runc pods: WaitForFirstConsumer leaves a claim Pending until a pod
uses it, the scheduler picks the node and the provisioner makes the volume there; the data a
pod writes outlives it; Delete removes the directory, Retain keeps it. One single-node
cluster (the server with its agent) in its own network namespace (netns_cluster.py)."""

from __future__ import annotations

import json
import os
import shutil

import pytest

from tests.e2e.conftest import wait_for
from tests.e2e.netns_cluster import node_in_namespace

pytestmark = [pytest.mark.skipif(os.geteuid() != 0, reason="containers and network namespaces need root"),
              pytest.mark.host_network]  # a network-namespace cluster

NS = "default"


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    yield from node_in_namespace(tmp_path_factory)


def _get(node, *args):
    result = node.kubectl("get", *args, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def _phase(node, *args):
    return ((_get(node, *args) or {}).get("status") or {}).get("phase")


def _events(node, name):
    items = node.kubectl_json("get", "events", "-n", NS, "--field-selector", f"involvedObject.name={name}")["items"]
    return [(e["type"], e["reason"], e["message"]) for e in items]


def _claim(name, storage_class=None):
    line = f"\n  storageClassName: {storage_class}" if storage_class else ""
    return f"""apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: {name}, namespace: {NS}}}
spec:{line}
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 10Mi}}}}
"""


def _pod(name, claim, command):
    return f"""apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {NS}}}
spec:
  terminationGracePeriodSeconds: 1
  restartPolicy: Never
  containers:
  - name: c
    image: busybox
    command: [sh, -c, {json.dumps(command)}]
    volumeMounts: [{{name: data, mountPath: /data}}]
  volumes: [{{name: data, persistentVolumeClaim: {{claimName: {claim}}}}}]
"""


def _delete_pod(node, name):
    node.kubectl("delete", "pod", name, "-n", NS, "--wait=false", check=False)
    wait_for(lambda: _get(node, "pod", name, "-n", NS) is None, timeout=90, what=f"pod {name} gone")


def test_wait_for_first_consumer_then_data_outlives_the_pod_and_delete_removes_the_directory(node):
    node.kubectl("apply", "-f", "-", input=_claim("data"))
    claim = _get(node, "pvc", "data", "-n", NS)
    assert claim["spec"]["storageClassName"] == "local-path"  # the default class, by admission
    wait_for(lambda: ("Normal", "WaitForFirstConsumer", "waiting for first consumer to be created before binding")
             in _events(node, "data"), timeout=30, what="WaitForFirstConsumer event")
    assert _phase(node, "pvc", "data", "-n", NS) == "Pending"
    assert node.kubectl_json("get", "pv")["items"] == []

    node.kubectl("apply", "-f", "-", input=_pod("writer", "data", "echo written-by-writer > /data/file"))
    wait_for(lambda: _phase(node, "pod", "writer", "-n", NS) == "Succeeded", timeout=180, what="writer Succeeded")
    claim = _get(node, "pvc", "data", "-n", NS)
    assert claim["status"]["phase"] == "Bound"
    assert claim["metadata"]["annotations"]["volume.kubernetes.io/selected-node"] == node.node_name
    pv_name = claim["spec"]["volumeName"]
    volume = _get(node, "pv", pv_name)
    directory = node.data / "storage" / f"{pv_name}_{NS}_data"
    assert volume["spec"]["hostPath"] == {"path": str(directory), "type": "DirectoryOrCreate"}
    assert volume["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] == \
        [node.node_name]
    assert volume["metadata"]["annotations"]["pv.kubernetes.io/provisioned-by"] == "rancher.io/local-path"
    assert (directory / "file").read_text() == "written-by-writer\n"
    assert _get(node, "pod", "writer", "-n", NS)["spec"]["nodeName"] == node.node_name

    _delete_pod(node, "writer")
    node.kubectl("apply", "-f", "-", input=_pod("reader", "data", "cat /data/file"))
    wait_for(lambda: _phase(node, "pod", "reader", "-n", NS) == "Succeeded", timeout=180, what="reader Succeeded")
    assert node.kubectl("logs", "reader", "-n", NS).stdout == "written-by-writer\n"

    _delete_pod(node, "reader")
    node.kubectl("delete", "pvc", "data", "-n", NS, "--timeout=60s")
    wait_for(lambda: _get(node, "pv", pv_name) is None, timeout=90, what="the local-path PV deleted")
    assert not directory.exists()


def test_retain_keeps_the_volume_and_its_directory(node):
    node.kubectl("apply", "-f", "-", input="""apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: local-path-retain}
provisioner: rancher.io/local-path
reclaimPolicy: Retain
volumeBindingMode: WaitForFirstConsumer
""")
    directory = None
    pv_name = None
    try:
        node.kubectl("apply", "-f", "-", input=_claim("kept", "local-path-retain") + "---\n" +
                     _pod("keeper", "kept", "echo keep-me > /data/file"))
        wait_for(lambda: _phase(node, "pod", "keeper", "-n", NS) == "Succeeded", timeout=180, what="keeper Succeeded")
        pv_name = _get(node, "pvc", "kept", "-n", NS)["spec"]["volumeName"]
        directory = node.data / "storage" / f"{pv_name}_{NS}_kept"
        _delete_pod(node, "keeper")
        node.kubectl("delete", "pvc", "kept", "-n", NS, "--timeout=60s")
        wait_for(lambda: _phase(node, "pv", pv_name) == "Released", timeout=90, what="the Retain PV Released")
        assert (directory / "file").read_text() == "keep-me\n"
    finally:
        if pv_name:
            node.kubectl("delete", "pv", pv_name, "--ignore-not-found", "--wait=false", check=False)
        node.kubectl("delete", "storageclass", "local-path-retain", "--ignore-not-found", check=False)
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)


def test_wait_for_first_consumer_static_volume_is_pre_bound_by_the_scheduler(node, tmp_path):
    """A no-provisioner WaitForFirstConsumer class: the scheduler finds the local volume that
    fits the pod's node, pre-binds it (claimRef + bound-by-controller), the PV controller
    completes the binding, and the pod runs on it."""
    folder = tmp_path / "static-local"
    folder.mkdir()
    node.kubectl("apply", "-f", "-", input=f"""apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {{name: local-static}}
provisioner: kubernetes.io/no-provisioner
volumeBindingMode: WaitForFirstConsumer
---
apiVersion: v1
kind: PersistentVolume
metadata: {{name: static-local}}
spec:
  capacity: {{storage: 1Gi}}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: local-static
  local: {{path: {folder}}}
  nodeAffinity:
    required:
      nodeSelectorTerms:
      - matchExpressions: [{{key: kubernetes.io/hostname, operator: In, values: [{node.node_name}]}}]
""")
    try:
        node.kubectl("apply", "-f", "-", input=_claim("static", "local-static"))
        wait_for(lambda: ("Normal", "WaitForFirstConsumer", "waiting for first consumer to be created before binding")
                 in _events(node, "static"), timeout=30, what="WaitForFirstConsumer event")
        assert _phase(node, "pv", "static-local") == "Available"
        node.kubectl("apply", "-f", "-", input=_pod("static-user", "static", "echo static > /data/file"))
        wait_for(lambda: _phase(node, "pod", "static-user", "-n", NS) == "Succeeded", timeout=180,
                 what="static-user Succeeded")
        claim = _get(node, "pvc", "static", "-n", NS)
        assert claim["spec"]["volumeName"] == "static-local" and claim["status"]["phase"] == "Bound"
        assert "volume.kubernetes.io/selected-node" not in claim["metadata"].get("annotations", {})
        volume = _get(node, "pv", "static-local")
        assert volume["spec"]["claimRef"]["uid"] == claim["metadata"]["uid"]
        assert volume["metadata"]["annotations"]["pv.kubernetes.io/bound-by-controller"] == "yes"
        assert (folder / "file").read_text() == "static\n"
    finally:
        node.kubectl("delete", "pod", "static-user", "-n", NS, "--ignore-not-found", "--timeout=60s", check=False)
        node.kubectl("delete", "pvc", "static", "-n", NS, "--ignore-not-found", "--timeout=60s", check=False)
        node.kubectl("delete", "pv", "static-local", "--ignore-not-found", "--wait=false", check=False)
        node.kubectl("delete", "storageclass", "local-static", "--ignore-not-found", check=False)


def test_a_claim_local_path_refuses_gets_upstreams_event_and_nothing_is_made(node):
    """ReadWriteMany is not a local-path mode: ProvisioningFailed with the provisioner's
    words, the selected node is taken back for the scheduler to retry, the pod stays Pending,
    and no volume or directory is left behind."""
    node.kubectl("apply", "-f", "-", input=_claim("shared", "local-path").replace("ReadWriteOnce", "ReadWriteMany")
                 + "---\n" + _pod("sharer", "shared", "true"))
    try:
        message = ('failed to provision volume with StorageClass "local-path": NodePath only supports '
                   "ReadWriteOnce and ReadWriteOncePod (1.22+) access modes")
        wait_for(lambda: ("Warning", "ProvisioningFailed", message) in _events(node, "shared"), timeout=60,
                 what="ProvisioningFailed event")
        wait_for(lambda: any(reason == "FailedScheduling" and 'running PreBind plugin "VolumeBinding"' in text
                             for _, reason, text in _events(node, "sharer")), timeout=60,
                 what="the pod's PreBind failing")
        assert _phase(node, "pvc", "shared", "-n", NS) == "Pending"
        assert _phase(node, "pod", "sharer", "-n", NS) == "Pending"
        assert not _get(node, "pod", "sharer", "-n", NS)["spec"].get("nodeName")
        assert node.kubectl_json("get", "pv")["items"] == []
        assert list((node.data / "storage").glob(f"*_{NS}_shared")) == []
    finally:
        node.kubectl("delete", "pod", "sharer", "-n", NS, "--ignore-not-found", "--timeout=60s", check=False)
        node.kubectl("delete", "pvc", "shared", "-n", NS, "--ignore-not-found", "--timeout=60s", check=False)


STATEFULSET = """apiVersion: apps/v1
kind: StatefulSet
metadata: {name: web, namespace: default}
spec:
  serviceName: web
  replicas: 3
  podManagementPolicy: Parallel
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: c
        image: busybox
        command: [sh, -c, "hostname >> /data/boots; exec sleep 3600"]
        volumeMounts: [{name: www, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: www, labels: {tier: data}}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 10Mi}}
"""


def test_statefulset_ordinals_keep_their_claims_across_pod_deletion_and_scale_down_and_up(node):
    """volumeClaimTemplates: one local-path claim per ordinal (`www-web-<i>`, with the set's
    selector labels), made before the pod; each pod appends its name to /data/boots on start,
    so the file counts the starts of that ordinal on that volume."""

    def running(names):
        pods = {p["metadata"]["name"]: p for p in node.kubectl_json("get", "pods", "-n", NS, "-l", "app=web")["items"]
                if not p["metadata"].get("deletionTimestamp")}
        return sorted(pods) == sorted(names) and all(p["status"].get("phase") == "Running" for p in pods.values())

    def boots(ordinal):
        claim = _get(node, "pvc", f"www-web-{ordinal}", "-n", NS)
        volume = claim["spec"]["volumeName"]
        path = node.data / "storage" / f"{volume}_{NS}_www-web-{ordinal}" / "boots"
        return path.read_text() if path.exists() else ""

    def wait_boots(ordinal, count):
        wait_for(lambda: boots(ordinal) == f"web-{ordinal}\n" * count, timeout=60,
                 what=f"web-{ordinal} started {count} time(s) on its volume")

    node.kubectl("apply", "-f", "-", input=STATEFULSET)
    try:
        wait_for(lambda: running(["web-0", "web-1", "web-2"]), timeout=240, what="web-0..2 Running")
        claims = {c["metadata"]["name"]: c for c in node.kubectl_json("get", "pvc", "-n", NS, "-l", "app=web")["items"]}
        assert sorted(claims) == ["www-web-0", "www-web-1", "www-web-2"]
        for claim in claims.values():
            assert claim["metadata"]["labels"] == {"app": "web", "tier": "data"}
            assert claim["status"]["phase"] == "Bound" and claim["spec"]["storageClassName"] == "local-path"
            assert not claim["metadata"].get("ownerReferences")  # Retain/Retain by default
        volumes = {name: c["spec"]["volumeName"] for name, c in claims.items()}
        for ordinal in range(3):
            wait_boots(ordinal, 1)

        old_uid = _get(node, "pod", "web-1", "-n", NS)["metadata"]["uid"]
        node.kubectl("delete", "pod", "web-1", "-n", NS, "--wait=false")
        wait_for(lambda: (p := _get(node, "pod", "web-1", "-n", NS)) is not None and p["metadata"]["uid"] != old_uid
                 and p["status"].get("phase") == "Running", timeout=120, what="web-1 made again and Running")
        wait_boots(1, 2)  # the new web-1 found the old web-1's data

        node.kubectl("scale", "statefulset", "web", "-n", NS, "--replicas=1")
        wait_for(lambda: running(["web-0"]), timeout=120, what="scaled down to web-0")
        wait_for(lambda: len(node.kubectl_json("get", "pods", "-n", NS, "-l", "app=web")["items"]) == 1,
                 timeout=60, what="web-1 and web-2 gone")
        kept = {c["metadata"]["name"]: c["spec"]["volumeName"]
                for c in node.kubectl_json("get", "pvc", "-n", NS, "-l", "app=web")["items"]}
        assert kept == volumes  # whenScaled: Retain keeps the scaled-down ordinals' claims, still Bound

        node.kubectl("scale", "statefulset", "web", "-n", NS, "--replicas=3")
        wait_for(lambda: running(["web-0", "web-1", "web-2"]), timeout=240, what="scaled up to web-0..2 again")
        wait_boots(1, 3)
        wait_boots(2, 2)
        wait_boots(0, 1)
        again = {c["metadata"]["name"]: c["spec"]["volumeName"]
                 for c in node.kubectl_json("get", "pvc", "-n", NS, "-l", "app=web")["items"]}
        assert again == volumes  # re-attached, not re-made
        web2 = _get(node, "pod", "web-2", "-n", NS)
        assert {"name": "www", "persistentVolumeClaim": {"claimName": "www-web-2"}} in web2["spec"]["volumes"]
        described = node.kubectl("describe", "pvc", "www-web-2", "-n", NS).stdout
        assert "Used By:       web-2" in described and f"Volume:        {volumes['www-web-2']}" in described
    finally:
        node.kubectl("delete", "statefulset", "web", "-n", NS, "--ignore-not-found", "--wait=false", check=False)
        wait_for(lambda: not node.kubectl_json("get", "pods", "-n", NS, "-l", "app=web")["items"], timeout=120,
                 what="the set's pods gone")
        node.kubectl("delete", "pvc", "-n", NS, "-l", "app=web", "--timeout=60s", check=False)
