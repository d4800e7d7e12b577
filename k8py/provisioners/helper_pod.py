"""Remove a local-path volume's directory on the node it lives on, with a helper pod.

The provisioner runs in the server; a volume on a node that is an agent on
another machine has its directory there, out of the server's reach. As
upstream's local-path-provisioner, a short-lived pod on that node does the
work: `helper-pod-delete-<pv>` in kube-system, pinned to the node by
`nodeName` (tolerating every taint), the volumes' base directory mounted
from the host, `rm -rf` of the volume's folder. The delete succeeds when the
pod does; the pod is removed either way.
"""

from __future__ import annotations

import asyncio
import time

from k8py.client import ApiError

NAMESPACE = "kube-system"
IMAGE = "busybox"
PREFIX = "helper-pod-delete-"
TIMEOUT_SECONDS = 120.0
POLL_SECONDS = 0.5


class HelperPodError(Exception):
    pass


def helper_pod(pv_name: str, node_name: str, base: str, folder: str) -> dict:
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": PREFIX + pv_name, "namespace": NAMESPACE,
                     "labels": {"app.kubernetes.io/managed-by": "k8py-local-path"}},
        "spec": {
            "nodeName": node_name, "restartPolicy": "Never", "automountServiceAccountToken": False,
            "terminationGracePeriodSeconds": 1, "tolerations": [{"operator": "Exists"}],
            "containers": [{"name": "helper-pod", "image": IMAGE, "imagePullPolicy": "IfNotPresent",
                            "command": ["rm", "-rf", f"/data/{folder}"],
                            "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
            "volumes": [{"name": "data", "hostPath": {"path": base, "type": "DirectoryOrCreate"}}]}}


async def remove_on_node(client, pv_name: str, node_name: str, base: str, folder: str,
                         timeout: float = TIMEOUT_SECONDS) -> None:
    pods = client.resource("v1", "pods", NAMESPACE)
    pod = helper_pod(pv_name, node_name, base, folder)
    name = pod["metadata"]["name"]
    try:
        await pods.create(pod)
    except ApiError as e:
        if not e.already_exists:
            raise
    try:
        deadline = time.monotonic() + timeout
        while True:
            phase = ((await pods.get(name)).get("status") or {}).get("phase")
            if phase == "Succeeded":
                return
            if phase == "Failed":
                raise HelperPodError(f"helper pod {NAMESPACE}/{name} failed on node {node_name}")
            if time.monotonic() > deadline:
                raise HelperPodError(f"helper pod {NAMESPACE}/{name} did not finish on node {node_name} "
                                     f"within {int(timeout)}s")
            await asyncio.sleep(POLL_SECONDS)
    finally:
        try:
            await pods.delete(name, grace_period_seconds=0)
        except ApiError as e:
            if not e.not_found:
                raise
