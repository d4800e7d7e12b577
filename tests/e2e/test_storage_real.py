"""Claims used by real runc pods: protection holds a used claim in Terminating, and a
Recycle volume is scrubbed by a real recycler pod (busybox from the test registry) and
offered again. One single-node cluster in its own network namespace (netns_cluster.py)."""

from __future__ import annotations

import json
import os

import pytest

from tests.e2e.conftest import wait_for
from tests.e2e.netns_cluster import node_in_namespace

pytestmark = [pytest.mark.skipif(os.geteuid() != 0, reason="containers and network namespaces need root"),
              pytest.mark.host_network]  # a network-namespace cluster


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    # No default StorageClass: the class-less claim below binds to the class-less volume.
    yield from node_in_namespace(tmp_path_factory, server_args=("--disable", "local-storage"))


def _get(node, *args):
    result = node.kubectl("get", *args, "-o", "json", check=False)
    return json.loads(result.stdout) if result.returncode == 0 else None


def _phase(node, *args):
    return ((_get(node, *args) or {}).get("status") or {}).get("phase")


def test_a_used_claim_stays_terminating_then_recycle_scrubs_the_host_path_volume(node, tmp_path):
    data = tmp_path / "recycled"
    data.mkdir()
    (data / "old-file").write_text("secret")
    (data / ".hidden").write_text("secret")
    (data / "dir").mkdir()
    (data / "dir" / "nested").write_text("secret")
    node.kubectl("apply", "-f", "-", input=f"""apiVersion: v1
kind: PersistentVolume
metadata: {{name: scrubbed}}
spec:
  capacity: {{storage: 1Gi}}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Recycle
  hostPath: {{path: {data}}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: scratch, namespace: default}}
spec:
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 1Gi}}}}
---
apiVersion: v1
kind: Pod
metadata: {{name: writer, namespace: default}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: c
    image: busybox
    command: [sh, -c, "echo from-pod > /data/written && sleep 3600"]
    volumeMounts: [{{name: data, mountPath: /data}}]
  volumes: [{{name: data, persistentVolumeClaim: {{claimName: scratch}}}}]
""")
    wait_for(lambda: _phase(node, "pvc", "scratch", "-n", "default") == "Bound", timeout=60, what="claim Bound")
    wait_for(lambda: _phase(node, "pod", "writer", "-n", "default") == "Running", timeout=120, what="writer Running")
    wait_for(lambda: (data / "written").exists(), timeout=30, what="the pod's write on the host path")

    # In use by a running pod: deleting the claim leaves it Terminating.
    node.kubectl("delete", "pvc", "scratch", "-n", "default", "--wait=false")
    wait_for(lambda: (_get(node, "pvc", "scratch", "-n", "default") or {}).get("metadata", {}).get("deletionTimestamp"),
             timeout=30, what="claim marked for deletion")
    row = node.kubectl("get", "pvc", "scratch", "-n", "default", "--no-headers").stdout.split()
    assert row[:3] == ["scratch", "Terminating", "scrubbed"]
    described = node.kubectl("describe", "pvc", "scratch", "-n", "default").stdout
    assert "Used By:       writer" in described
    assert _phase(node, "pv", "scrubbed") == "Bound"

    # The pod goes: the claim goes, the volume is Released, recycled by a real pod, Available again.
    node.kubectl("delete", "pod", "writer", "-n", "default", "--wait=false")
    wait_for(lambda: _get(node, "pvc", "scratch", "-n", "default") is None, timeout=90, what="claim gone")
    wait_for(lambda: _phase(node, "pv", "scrubbed") == "Available", timeout=180, what="volume Available again")
    volume = _get(node, "pv", "scrubbed")
    assert "claimRef" not in volume["spec"]
    assert data.is_dir() and list(data.iterdir()) == []
    events = node.kubectl_json("get", "events", "-n", "default", "--field-selector",
                               "involvedObject.name=scrubbed")["items"]
    reasons = [(e["reason"], e["message"]) for e in events]
    assert ("VolumeRecycled", "Volume recycled") in reasons, reasons
    assert any(reason == "RecyclerPod" and message.startswith("Recycler pod: ") for reason, message in reasons), reasons
    wait_for(lambda: _get(node, "pod", "recycler-for-scrubbed", "-n", "default") is None, timeout=60,
             what="recycler pod removed")
    node.kubectl("delete", "pv", "scrubbed", "--wait=false")
