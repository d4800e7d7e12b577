"""Garbage collection: `kubectl delete --cascade=background|foreground|orphan`, as upstream."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import wait_for
from tests.e2e.controller_fixtures import deployment_yaml

pytest_plugins = ["tests.e2e.controller_fixtures"]  # the runner fixture

pytestmark = pytest.mark.simulated_kubelet  # a PodRunner marks the pods Running and Ready

HOLD = "e2e.k8py.io/hold"


def names(server, namespace, kind, selector="app=gc"):
    return {o["metadata"]["name"] for o in server.kubectl_json("get", kind, "-n", namespace, "-l", selector)["items"]}


def deploy(server, namespace, pod_meta=""):
    server.kubectl("apply", "-n", namespace, "-f", "-", input=deployment_yaml("gc", replicas=2, pod_meta=pod_meta))
    server.kubectl("rollout", "status", "deploy/gc", "-n", namespace, "--timeout=60s")


def test_background_deletes_replica_sets_and_pods_after_the_deployment(server, namespace, runner):
    deploy(server, namespace)
    assert len(names(server, namespace, "pods")) == 2
    server.kubectl("delete", "deploy", "gc", "-n", namespace, "--cascade=background")
    wait_for(lambda: not names(server, namespace, "rs") and not names(server, namespace, "pods"),
             what="replica sets and pods collected")


def test_foreground_waits_for_blocking_dependents(server, namespace, runner):
    # Pods hold a finalizer, so their deletion (and with it the deployment's) waits on us.
    deploy(server, namespace, pod_meta=f"      finalizers: [{HOLD}]\n")
    server.kubectl("delete", "deploy", "gc", "-n", namespace, "--cascade=foreground", "--wait=false")
    d = server.kubectl_json("get", "deploy", "gc", "-n", namespace)
    assert d["metadata"]["deletionTimestamp"] and "foregroundDeletion" in d["metadata"]["finalizers"]

    def pods_terminating():
        items = server.kubectl_json("get", "pods", "-n", namespace, "-l", "app=gc")["items"]
        return len(items) == 2 and all(p["metadata"].get("deletionTimestamp") for p in items)
    wait_for(pods_terminating, what="the pods to be deleted first")
    rs = server.kubectl_json("get", "rs", "-n", namespace, "-l", "app=gc")["items"]
    assert len(rs) == 1 and "foregroundDeletion" in rs[0]["metadata"]["finalizers"]
    assert server.kubectl("get", "deploy", "gc", "-n", namespace, check=False).returncode == 0
    for pod in names(server, namespace, "pods"):
        server.kubectl("patch", "pod", pod, "-n", namespace, "--type=merge", "-p",
                       json.dumps({"metadata": {"finalizers": None}}))
    wait_for(lambda: server.kubectl("get", "deploy", "gc", "-n", namespace, check=False).returncode == 1,
             what="the deployment to go once its dependents are gone")
    assert not names(server, namespace, "rs") and not names(server, namespace, "pods")


def test_orphan_keeps_dependents_without_owner_references(server, namespace, runner):
    deploy(server, namespace)
    server.kubectl("delete", "deploy", "gc", "-n", namespace, "--cascade=orphan")
    assert server.kubectl("get", "deploy", "gc", "-n", namespace, check=False).returncode == 1
    rs = server.kubectl_json("get", "rs", "-n", namespace, "-l", "app=gc")["items"]
    assert len(rs) == 1 and not rs[0]["metadata"].get("ownerReferences")
    assert len(names(server, namespace, "pods")) == 2  # the orphaned ReplicaSet still runs its pods


def test_any_kind_of_owner_is_followed(server, namespace):
    owner = server.kubectl_json("create", "configmap", "owner", "-n", namespace)
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}
    dependent = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "dependent", "ownerReferences": [ref]}}
    server.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(dependent))
    ghost = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ghost", "ownerReferences": [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "never-was", "uid": "00000000-0000-0000-0000-000000000001"}]}}
    server.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(ghost))
    wait_for(lambda: server.kubectl("get", "cm", "ghost", "-n", namespace, check=False).returncode == 1,
             what="an object whose owner never existed to be collected")
    assert server.kubectl("get", "secret", "dependent", "-n", namespace, check=False).returncode == 0
    server.kubectl("delete", "cm", "owner", "-n", namespace)
    wait_for(lambda: server.kubectl("get", "secret", "dependent", "-n", namespace, check=False).returncode == 1,
             what="the secret owned by the deleted configmap to be collected")
