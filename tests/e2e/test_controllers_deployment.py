"""Deployments driven by the real kubectl against `k8py server` (its controller-manager inside).

Pods "run" through tests/e2e/pod_runner.py (no kubelet on this branch).
"""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import SEED, wait_for
from tests.e2e.controller_fixtures import PodCensus, deployment_yaml

pytest_plugins = ["tests.e2e.controller_fixtures"]  # the runner fixture

pytestmark = pytest.mark.simulated_kubelet  # a PodRunner marks the pods Running and Ready


def replica_sets(server, namespace, selector):
    items = server.kubectl_json("get", "rs", "-n", namespace, "-l", selector)["items"]
    return {rs["metadata"]["name"]: rs for rs in items}


def test_seed_deployment_rolls_out_and_set_image_keeps_surge_and_availability(server, namespace, runner):
    server.kubectl("apply", "-n", namespace, "-f", str(SEED / "09-deployment-rolling.yaml"))
    done = server.kubectl("rollout", "status", "deploy/nginx-deploy", "-n", namespace, "--timeout=60s")
    assert 'deployment "nginx-deploy" successfully rolled out' in done.stdout
    census = PodCensus(server, namespace, min_ready_seconds=5)
    try:
        wait_for(lambda: len(census.samples) >= 3, what="the pod watch to list the three pods")
        start = len(census.samples)
        server.kubectl("set", "image", "deploy/nginx-deploy", "nginx=nginx:1.27", "-n", namespace)
        done = server.kubectl("rollout", "status", "deploy/nginx-deploy", "-n", namespace, "--timeout=90s")
        assert 'deployment "nginx-deploy" successfully rolled out' in done.stdout
    finally:
        census.stop()
    # replicas 3, maxSurge 1, maxUnavailable 1
    assert census.most_pods <= 4
    assert census.fewest_available_after(start) >= 2
    sets = replica_sets(server, namespace, "app=nginx-deploy")
    sizes = sorted((rs["spec"]["replicas"], rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"])
                   for rs in sets.values())
    assert sizes == [(0, "1"), (3, "2")]
    new = next(rs for rs in sets.values() if rs["spec"]["replicas"] == 3)
    assert new["metadata"]["name"] == "nginx-deploy-" + new["metadata"]["labels"]["pod-template-hash"]
    assert new["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"] == "4"
    pods = server.kubectl_json("get", "pods", "-n", namespace)["items"]
    assert len(pods) == 3 and {p["spec"]["containers"][0]["image"] for p in pods} == {"nginx:1.27"}
    d = server.kubectl_json("get", "deploy", "nginx-deploy", "-n", namespace)
    assert d["status"]["updatedReplicas"] == 3 and d["status"]["availableReplicas"] == 3
    conditions = {c["type"]: c["reason"] for c in d["status"]["conditions"]}
    assert conditions == {"Available": "MinimumReplicasAvailable", "Progressing": "NewReplicaSetAvailable"}
    described = server.kubectl("describe", "deploy", "nginx-deploy", "-n", namespace).stdout
    assert f"Scaled up replica set {new['metadata']['name']} to 1" in described
    assert "ScalingReplicaSet" in described and "Scaled down replica set" in described


def image_of(server, namespace, name):
    return server.kubectl_json("get", "deploy", name, "-n", namespace)["spec"]["template"]["spec"]["containers"][0][
        "image"]


def test_pause_resume_history_undo_scale_and_restart(server, namespace, runner):
    server.kubectl("apply", "-n", namespace, "-f", "-", input=deployment_yaml("web", image="busybox:1"))
    server.kubectl("rollout", "status", "deploy/web", "-n", namespace, "--timeout=60s")
    for tag in ("2", "3"):
        server.kubectl("set", "image", "deploy/web", f"main=busybox:{tag}", "-n", namespace)
        server.kubectl("rollout", "status", "deploy/web", "-n", namespace, "--timeout=60s")
    history = server.kubectl("rollout", "history", "deploy/web", "-n", namespace).stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2", "3"]
    second = server.kubectl("rollout", "history", "deploy/web", "-n", namespace, "--revision=2").stdout
    assert "with revision #2" in second and "busybox:2" in second

    server.kubectl("rollout", "pause", "deploy/web", "-n", namespace)
    server.kubectl("set", "image", "deploy/web", "main=busybox:4", "-n", namespace)
    paused = wait_for(lambda: next((c for c in server.kubectl_json("get", "deploy", "web", "-n", namespace)[
        "status"]["conditions"] if c["type"] == "Progressing" and c["reason"] == "DeploymentPaused"), None),
        what="the DeploymentPaused condition")
    assert paused["status"] == "Unknown"
    assert len(replica_sets(server, namespace, "app=web")) == 3  # no rollout while paused
    server.kubectl("rollout", "resume", "deploy/web", "-n", namespace)
    server.kubectl("rollout", "status", "deploy/web", "-n", namespace, "--timeout=60s")
    assert len(replica_sets(server, namespace, "app=web")) == 4

    server.kubectl("rollout", "undo", "deploy/web", "-n", namespace, "--to-revision=2")
    server.kubectl("rollout", "status", "deploy/web", "-n", namespace, "--timeout=60s")
    assert image_of(server, namespace, "web") == "busybox:2"
    d = server.kubectl_json("get", "deploy", "web", "-n", namespace)
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "5"
    revived = [rs for rs in replica_sets(server, namespace, "app=web").values() if rs["spec"]["replicas"] == 3]
    assert len(revived) == 1
    assert revived[0]["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "2"
    server.kubectl("rollout", "undo", "deploy/web", "-n", namespace)  # back to the previous revision
    server.kubectl("rollout", "status", "deploy/web", "-n", namespace, "--timeout=60s")
    assert image_of(server, namespace, "web") == "busybox:4"

    server.kubectl("scale", "deploy/web", "--replicas=5", "-n", namespace)
    server.kubectl("rollout", "status", "deploy/web", "-n", namespace, "--timeout=60s")
    wait_for(lambda: len(server.kubectl_json("get", "pods", "-n", namespace, "-l", "app=web")["items"]) == 5,
             what="five pods")

    before = set(replica_sets(server, namespace, "app=web"))
    server.kubectl("rollout", "restart", "deploy/web", "-n", namespace)
    server.kubectl("rollout", "status", "deploy/web", "-n", namespace, "--timeout=60s")
    after = replica_sets(server, namespace, "app=web")
    fresh = [rs for name, rs in after.items() if name not in before]
    assert len(fresh) == 1 and fresh[0]["spec"]["replicas"] == 5
    assert "kubectl.kubernetes.io/restartedAt" in fresh[0]["spec"]["template"]["metadata"]["annotations"]


def test_revision_history_limit_deletes_old_replica_sets(server, namespace, runner):
    server.kubectl("apply", "-n", namespace, "-f", "-",
                   input=deployment_yaml("hist", replicas=1, extra_spec="  revisionHistoryLimit: 1\n"))
    for tag in ("2", "3", "4"):
        server.kubectl("set", "image", "deploy/hist", f"main=nginx:{tag}", "-n", namespace)
        server.kubectl("rollout", "status", "deploy/hist", "-n", namespace, "--timeout=60s")
    sets = wait_for(lambda: (lambda s: s if len(s) == 2 else None)(replica_sets(server, namespace, "app=hist")),
                    what="one old ReplicaSet kept")
    revisions = sorted(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] for rs in sets.values())
    assert revisions == ["3", "4"]


def test_recreate_stops_old_pods_before_starting_new_ones(server, namespace, runner):
    server.kubectl("apply", "-n", namespace, "-f", "-",
                   input=deployment_yaml("rec", replicas=3, strategy="Recreate"))
    server.kubectl("rollout", "status", "deploy/rec", "-n", namespace, "--timeout=60s")
    census = PodCensus(server, namespace)
    try:
        wait_for(lambda: len(census.samples) >= 3, what="the pod watch")
        server.kubectl("set", "image", "deploy/rec", "main=nginx:2", "-n", namespace)
        server.kubectl("rollout", "status", "deploy/rec", "-n", namespace, "--timeout=60s")
    finally:
        census.stop()
    assert census.most_pods == 3
    hashes = {p["metadata"]["labels"]["pod-template-hash"]
              for p in server.kubectl_json("get", "pods", "-n", namespace)["items"]}
    assert len(hashes) == 1


def test_progress_deadline_exceeded(server, namespace, runner):
    runner.paused = True  # pods never become ready
    server.kubectl("apply", "-n", namespace, "-f", "-", input=deployment_yaml(
        "slow", replicas=1, unavailable=0, extra_spec="  progressDeadlineSeconds: 2\n"))
    status = server.kubectl("rollout", "status", "deploy/slow", "-n", namespace, "--timeout=40s", check=False)
    assert status.returncode != 0
    assert 'deployment "slow" exceeded its progress deadline' in status.stderr
    d = server.kubectl_json("get", "deploy", "slow", "-n", namespace)
    progressing = next(c for c in d["status"]["conditions"] if c["type"] == "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("False", "ProgressDeadlineExceeded")
    assert progressing["message"].endswith("has timed out progressing.")
    available = next(c for c in d["status"]["conditions"] if c["type"] == "Available")
    assert (available["status"], available["reason"]) == ("False", "MinimumReplicasUnavailable")
    runner.resume()  # progress after the deadline still completes the rollout
    wait_for(lambda: "NewReplicaSetAvailable" in json.dumps(
        server.kubectl_json("get", "deploy", "slow", "-n", namespace)["status"]["conditions"]),
        timeout=20, what="the rollout to complete after all")
    server.kubectl("rollout", "status", "deploy/slow", "-n", namespace, "--timeout=40s")


def test_scaling_mid_rollout_is_shared_proportionally(server, namespace, runner):
    server.kubectl("apply", "-n", namespace, "-f", "-",
                   input=deployment_yaml("prop", replicas=10, surge=3, unavailable=0))
    server.kubectl("rollout", "status", "deploy/prop", "-n", namespace, "--timeout=60s")
    runner.paused = True  # the new pods never become ready: the rollout stalls at the surge
    server.kubectl("set", "image", "deploy/prop", "main=nginx:2", "-n", namespace)

    def sizes():
        sets = replica_sets(server, namespace, "app=prop").values()
        return sorted((rs["spec"]["template"]["spec"]["containers"][0]["image"], rs["spec"]["replicas"])
                      for rs in sets)
    wait_for(lambda: sizes() == [("nginx:1", 10), ("nginx:2", 3)], what="the stalled rollout: 10 old + 3 new")
    server.kubectl("scale", "deploy/prop", "--replicas=20", "-n", namespace)
    # 20 + maxSurge 3 = 23 pods, shared 10:3 as they were sized for 13: 18 old, 5 new
    wait_for(lambda: sizes() == [("nginx:1", 18), ("nginx:2", 5)], what="a proportional share of the new size")
    for rs in replica_sets(server, namespace, "app=prop").values():
        assert rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "20"
        assert rs["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"] == "23"
    runner.resume()
    server.kubectl("rollout", "status", "deploy/prop", "-n", namespace, "--timeout=90s")
    assert sizes() == [("nginx:1", 0), ("nginx:2", 20)]
