"""ReplicaSets and ReplicationControllers with the real kubectl against `k8py server`."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import SEED, wait_for

pytest_plugins = ["tests.e2e.controller_fixtures"]  # the runner fixture

pytestmark = pytest.mark.simulated_kubelet  # a PodRunner marks the pods Running and Ready

RS = """apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: frontend
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      tier: frontend
  template:
    metadata:
      labels:
        tier: frontend
        extra: yes-it-is
    spec:
      containers:
      - name: php
        image: php:8
"""


def pods(server, namespace, selector="tier=frontend"):
    return server.kubectl_json("get", "pods", "-n", namespace, "-l", selector)["items"]


def rs_status(server, namespace):
    return server.kubectl_json("get", "rs", "frontend", "-n", namespace).get("status") or {}


def test_replica_set_keeps_replicas_replaces_deleted_pods_and_reports_status(server, namespace, runner):
    server.kubectl("apply", "-n", namespace, "-f", "-", input=RS.format(replicas=3))
    wait_for(lambda: rs_status(server, namespace).get("readyReplicas") == 3, what="three ready replicas")
    status = rs_status(server, namespace)
    assert status["replicas"] == 3 and status["fullyLabeledReplicas"] == 3 and status["availableReplicas"] == 3
    assert status["observedGeneration"] == 1
    first = pods(server, namespace)
    owner = first[0]["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["controller"], owner["blockOwnerDeletion"]) == \
        ("ReplicaSet", "frontend", True, True)
    assert all(p["metadata"]["name"].startswith("frontend-") for p in first)

    victim = first[0]["metadata"]["name"]
    server.kubectl("delete", "pod", victim, "-n", namespace)
    wait_for(lambda: len(pods(server, namespace)) == 3 and victim not in
             {p["metadata"]["name"] for p in pods(server, namespace)}, what="a replacement pod")
    events = server.kubectl("get", "events", "-n", namespace, "--field-selector",
                            "involvedObject.name=frontend", "-o", "json")
    messages = [e["message"] for e in json.loads(events.stdout)["items"]]
    assert sum(m.startswith("Created pod: frontend-") for m in messages) == 4

    server.kubectl("scale", "rs/frontend", "--replicas=1", "-n", namespace)
    wait_for(lambda: len(pods(server, namespace)) == 1, what="scale down to one pod")
    wait_for(lambda: rs_status(server, namespace).get("replicas") == 1, what="status.replicas 1")


def test_scale_down_deletes_unready_pods_first(server, namespace, runner):
    server.kubectl("apply", "-n", namespace, "-f", "-", input=RS.format(replicas=2))
    wait_for(lambda: rs_status(server, namespace).get("readyReplicas") == 2, what="two ready replicas")
    ready = {p["metadata"]["name"] for p in pods(server, namespace)}
    runner.paused = True
    server.kubectl("scale", "rs/frontend", "--replicas=3", "-n", namespace)
    wait_for(lambda: len(pods(server, namespace)) == 3, what="a third, pending pod")
    server.kubectl("scale", "rs/frontend", "--replicas=2", "-n", namespace)
    wait_for(lambda: {p["metadata"]["name"] for p in pods(server, namespace)} == ready,
             what="the pending pod to be the one deleted")


def test_orphans_are_adopted_and_relabelled_pods_released(server, namespace, runner):
    orphan = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "stray", "labels": {"tier": "frontend"}},
              "spec": {"containers": [{"name": "c", "image": "php:8"}]}}
    server.kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(orphan))
    server.kubectl("apply", "-n", namespace, "-f", "-", input=RS.format(replicas=2))
    wait_for(lambda: len(pods(server, namespace)) == 2, what="two pods including the adopted one")
    stray = server.kubectl_json("get", "pod", "stray", "-n", namespace)
    assert stray["metadata"]["ownerReferences"][0]["name"] == "frontend"
    wait_for(lambda: rs_status(server, namespace).get("fullyLabeledReplicas") == 1,
             what="only one pod carries every template label")
    server.kubectl("label", "pod", "stray", "tier=elsewhere", "--overwrite", "-n", namespace)
    wait_for(lambda: not server.kubectl_json("get", "pod", "stray", "-n", namespace)["metadata"].get(
        "ownerReferences"), what="the relabelled pod to be released")
    wait_for(lambda: len(pods(server, namespace)) == 2, what="a replacement for the released pod")


def test_seed_replication_controller(server, namespace, runner):
    server.kubectl("apply", "-n", namespace, "-f", str(SEED / "18-replication-controller.yaml"))
    wait_for(lambda: (server.kubectl_json("get", "rc", "rc-demo", "-n", namespace).get("status") or {}).get(
        "readyReplicas") == 3, what="the RC's three pods ready")
    table = server.kubectl("get", "rc", "rc-demo", "-n", namespace).stdout.splitlines()
    assert table[1].split()[:4] == ["rc-demo", "3", "3", "3"]
    victim = pods(server, namespace, "name=rc")[0]["metadata"]["name"]
    server.kubectl("delete", "pod", victim, "-n", namespace)
    wait_for(lambda: len(pods(server, namespace, "name=rc")) == 3 and victim not in
             {p["metadata"]["name"] for p in pods(server, namespace, "name=rc")}, what="a replacement")
    described = server.kubectl("describe", "rc", "rc-demo", "-n", namespace).stdout
    assert "replication-controller  Created pod: rc-demo-" in described
    server.kubectl("scale", "rc/rc-demo", "--replicas=0", "-n", namespace)
    wait_for(lambda: not pods(server, namespace, "name=rc"), what="no pods left")
