"""A real `k8py server` whose nodes are plain API objects: pods get bound, nothing runs.

Without a kubelet, deleted pods that were bound stay Terminating until they are
force-deleted, which the namespace fixture does for them, as a kubelet would.
"""

from __future__ import annotations

import json
import uuid

from tests.e2e.conftest import start_server, wait_for_default_service_account


def node_manifest(name: str) -> str:
    """A Ready node with 2 CPUs, 4Gi and 110 pods allocatable."""
    return json.dumps({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
        "status": {"allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110"},
                   "capacity": {"cpu": "2", "memory": "4Gi", "pods": "110"},
                   "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}})


def server_with_nodes(tmp_path_factory, prefix: str, nodes):
    """Fixture body: a started server with `nodes` registered; stopped afterwards."""
    srv = start_server(tmp_path_factory.mktemp(prefix))
    try:
        for n in nodes:
            srv.kubectl("create", "-f", "-", input=node_manifest(n))
        yield srv
    finally:
        srv.stop()


def scratch_namespace(cluster, prefix: str):
    """Fixture body: a fresh namespace, emptied (pods forced) and deleted afterwards."""
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    cluster.kubectl("create", "namespace", name)
    wait_for_default_service_account(cluster, name)
    yield name
    cluster.kubectl("delete", "pods", "--all", "-n", name, "--force", "--grace-period=0", check=False)
    cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)
