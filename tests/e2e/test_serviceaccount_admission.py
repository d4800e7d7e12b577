"""ServiceAccount admission with the real kubectl: pods naming a missing account are
refused as upstream refuses them, mirror pods are exempt, and controllers whose pods
were refused in a namespace without its `default` account make them once it exists."""

from __future__ import annotations

import json
import signal

import pytest

from tests.e2e.conftest import start_server, wait_for
from tests.e2e.fake_nodes import node_manifest
from tests.e2e.test_controllers_manager import ManagerProcess

NS = "sa-admission"


@pytest.fixture(scope="module")
def bare(tmp_path_factory):
    """A server whose controller-manager runs without the serviceaccount controller,
    so a namespace stays without its `default` account until the test makes it."""
    srv = start_server(tmp_path_factory.mktemp("k8py-sa"), extra=["--disable", "controller-manager"])
    manager = None
    try:
        manager = ManagerProcess(srv, "--controllers", "replicaset,job,statefulset,daemonset", "--no-leader-elect")
        srv.kubectl("create", "-f", "-", input=node_manifest("sa-node"))
        # Registered not-ready (TaintNodesByCondition); no node lifecycle controller runs here to
        # take the taint off, so do it as it would.
        srv.kubectl("taint", "node", "sa-node", "node.kubernetes.io/not-ready:NoSchedule-")
        srv.kubectl("create", "namespace", NS)
        yield srv
    finally:
        if manager:
            manager.kill(signal.SIGTERM)
        srv.stop()


def pod(name: str, **spec) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                       "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}})


def create(server, body: str, namespace: str = NS):
    return server.kubectl("create", "-n", namespace, "-f", "-", input=body, check=False)


def test_a_pod_naming_a_missing_service_account_is_forbidden(bare):
    result = create(bare, pod("x", serviceAccountName="nosuch"))
    assert result.returncode == 1
    assert result.stderr.strip() == (f'Error from server (Forbidden): error when creating "STDIN": pods "x" is '
                                     f"forbidden: error looking up service account {NS}/nosuch: "
                                     f'serviceaccount "nosuch" not found')
    # Without a name the pod runs as `default`, which this namespace does not have yet.
    result = create(bare, pod("y"))
    assert result.returncode == 1
    assert (f'pods "y" is forbidden: error looking up service account {NS}/default: '
            f'serviceaccount "default" not found') in result.stderr
    assert bare.kubectl_json("get", "pods", "-n", NS)["items"] == []


def test_an_existing_account_is_used_with_its_settings(bare):
    bare.kubectl("create", "-n", NS, "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "quiet"},
        "automountServiceAccountToken": False, "imagePullSecrets": [{"name": "regcred"}]}))
    try:
        bare.kubectl("create", "-n", NS, "-f", "-", input=pod("quiet-pod", serviceAccountName="quiet"))
        spec = bare.kubectl_json("get", "pod", "quiet-pod", "-n", NS)["spec"]
        assert spec["serviceAccountName"] == spec["serviceAccount"] == "quiet"
        assert spec["imagePullSecrets"] == [{"name": "regcred"}]
        # The account opts out of the token, so no kube-api-access volume.
        assert not spec.get("volumes") and not spec["containers"][0].get("volumeMounts")
    finally:
        bare.kubectl("delete", "pod", "quiet-pod", "-n", NS, "--ignore-not-found", "--grace-period=0", "--force")
        bare.kubectl("delete", "sa", "quiet", "-n", NS, "--ignore-not-found")


def test_mirror_pods_are_exempt_but_may_not_name_accounts(bare):
    mirror = {"annotations": {"kubernetes.io/config.mirror": "abc"}}
    body = json.loads(pod("static-sa-node", nodeName="sa-node"))
    body["metadata"].update(mirror)
    bare.kubectl("create", "-n", NS, "-f", "-", input=json.dumps(body))
    try:
        spec = bare.kubectl_json("get", "pod", "static-sa-node", "-n", NS)["spec"]
        assert "serviceAccountName" not in spec and not spec.get("volumes")
    finally:
        bare.kubectl("delete", "pod", "static-sa-node", "-n", NS, "--grace-period=0", "--force")
    body["metadata"]["name"] = "static-with-sa"
    body["spec"]["serviceAccountName"] = "default"
    result = create(bare, json.dumps(body))
    assert result.returncode == 1
    assert 'pods "static-with-sa" is forbidden: a mirror pod may not reference service accounts' in result.stderr


WORKLOADS = """apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: busybox}]}
---
apiVersion: batch/v1
kind: Job
metadata: {name: once}
spec:
  template:
    spec: {restartPolicy: Never, containers: [{name: c, image: busybox}]}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 1
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: c, image: busybox}]}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec: {containers: [{name: c, image: busybox}]}
"""


def test_controllers_make_their_pods_once_the_default_account_exists(bare):
    bare.kubectl("apply", "-n", NS, "-f", "-", input=WORKLOADS)

    def failures():
        events = bare.kubectl_json("get", "events", "-n", NS, "--field-selector", "reason=FailedCreate")["items"]
        return {e["involvedObject"]["kind"]: e["message"] for e in events}
    refused = wait_for(lambda: (f := failures()) and len(f) == 4 and f, timeout=60,
                       what="each controller's FailedCreate event")
    assert refused["ReplicaSet"] == (f'Error creating: pods "web-" is forbidden: error looking up service account '
                                     f'{NS}/default: serviceaccount "default" not found')
    assert all(f"error looking up service account {NS}/default" in m for m in refused.values()), refused
    assert bare.kubectl_json("get", "pods", "-n", NS)["items"] == []
    # Let the controllers back off for a while, as they would while the account is missing.
    wait_for(lambda: max(e.get("count", 1) for e in bare.kubectl_json(
        "get", "events", "-n", NS, "--field-selector", "reason=FailedCreate,involvedObject.name=web")["items"]) >= 3,
        timeout=60, what="the ReplicaSet to retry")
    bare.kubectl("create", "serviceaccount", "default", "-n", NS)

    def owners():
        pods = bare.kubectl_json("get", "pods", "-n", NS)["items"]
        return sorted(p["metadata"]["ownerReferences"][0]["kind"] for p in pods
                      if p["metadata"].get("ownerReferences"))
    # Promptly: within a few of the controllers' back-off steps, not minutes.
    wait_for(lambda: owners() == ["DaemonSet", "Job", "ReplicaSet", "ReplicaSet", "StatefulSet"], timeout=30,
             what="every controller's pods once the account exists")


MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"


def test_service_account_token_automount_can_be_opted_out_of(server, namespace):
    """Upstream's conformance case: the token is mounted unless the pod says false, or the pod
    says nothing and its ServiceAccount says false."""
    for name, automount in (("mount-sa", True), ("nomount-sa", False)):
        server.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name},
            "automountServiceAccountToken": automount}))
    cases = []
    for account, account_says in (("default", None), ("mount-sa", True), ("nomount-sa", False)):
        for pod_says in (None, True, False):
            expected = pod_says if pod_says is not None else account_says is not False
            cases.append((account, pod_says, expected))
    for i, (account, pod_says, expected) in enumerate(cases):
        spec = {"serviceAccountName": account, "restartPolicy": "Never",
                **({"automountServiceAccountToken": pod_says} if pod_says is not None else {})}
        created = json.loads(server.kubectl("create", "-n", namespace, "-o", "json", "-f", "-",
                                            input=pod(f"token-{i}", **spec)).stdout)
        mounted = any(m["mountPath"] == MOUNT_PATH for c in created["spec"]["containers"]
                      for m in c.get("volumeMounts") or [])
        assert mounted == expected, (account, pod_says, created["spec"])
