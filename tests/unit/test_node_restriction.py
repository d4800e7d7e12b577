"""NodeRestriction admission: a kubelet changes only its own Node, pods, Lease and tokens."""

import pytest

from k8py.api.builtin import builtin_registry
from k8py.apimachinery.errors import StatusError
from k8py.apiserver import node_restriction as nr
from k8py.apiserver.authn import UserInfo

NODE_A = UserInfo("system:node:a", groups=("system:nodes", "system:authenticated"))
ADMIN = UserInfo("system:admin", groups=("system:masters",))
REG = builtin_registry()
NODES, PODS = REG.lookup("", "v1", "nodes"), REG.lookup("", "v1", "pods")
LEASES = REG.lookup("coordination.k8s.io", "v1", "leases")
PVCS = REG.lookup("", "v1", "persistentvolumeclaims")


class FakeAPI:
    def __init__(self, pods=()):
        self.nodes = {"a": {"metadata": {"name": "a", "uid": "uid-a"}}}
        self.pods = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in pods}

    def node(self, name):
        return self.nodes.get(name)

    def lookup_object(self, plural, namespace, name):
        return self.pods.get((namespace, name)) if plural == "pods" else None


def node(name="a", labels=None, taints=None):
    return {"metadata": {"name": name, "labels": dict(labels or {})}, "spec": {"taints": taints or []}}


def mirror(node_name="a", uid="uid-a", **spec):
    return {"metadata": {"name": "static-a", "namespace": "kube-system",
                         "annotations": {nr.MIRROR_ANNOTATION: "h"},
                         "ownerReferences": [{"apiVersion": "v1", "kind": "Node", "name": node_name, "uid": uid,
                                              "controller": True}]},
            "spec": {"nodeName": node_name, **spec}}


def refused(fn, *args) -> str:
    with pytest.raises(StatusError) as e:
        fn(*args)
    assert e.value.code == 403
    return e.value.message


def test_node_changes_only_its_own_node_and_allowed_labels():
    api = FakeAPI()
    nr.admit_create(api, NODES, node(labels={"kubernetes.io/hostname": "a", "example.com/x": "1",
                                             "node.kubernetes.io/instance-type": "k8py"}), NODE_A)
    assert refused(nr.admit_update, api, NODES, node("b"), node("b"), NODE_A, "") == \
        'nodes "b" is forbidden: node "a" is not allowed to modify node "b"'
    assert "node-role.kubernetes.io/control-plane" in refused(
        nr.admit_create, api, NODES, node(labels={"node-role.kubernetes.io/control-plane": "true"}), NODE_A)
    msg = refused(nr.admit_update, api, NODES, node(labels={"x.node-restriction.kubernetes.io/pool": "p"}),
                  node(), NODE_A, "")
    assert msg == 'nodes "a" is forbidden: is not allowed to modify labels: x.node-restriction.kubernetes.io/pool'
    assert refused(nr.admit_update, api, NODES, node(taints=[{"key": "k", "effect": "NoSchedule"}]), node(),
                   NODE_A, "status").endswith('node "a" is not allowed to modify taints')
    nr.admit_update(api, NODES, node(labels={"kubelet.kubernetes.io/x": "y"}), node(), NODE_A, "")
    assert refused(nr.admit_delete, api, NODES, node("b"), NODE_A).endswith('not allowed to modify node "b"')
    # Other users are not restricted.
    nr.admit_update(api, NODES, node("b", labels={"node-role.kubernetes.io/x": ""}), node("b"), ADMIN, "")


def test_mirror_pods_only_for_itself_and_without_references():
    api = FakeAPI()
    nr.admit_create(api, PODS, mirror(), NODE_A)
    plain = mirror()
    del plain["metadata"]["annotations"]
    assert 'can only create mirror pods' in refused(nr.admit_create, api, PODS, plain, NODE_A)
    assert refused(nr.admit_create, api, PODS, mirror(node_name="b"), NODE_A).endswith(
        'node "a" can only create pods with spec.nodeName set to itself')
    assert refused(nr.admit_create, api, PODS, mirror(uid="other"), NODE_A).endswith(
        "node a UID mismatch: expected uid-a got other")
    with_secret = mirror(volumes=[{"name": "s", "secret": {"secretName": "x"}}])
    assert refused(nr.admit_create, api, PODS, with_secret, NODE_A).endswith(
        'node "a" can not create pods that reference secrets')
    assert refused(nr.admit_create, api, PODS, mirror(serviceAccountName="default"), NODE_A).endswith(
        'node "a" can not create pods that reference a service account')


def test_pod_status_delete_and_eviction_only_on_itself():
    ours = {"metadata": {"name": "p", "namespace": "d", "labels": {"a": "1"}}, "spec": {"nodeName": "a"}}
    theirs = {"metadata": {"name": "q", "namespace": "d"}, "spec": {"nodeName": "b"}}
    api = FakeAPI([ours, theirs])
    nr.admit_update(api, PODS, ours, ours, NODE_A, "status")
    assert refused(nr.admit_update, api, PODS, theirs, theirs, NODE_A, "status").endswith(
        'node "a" can only update pod status for pods with spec.nodeName set to itself')
    relabelled = {**ours, "metadata": {**ours["metadata"], "labels": {"a": "2"}}}
    assert "cannot update labels through pod status" in refused(
        nr.admit_update, api, PODS, relabelled, ours, NODE_A, "status")
    assert "can only create and delete mirror pods" in refused(nr.admit_update, api, PODS, ours, ours, NODE_A, "")
    nr.admit_delete(api, PODS, ours, NODE_A)
    assert refused(nr.admit_delete, api, PODS, theirs, NODE_A).endswith(
        'node "a" can only delete pods with spec.nodeName set to itself')
    nr.admit_eviction(api, ours, NODE_A)
    assert "can only evict pods with spec.nodeName set to itself" in refused(nr.admit_eviction, api, theirs, NODE_A)


def test_lease_and_token_requests():
    pod = {"metadata": {"name": "p", "namespace": "d", "uid": "u1"}, "spec": {"nodeName": "a"}}
    elsewhere = {"metadata": {"name": "q", "namespace": "d", "uid": "u2"}, "spec": {"nodeName": "b"}}
    api = FakeAPI([pod, elsewhere])
    lease = {"metadata": {"name": "a", "namespace": "kube-node-lease"}}
    nr.admit_create(api, LEASES, lease, NODE_A)
    other = {"metadata": {"name": "b", "namespace": "kube-node-lease"}}
    assert refused(nr.admit_create, api, LEASES, other, NODE_A).endswith(
        "can only access node lease with the same name as the requesting node")

    def request(ref):
        return {"spec": {"boundObjectRef": ref}}
    nr.admit_token_request(api, "d", "sa", request({"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "u1"}),
                           NODE_A)
    assert refused(nr.admit_token_request, api, "d", "sa", request(None), NODE_A).endswith(
        "node requested token not bound to a pod")
    assert refused(nr.admit_token_request, api, "d", "sa",
                   request({"apiVersion": "v1", "kind": "Pod", "name": "q", "uid": "u2"}), NODE_A).endswith(
        "node requested token bound to a pod scheduled on a different node")
    with pytest.raises(StatusError) as e:
        nr.admit_token_request(api, "d", "sa", request({"apiVersion": "v1", "kind": "Pod", "name": "gone",
                                                        "uid": "u3"}), NODE_A)
    assert e.value.code == 404


def test_pvc_status_only_capacity_and_conditions():
    old = {"metadata": {"name": "c", "namespace": "d"}, "status": {"phase": "Bound"}}
    grown = {"metadata": {"name": "c", "namespace": "d"}, "status": {"phase": "Bound",
                                                                    "capacity": {"storage": "2Gi"}}}
    nr.admit_update(FakeAPI(), PVCS, grown, old, NODE_A, "status")
    lost = {"metadata": {"name": "c", "namespace": "d"}, "status": {"phase": "Lost"}}
    assert "not allowed to update fields other than status.capacity" in refused(
        nr.admit_update, FakeAPI(), PVCS, lost, old, NODE_A, "status")
