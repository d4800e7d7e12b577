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


def _events(node, name):
    items = node.kubectl_json("get", "events", "-n", "default", "--field-selector",
                              f"involvedObject.name={name}")["items"]
    return [(e["type"], e["reason"], e["message"]) for e in items]


def _claim_pod(name, command, extra_volumes="", extra_mounts="", security=""):
    return f"""apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: default}}
spec:
  terminationGracePeriodSeconds: 1
  restartPolicy: Never
  {security}
  containers:
  - name: c
    image: busybox
    command: [sh, -c, {json.dumps(command)}]
    volumeMounts:
    - {{name: data, mountPath: /data}}
    {extra_mounts}
  volumes:
  - {{name: data, persistentVolumeClaim: {{claimName: local-claim}}}}
  {extra_volumes}
"""


def test_claim_mounts_fs_group_sub_path_read_only_nfs_failure_and_data_across_a_restart(node, tmp_path):
    """A `local` PV through a claim: fsGroup ownership, a subPath into it, the same claim read-only;
    an nfs volume the host can't mount gets upstream's FailedMount and retries while other pods
    run; the data is there for the next pod after the server and its agent restart."""
    backing = tmp_path / "local-volume"
    backing.mkdir(mode=0o750)
    os.chmod(backing, 0o750)
    node.kubectl("apply", "-f", "-", input=f"""apiVersion: v1
kind: PersistentVolume
metadata: {{name: local-pv}}
spec:
  capacity: {{storage: 1Gi}}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: local-manual
  local: {{path: {backing}}}
  nodeAffinity:
    required:
      nodeSelectorTerms:
      - matchExpressions: [{{key: kubernetes.io/hostname, operator: In, values: [{node.node_name}]}}]
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: local-claim, namespace: default}}
spec:
  storageClassName: local-manual
  accessModes: [ReadWriteOnce]
  resources: {{requests: {{storage: 1Gi}}}}
""")
    wait_for(lambda: _phase(node, "pvc", "local-claim", "-n", "default") == "Bound", timeout=60, what="claim Bound")
    # The nfs pod first: its failing mount must not hold up the other pod.
    node.kubectl("apply", "-f", "-", input="""apiVersion: v1
kind: Pod
metadata: {name: nfs-user, namespace: default}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - {name: c, image: busybox, command: [sleep, "3600"], volumeMounts: [{name: share, mountPath: /share}]}
  volumes: [{name: share, nfs: {server: 127.0.0.1, path: /exports}}]
""")
    writer = ("echo kept > /data/file && echo in-sub > /sub/file && "
              "( (echo x > /ro/x) 2>/dev/null && echo ro-writable || echo ro-refused) && "
              "stat -c 'group=%g mode=%a' /data && id -G")
    node.kubectl("apply", "-f", "-", input=_claim_pod(
        "writer-local", writer, security="securityContext: {fsGroup: 2345}",
        extra_mounts="- {name: data, mountPath: /sub, subPath: app}\n    - {name: ro, mountPath: /ro}",
        extra_volumes="- {name: ro, persistentVolumeClaim: {claimName: local-claim, readOnly: true}}"))
    wait_for(lambda: _phase(node, "pod", "writer-local", "-n", "default") == "Succeeded", timeout=180,
             what="writer Succeeded")
    out = node.kubectl("logs", "writer-local", "-n", "default").stdout.split("\n")
    assert out[0] == "ro-refused"
    assert out[1] == "group=2345 mode=2770", out      # 0750 + group rwx + setgid (upstream's rule)
    assert "2345" in out[2].split()
    assert (backing / "file").read_text() == "kept\n" and (backing / "app" / "file").read_text() == "in-sub\n"
    assert os.stat(backing / "file").st_gid == 2345       # made in a setgid folder of the fsGroup
    assert not (backing / "x").exists()

    def failed_mount():
        return [m for t, r, m in _events(node, "nfs-user") if t == "Warning" and r == "FailedMount"]
    wait_for(failed_mount, timeout=60, what="FailedMount for the nfs volume")
    message = failed_mount()[0]
    assert message.startswith('MountVolume.SetUp failed for volume "share" : mount failed: exit status 32\n'
                              "Mounting command: mount\nMounting arguments: -t nfs 127.0.0.1:/exports "), message
    assert "kubernetes.io~nfs/share\nOutput: " in message, message
    pod = _get(node, "pod", "nfs-user", "-n", "default")
    assert pod["status"]["phase"] == "Pending"
    assert pod["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "ContainerCreating"
    # Retried with back-off: the event's count grows.
    wait_for(lambda: any(e["reason"] == "FailedMount" and e.get("count", 1) >= 2 for e in node.kubectl_json(
        "get", "events", "-n", "default", "--field-selector", "involvedObject.name=nfs-user")["items"]),
        timeout=60, what="the nfs mount retried")
    node.kubectl("delete", "pod", "nfs-user", "writer-local", "-n", "default", "--wait=false")
    wait_for(lambda: _get(node, "pod", "nfs-user", "-n", "default") is None, timeout=90, what="nfs pod gone")

    # The server (and the agent it runs) restart: the claim, its volume and the data stay.
    node.server.terminate()
    node.server.wait(60)
    node.start_server()
    wait_for(lambda: node.kubectl("get", "nodes", check=False).stdout.count(" Ready") == 1, timeout=90,
             what="node Ready after the restart")
    assert _get(node, "pvc", "local-claim", "-n", "default")["spec"]["volumeName"] == "local-pv"
    node.kubectl("apply", "-f", "-", input=_claim_pod("reader-local", "cat /data/file /data/app/file"))
    wait_for(lambda: _phase(node, "pod", "reader-local", "-n", "default") == "Succeeded", timeout=180,
             what="reader Succeeded")
    assert node.kubectl("logs", "reader-local", "-n", "default").stdout == "kept\nin-sub\n"
    assert _phase(node, "pvc", "local-claim", "-n", "default") == "Bound"
    node.kubectl("delete", "pod", "reader-local", "-n", "default", "--wait=false")
    wait_for(lambda: _get(node, "pod", "reader-local", "-n", "default") is None, timeout=90, what="reader gone")
    node.kubectl("delete", "pvc", "local-claim", "-n", "default")
    node.kubectl("delete", "pv", "local-pv", "--wait=false")
