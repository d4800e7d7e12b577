"""Upstream controller conformance behaviours that need no running container:
the controller-manager of a real `k8py server` acting on Pods that stay
Pending (no node agent), driven by the real kubectl."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import wait_for

HOLD = "conformance.k8py.io/hold"
# Their pods stay Pending, so deleting one skips the graceful kubelet path a running pod takes.
pods_never_run = pytest.mark.simulated_kubelet


def rc(name: str, replicas: int, labels: dict, pod_finalizers: list[str] | None = None) -> str:
    meta = {"labels": labels, **({"finalizers": pod_finalizers} if pod_finalizers else {})}
    return json.dumps({"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": name},
                       "spec": {"replicas": replicas, "selector": labels,
                                "template": {"metadata": meta,
                                             "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}})


def pods(server, namespace: str, selector: str) -> list[dict]:
    return server.kubectl_json("get", "pods", "-n", namespace, "-l", selector)["items"]


def owners(pod: dict) -> list[str]:
    return [o["name"] for o in pod["metadata"].get("ownerReferences") or []]


def exists(server, *args) -> bool:
    return server.kubectl("get", *args, check=False).returncode == 0


@pods_never_run
def test_gc_background_deletion_of_an_rc_deletes_its_pods(server, namespace):
    server.kubectl("create", "-n", namespace, "-f", "-", input=rc("simpletest.rc", 2, {"name": "gc-bg"}))
    wait_for(lambda: len(pods(server, namespace, "name=gc-bg")) == 2, what="the RC's pods")
    server.kubectl("delete", "rc", "simpletest.rc", "-n", namespace, "--cascade=background")
    wait_for(lambda: not pods(server, namespace, "name=gc-bg"), what="the pods to be collected")


@pods_never_run
def test_gc_orphan_deletion_of_an_rc_keeps_its_pods(server, namespace):
    server.kubectl("create", "-n", namespace, "-f", "-", input=rc("simpletest.rc", 3, {"name": "gc-orphan"}))
    wait_for(lambda: len(pods(server, namespace, "name=gc-orphan")) == 3, what="the RC's pods")
    server.kubectl("delete", "rc", "simpletest.rc", "-n", namespace, "--cascade=orphan")
    assert not exists(server, "rc", "simpletest.rc", "-n", namespace)
    left = pods(server, namespace, "name=gc-orphan")
    assert len(left) == 3 and not any(owners(p) for p in left)
    assert not any(p["metadata"].get("deletionTimestamp") for p in left)


@pods_never_run
def test_gc_foreground_deletion_keeps_the_rc_until_its_pods_are_gone(server, namespace):
    server.kubectl("create", "-n", namespace, "-f", "-",
                   input=rc("simpletest.rc", 10, {"name": "gc-fg"}, pod_finalizers=[HOLD]))
    wait_for(lambda: len(pods(server, namespace, "name=gc-fg")) == 10, what="the RC's pods")
    server.kubectl("delete", "rc", "simpletest.rc", "-n", namespace, "--cascade=foreground", "--wait=false")
    wait_for(lambda: all(p["metadata"].get("deletionTimestamp") for p in pods(server, namespace, "name=gc-fg")),
             what="every pod to be deleted first")
    held = server.kubectl_json("get", "rc", "simpletest.rc", "-n", namespace)
    assert held["metadata"]["deletionTimestamp"] and "foregroundDeletion" in held["metadata"]["finalizers"]
    for pod in pods(server, namespace, "name=gc-fg"):
        server.kubectl("patch", "pod", pod["metadata"]["name"], "-n", namespace, "--type=merge",
                       "-p", '{"metadata":{"finalizers":null}}')
    wait_for(lambda: not exists(server, "rc", "simpletest.rc", "-n", namespace), what="the RC to go last")
    assert not pods(server, namespace, "name=gc-fg")


@pods_never_run
def test_gc_keeps_dependents_that_have_another_valid_owner(server, namespace):
    server.kubectl("create", "-n", namespace, "-f", "-", input=rc("simpletest-rc-to-be-deleted", 6,
                                                                  {"name": "gc-multi"}, pod_finalizers=[HOLD]))
    server.kubectl("create", "-n", namespace, "-f", "-", input=rc("simpletest-rc-to-stay", 0, {"name": "stay"}))
    stay = server.kubectl_json("get", "rc", "simpletest-rc-to-stay", "-n", namespace)
    wait_for(lambda: len(pods(server, namespace, "name=gc-multi")) == 6, what="the RC's pods")
    shared = sorted(p["metadata"]["name"] for p in pods(server, namespace, "name=gc-multi"))[:3]
    for name in shared:
        pod = server.kubectl_json("get", "pod", name, "-n", namespace)
        refs = pod["metadata"]["ownerReferences"] + [{"apiVersion": "v1", "kind": "ReplicationController",
                                                      "name": "simpletest-rc-to-stay",
                                                      "uid": stay["metadata"]["uid"]}]
        server.kubectl("patch", "pod", name, "-n", namespace, "--type=merge",
                       "-p", json.dumps({"metadata": {"ownerReferences": refs}}))
    server.kubectl("delete", "rc", "simpletest-rc-to-be-deleted", "-n", namespace, "--cascade=foreground",
                   "--wait=false")

    def only_shared_left_waiting():
        items = pods(server, namespace, "name=gc-multi")
        doomed = [p for p in items if p["metadata"]["name"] not in shared]
        return all(p["metadata"].get("deletionTimestamp") for p in doomed) and \
            all(owners(p) == ["simpletest-rc-to-stay"] for p in items if p["metadata"]["name"] in shared)
    wait_for(only_shared_left_waiting, what="unshared pods deleted, shared ones released")
    for pod in pods(server, namespace, "name=gc-multi"):
        server.kubectl("patch", "pod", pod["metadata"]["name"], "-n", namespace, "--type=merge",
                       "-p", '{"metadata":{"finalizers":null}}')
    wait_for(lambda: sorted(p["metadata"]["name"] for p in pods(server, namespace, "name=gc-multi")) == shared,
             what="the shared pods to remain")
    assert not any(p["metadata"].get("deletionTimestamp") for p in pods(server, namespace, "name=gc-multi"))
    wait_for(lambda: not exists(server, "rc", "simpletest-rc-to-be-deleted", "-n", namespace),
             what="the deleted RC to go")


@pods_never_run
def test_gc_is_not_blocked_by_a_dependency_cycle(server, namespace):
    uids = {}
    for name in ("pod1", "pod2", "pod3"):
        server.kubectl("run", name, "-n", namespace, "--image=busybox", "--restart=Never", "--labels=gc=cycle")
        uids[name] = server.kubectl_json("get", "pod", name, "-n", namespace)["metadata"]["uid"]
    for child, owner in (("pod1", "pod3"), ("pod2", "pod1"), ("pod3", "pod2")):
        ref = {"apiVersion": "v1", "kind": "Pod", "name": owner, "uid": uids[owner], "blockOwnerDeletion": True}
        server.kubectl("patch", "pod", child, "-n", namespace, "--type=merge",
                       "-p", json.dumps({"metadata": {"ownerReferences": [ref]}}))
    server.kubectl("delete", "pod", "pod1", "-n", namespace, "--wait=false")
    wait_for(lambda: not pods(server, namespace, "gc=cycle"), timeout=20, what="every pod of the cycle deleted")


@pods_never_run
def test_deleting_a_namespace_removes_its_pods_and_services(server):
    ns = "conformance-nsdelete"
    server.kubectl("create", "namespace", ns)
    server.kubectl("run", "test-pod", "-n", ns, "--image=busybox", "--restart=Never")
    server.kubectl("create", "service", "clusterip", "test-service", "--tcp=80:80", "-n", ns)
    server.kubectl("delete", "namespace", ns, "--timeout=60s")
    assert not exists(server, "namespace", ns)
    server.kubectl("create", "namespace", ns)
    try:
        assert server.kubectl_json("get", "pods", "-n", ns)["items"] == []
        assert server.kubectl_json("get", "services", "-n", ns)["items"] == []
    finally:
        server.kubectl("delete", "namespace", ns, "--wait=false")


def test_root_ca_configmap_is_created_recreated_and_reconciled(server, namespace):
    ca = (server.data_dir / "server" / "tls" / "server-ca.crt").read_text()

    def root_ca():
        got = server.kubectl("get", "cm", "kube-root-ca.crt", "-n", namespace, "-o", "json", check=False)
        return json.loads(got.stdout)["data"].get("ca.crt") if got.returncode == 0 else None
    assert wait_for(root_ca, what="kube-root-ca.crt") == ca
    server.kubectl("delete", "cm", "kube-root-ca.crt", "-n", namespace)
    assert wait_for(root_ca, what="kube-root-ca.crt recreated") == ca
    server.kubectl("patch", "cm", "kube-root-ca.crt", "-n", namespace, "--type=merge",
                   "-p", '{"data":{"ca.crt":"changed"}}')
    wait_for(lambda: root_ca() == ca, what="kube-root-ca.crt reconciled")


@pods_never_run
def test_rc_adopts_a_matching_orphan_and_releases_a_relabelled_pod(server, namespace):
    server.kubectl("run", "pod-adoption", "-n", namespace, "--image=busybox", "--restart=Never",
                   "--labels=name=pod-adoption")
    server.kubectl("create", "-n", namespace, "-f", "-", input=rc("pod-adoption", 1, {"name": "pod-adoption"}))
    wait_for(lambda: owners(server.kubectl_json("get", "pod", "pod-adoption", "-n", namespace)) == ["pod-adoption"],
             what="the orphan adopted")
    assert len(pods(server, namespace, "name=pod-adoption")) == 1, "the adopted pod counts: no new one"
    server.kubectl("label", "pod", "pod-adoption", "name=not-matching", "--overwrite", "-n", namespace)
    wait_for(lambda: not owners(server.kubectl_json("get", "pod", "pod-adoption", "-n", namespace)),
             what="the relabelled pod released")
    wait_for(lambda: len(pods(server, namespace, "name=pod-adoption")) == 1, what="a replacement pod")


@pods_never_run
def test_deleting_a_job_with_active_pods(server, namespace):
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "foo"},
           "spec": {"parallelism": 2, "completions": 4,
                    "template": {"spec": {"restartPolicy": "Never",
                                          "containers": [{"name": "c", "image": "busybox"}]}}}}
    server.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(job))
    wait_for(lambda: (server.kubectl_json("get", "job", "foo", "-n", namespace).get("status") or {}).get("active") == 2,
             what="two active pods, as parallelism says")
    assert len(pods(server, namespace, "job-name=foo")) == 2
    server.kubectl("delete", "job", "foo", "-n", namespace, "--timeout=30s")
    assert not exists(server, "job", "foo", "-n", namespace)
    wait_for(lambda: not pods(server, namespace, "job-name=foo"), what="the job's pods collected")


def test_controller_revision_lifecycle_beside_a_daemonset(server, namespace):
    name = "e2e-ds"
    selector = f"daemonset-name={name}"
    ds = {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name},
          "spec": {"selector": {"matchLabels": {"daemonset-name": name}},
                   "template": {"metadata": {"labels": {"daemonset-name": name}},
                                "spec": {"containers": [{"name": "app", "image": "busybox"}]}}}}
    server.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(ds))

    def revisions():
        return server.kubectl_json("get", "controllerrevisions", "-n", namespace, "-l", selector)["items"]

    def count(n):
        return lambda: (lambda items: items if len(items) == n else None)(revisions())
    (initial,) = wait_for(count(1), what="the DaemonSet's first ControllerRevision")
    server.kubectl("patch", "controllerrevision", initial["metadata"]["name"], "-n", namespace, "--type=merge",
                   "-p", '{"metadata":{"labels":{"e2e-patched":"true"}}}')
    got = server.kubectl_json("get", "controllerrevision", initial["metadata"]["name"], "-n", namespace)
    assert got["metadata"]["labels"]["e2e-patched"] == "true"

    new = {"apiVersion": "apps/v1", "kind": "ControllerRevision",
           "metadata": {"name": f"{name}-e2e-second", "labels": {"daemonset-name": name},
                        "ownerReferences": initial["metadata"]["ownerReferences"]},
           "data": initial["data"], "revision": initial["revision"] + 1}
    server.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(new))
    wait_for(count(2), what="two ControllerRevisions")
    server.kubectl("delete", "controllerrevision", initial["metadata"]["name"], "-n", namespace)
    (left,) = wait_for(count(1), what="one ControllerRevision after the delete")
    assert left["metadata"]["name"] == f"{name}-e2e-second"

    left["metadata"]["labels"]["e2e-updated"] = "true"
    server.kubectl("replace", "-n", namespace, "-f", "-", input=json.dumps(left))
    got = server.kubectl_json("get", "controllerrevision", left["metadata"]["name"], "-n", namespace)
    assert got["metadata"]["labels"]["e2e-updated"] == "true"

    server.kubectl("patch", "daemonset", name, "-n", namespace, "--type=merge",
                   "-p", '{"spec":{"template":{"spec":{"terminationGracePeriodSeconds":1}}}}')
    wait_for(count(2), what="a revision for the patched template")
    server.kubectl("delete", "controllerrevisions", "-n", namespace, "-l", "e2e-updated=true")
    (current,) = wait_for(count(1), what="one ControllerRevision after the delete collection")
    assert current["revision"] == 3


def test_rc_surfaces_a_replica_failure_when_quota_is_exceeded(server, namespace):
    server.kubectl("create", "quota", "condition-test", "--hard=pods=2", "-n", namespace)
    wait_for(lambda: (server.kubectl_json("get", "quota", "condition-test", "-n", namespace).get("status") or {})
             .get("used") == {"pods": "0"}, what="the quota's status")
    server.kubectl("create", "-n", namespace, "-f", "-", input=rc("condition-test", 3, {"name": "condition-test"}))

    def failure():
        status = server.kubectl_json("get", "rc", "condition-test", "-n", namespace).get("status") or {}
        return next((c for c in status.get("conditions") or [] if c["type"] == "ReplicaFailure"), None)
    cond = wait_for(failure, what="the ReplicaFailure condition")
    assert cond["status"] == "True" and cond["reason"] == "FailedCreate"
    assert "exceeded quota: condition-test" in cond["message"]
    assert len(pods(server, namespace, "name=condition-test")) == 2
    server.kubectl("scale", "rc", "condition-test", "--replicas=2", "-n", namespace)
    wait_for(lambda: failure() is None, what="the condition to clear")
