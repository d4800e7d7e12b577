"""Workload conformance behaviours with real runc containers and the real kubectl.

Upstream's StatefulSet conformance cases, each with three nginx pods at most:
ordered scaling that halts on an unhealthy pod, Parallel burst scaling that
does not, a rolling update and its rollback, and a canary plus phased
rollout with a partition that survives pods deleted mid-rollout. A pod is
made unhealthy as upstream does it: its readiness probe fetches
/index.html, and the test moves that file away (and back) inside the
container. Then the Job, ReplicationController/ReplicaSet adoption, garbage
collector, Deployment strategy, DaemonSet, Endpoints, PodDisruptionBudget
and namespace cases whose other tests play the kubelet
(tests/e2e/test_controllers_*.py, test_conformance_controllers.py), here
with busybox pods that really run, fail, restart and stop.

The cluster (one node in its own network namespace, with the
controller-manager as its own process) is the one test_workloads_real.py
uses, started once for this module.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.e2e.conftest import wait_for
from tests.e2e import test_workloads_real as workloads
from tests.e2e.test_workloads_real import all_running, census, make_namespace, pods, running_in_runc

# The same fixtures as test_workloads_real.py: this module gets its own cluster, started the same way.
cluster = workloads.cluster
ns = workloads.ns
pytestmark = pytest.mark.host_network  # a network-namespace cluster

HTML = "/usr/share/nginx/html"
OLD_IMAGE, NEW_IMAGE = "nginx", "docker.io/library/nginx"  # the same image, another template


def statefulset(replicas: int, policy: str = "OrderedReady", partition: int | None = None) -> str:
    strategy = {"type": "RollingUpdate"}
    if partition is not None:
        strategy["rollingUpdate"] = {"partition": partition}
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
         "spec": {"clusterIP": "None", "selector": {"app": "web"}, "ports": [{"port": 80}]}},
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "web"},
         "spec": {"serviceName": "web", "replicas": replicas, "podManagementPolicy": policy,
                  "updateStrategy": strategy, "selector": {"matchLabels": {"app": "web"}},
                  "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                      "terminationGracePeriodSeconds": 5,
                      "containers": [{"name": "nginx", "image": OLD_IMAGE, "ports": [{"containerPort": 80}],
                                      "readinessProbe": {"httpGet": {"path": "/index.html", "port": 80},
                                                         "periodSeconds": 1, "failureThreshold": 1,
                                                         "successThreshold": 1}}]}}}}]})


def get_sts(cluster, ns) -> dict:
    return cluster.kubectl_json("get", "statefulset", "web", "-n", ns)


def synced(cluster, ns) -> dict | None:
    """The set, once its controller has seen its latest spec."""
    sts = get_sts(cluster, ns)
    return sts if sts.get("status", {}).get("observedGeneration") == sts["metadata"]["generation"] else None


def names(found: list[dict]) -> list[str]:
    return sorted(p["metadata"]["name"] for p in found)


def break_probe(cluster, ns, *pod_names: str) -> None:
    for name in pod_names:
        cluster.kubectl("exec", "-n", ns, name, "--", "mv", f"{HTML}/index.html", "/tmp/index.html")


def restore_probe(cluster, ns, *pod_names: str, condemned: bool = False) -> None:
    """`condemned`: the pods are being scaled away, and each one restored may let the controller
    delete the next before the test gets to it; that one needs no restoring."""
    for name in pod_names:
        done = cluster.kubectl("exec", "-n", ns, name, "--", "mv", "/tmp/index.html", f"{HTML}/index.html",
                               check=not condemned)
        if done.returncode != 0:
            live = [p for p in pods(cluster, ns, "app=web") if p["metadata"]["name"] == name]
            assert not live or live[0]["status"].get("phase") != "Running", (name, done.stderr)


def running_not_ready(cluster, ns, count: int) -> list[dict] | None:
    """`count` live pods whose containers run under runc, none of them Ready."""
    found = pods(cluster, ns, "app=web")
    ok = len(found) == count and all(
        s.get("containerID", "").startswith("runc://") and "running" in (s.get("state") or {}) and not s.get("ready")
        for p in found for s in (p.get("status") or {}).get("containerStatuses") or [{}])
    return found if ok else None


def ready_replicas(cluster, ns, count: int) -> dict | None:
    sts = synced(cluster, ns)
    return sts if sts and (sts["status"].get("readyReplicas") or 0) == count else None


def scale(cluster, ns, replicas: int) -> dict:
    cluster.kubectl("scale", "statefulset/web", f"--replicas={replicas}", "-n", ns)
    return wait_for(lambda: synced(cluster, ns), timeout=30, what="the controller to see the new scale")


def event_index(events, name: str, start: int = 0, **want) -> int | None:
    """Index of the first census event at or after `start` for `name` with the given traits."""
    for i, (type_, pod, ready, deleting) in enumerate(events[start:], start):
        traits = {"type": type_, "ready": ready, "deleting": deleting}
        if pod == name and all(traits[k] == v for k, v in want.items()):
            return i
    return None


def pod_state(cluster, ns) -> dict[str, tuple[str, str, str]]:
    """name -> (image, revision label, uid) of the live pods."""
    return {p["metadata"]["name"]: (p["spec"]["containers"][0]["image"],
                                    p["metadata"]["labels"]["controller-revision-hash"], p["metadata"]["uid"])
            for p in pods(cluster, ns, "app=web")}


def wait_all_ready(cluster, ns, count: int, timeout: float = 120) -> list[dict]:
    found = wait_for(lambda: all_running(cluster, ns, "app=web", count), timeout=timeout,
                     what=f"{count} running, ready pods")
    wait_for(lambda: ready_replicas(cluster, ns, count), timeout=30, what=f"readyReplicas {count}")
    return found


# ---- StatefulSet, Scaling --------------------------------------------------------------------

def test_scaling_happens_in_order_and_halts_while_a_pod_is_unhealthy(cluster, ns):
    watch = census(cluster, ns, selector="app=web")
    try:
        cluster.kubectl("apply", "-n", ns, "-f", "-", input=statefulset(1))
        wait_all_ready(cluster, ns, 1)

        # Scale up halts while web-0 is unhealthy.
        break_probe(cluster, ns, "web-0")
        wait_for(lambda: running_not_ready(cluster, ns, 1), timeout=30, what="web-0 running and not ready")
        wait_for(lambda: ready_replicas(cluster, ns, 0), timeout=30, what="readyReplicas 0")
        scale(cluster, ns, 3)
        # The controller has synced the new scale with web-0 unready, and made nothing.
        assert names(pods(cluster, ns, "app=web", live=False)) == ["web-0"]
        unready_at = len(watch.events)
        restore_probe(cluster, ns, "web-0")
        wait_all_ready(cluster, ns, 3)

        # Scale down halts while any pod is unhealthy.
        break_probe(cluster, ns, "web-0", "web-1", "web-2")
        wait_for(lambda: running_not_ready(cluster, ns, 3), timeout=30, what="three running, unready pods")
        wait_for(lambda: ready_replicas(cluster, ns, 0), timeout=30, what="readyReplicas 0")
        scale(cluster, ns, 0)
        assert names(pods(cluster, ns, "app=web")) == ["web-0", "web-1", "web-2"], "scale down did not halt"
        restore_probe(cluster, ns, "web-0", "web-1", "web-2", condemned=True)
        wait_for(lambda: not pods(cluster, ns, "app=web", live=False), timeout=120, what="every pod gone")
    finally:
        watch.stop()

    events = watch.events
    # Scaled up in order, each pod created only once the one before it was Running and Ready again.
    web0_ready_again = event_index(events, "web-0", unready_at, ready=True)
    web1_added = event_index(events, "web-1", type="ADDED")
    web2_added = event_index(events, "web-2", type="ADDED")
    assert web0_ready_again is not None and web1_added is not None and web2_added is not None, events
    assert web0_ready_again < web1_added < event_index(events, "web-1", ready=True) < web2_added, events
    # Scaled down from the top, each pod deleted only once the one above it was gone.
    gone = [event_index(events, name, type="DELETED") for name in ("web-2", "web-1", "web-0")]
    deleting = [event_index(events, name, deleting=True) for name in ("web-2", "web-1", "web-0")]
    assert None not in gone and None not in deleting, events
    assert deleting[0] < gone[0] < deleting[1] < gone[1] < deleting[2] < gone[2], events


# ---- StatefulSet, Burst Scaling --------------------------------------------------------------

def test_parallel_burst_scaling_goes_ahead_with_unhealthy_pods(cluster, ns):
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=statefulset(1, policy="Parallel"))
    wait_all_ready(cluster, ns, 1)

    # Scale up does not wait for the unhealthy web-0.
    break_probe(cluster, ns, "web-0")
    wait_for(lambda: ready_replicas(cluster, ns, 0), timeout=30, what="readyReplicas 0")
    scale(cluster, ns, 3)
    found = wait_for(lambda: (f := pods(cluster, ns, "app=web")) and len(f) == 3
                     and all(s.get("containerID", "").startswith("runc://")
                             for p in f for s in p["status"].get("containerStatuses") or [{}]) and f,
                     timeout=120, what="three pods running while web-0 is unready")
    assert names(found) == ["web-0", "web-1", "web-2"]
    assert not running_in_runc(next(p for p in found if p["metadata"]["name"] == "web-0"))
    restore_probe(cluster, ns, "web-0")
    wait_all_ready(cluster, ns, 3)

    # Scale down does not wait either: every pod is unhealthy, and all go.
    break_probe(cluster, ns, "web-0", "web-1", "web-2")
    wait_for(lambda: running_not_ready(cluster, ns, 3), timeout=30, what="three running, unready pods")
    wait_for(lambda: ready_replicas(cluster, ns, 0), timeout=30, what="readyReplicas 0")
    scale(cluster, ns, 0)
    wait_for(lambda: not pods(cluster, ns, "app=web", live=False), timeout=120, what="every pod gone")
    assert (get_sts(cluster, ns)["status"].get("replicas") or 0) == 0


# ---- StatefulSet, Rolling Update -------------------------------------------------------------

def wait_rolled_out(cluster, ns, revision: str, timeout: float = 180) -> dict:
    return wait_for(lambda: (s := synced(cluster, ns)) and s["status"].get("currentRevision") == revision
                    and s["status"].get("updatedReplicas") == 3 and s["status"].get("readyReplicas") == 3 and s,
                    timeout=timeout, what=f"every pod on revision {revision}")


def test_rolling_update_replaces_pods_one_at_a_time_and_a_rollback_reuses_the_old_revision(cluster, ns):
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=statefulset(3))
    wait_all_ready(cluster, ns, 3)
    status = synced(cluster, ns)["status"]
    original = status["currentRevision"]
    assert status["updateRevision"] == original
    assert {rev for _, rev, _ in pod_state(cluster, ns).values()} == {original}

    watch = census(cluster, ns, selector="app=web")
    try:
        wait_for(lambda: len(watch.names_seen) == 3, timeout=30, what="the pod watch to list the three pods")
        start = len(watch.events)
        cluster.kubectl("set", "image", "statefulset/web", f"nginx={NEW_IMAGE}", "-n", ns)
        sts = wait_for(lambda: synced(cluster, ns), timeout=30, what="the new template seen")
        updated = sts["status"]["updateRevision"]
        assert updated != original and sts["status"]["currentRevision"] == original
        sts = wait_rolled_out(cluster, ns, updated)
        assert sts["status"]["updateRevision"] == updated
    finally:
        watch.stop()
    state = pod_state(cluster, ns)
    assert {(image, rev) for image, rev, _ in state.values()} == {(NEW_IMAGE, updated)}
    # One at a time, from the highest ordinal down: a pod goes only once the one above it is
    # back (updated, Running and Ready), so never fewer than two are available.
    events = watch.events[start:]
    order = [event_index(events, name, deleting=True) for name in ("web-2", "web-1", "web-0")]
    back = [event_index(events, name, type="ADDED") for name in ("web-2", "web-1")]
    assert None not in order and None not in back, events
    for i, name in enumerate(("web-2", "web-1")):
        ready_again = event_index(events, name, back[i], ready=True)
        assert ready_again is not None and order[i] < back[i] < ready_again < order[i + 1], events
    assert watch.fewest_available_after(start) >= 2, watch.samples[start:]

    # Back to the old template: a rollback to the prior revision, not a new one.
    revisions_before = names(cluster.kubectl_json("get", "controllerrevisions", "-n", ns)["items"])
    cluster.kubectl("set", "image", "statefulset/web", f"nginx={OLD_IMAGE}", "-n", ns)
    sts = wait_for(lambda: synced(cluster, ns), timeout=30, what="the rollback seen")
    assert (sts["status"]["updateRevision"], sts["status"]["currentRevision"]) == (original, updated)
    wait_rolled_out(cluster, ns, original)
    assert names(cluster.kubectl_json("get", "controllerrevisions", "-n", ns)["items"]) == revisions_before
    assert {(image, rev) for image, rev, _ in pod_state(cluster, ns).values()} == {(OLD_IMAGE, original)}


# ---- StatefulSet, Rolling Update with Partition ------------------------------------------------

def set_partition(cluster, ns, partition: int) -> dict:
    cluster.kubectl("patch", "statefulset", "web", "-n", ns, "--type=merge", "-p", json.dumps(
        {"spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": partition}}}}))
    return wait_for(lambda: synced(cluster, ns), timeout=30, what=f"partition {partition} seen")


def on_revisions(cluster, ns, partition: int, old: tuple[str, str], new: tuple[str, str]):
    """Pods below the partition on the old image and revision, the rest on the new; all ready."""
    if not all_running(cluster, ns, "app=web", 3):
        return None
    state = pod_state(cluster, ns)
    want = {f"web-{i}": old if i < partition else new for i in range(3)}
    return state if {name: s[:2] for name, s in state.items()} == want else None


def test_partition_gives_a_canary_and_phased_rollout_and_deleted_pods_keep_their_side(cluster, ns):
    # A partition above the replica count: the new template reaches no pod.
    cluster.kubectl("apply", "-n", ns, "-f", "-", input=statefulset(3, partition=3))
    wait_all_ready(cluster, ns, 3)
    current = synced(cluster, ns)["status"]["currentRevision"]
    cluster.kubectl("set", "image", "statefulset/web", f"nginx={NEW_IMAGE}", "-n", ns)
    sts = wait_for(lambda: synced(cluster, ns), timeout=30, what="the new template seen")
    update = sts["status"]["updateRevision"]
    assert update != current and sts["status"]["currentRevision"] == current
    old, new = (OLD_IMAGE, current), (NEW_IMAGE, update)
    before = pod_state(cluster, ns)
    assert {name: s[:2] for name, s in before.items()} == {f"web-{i}": old for i in range(3)}

    # Canary: partition 2 updates web-2 alone.
    set_partition(cluster, ns, 2)
    state = wait_for(lambda: on_revisions(cluster, ns, 2, old, new), timeout=120, what="web-2 updated")
    assert state["web-0"][2] == before["web-0"][2] and state["web-1"][2] == before["web-1"][2]
    assert synced(cluster, ns)["status"]["currentRevision"] == current

    # Pods deleted mid-rollout come back on their side of the partition.
    cluster.kubectl("delete", "pod", "web-0", "web-2", "-n", ns, "--wait=false")
    restored = wait_for(lambda: (s := on_revisions(cluster, ns, 2, old, new)) and s["web-0"][2] != state["web-0"][2]
                        and s["web-2"][2] != state["web-2"][2] and s, timeout=120, what="web-0 and web-2 recreated")
    assert restored["web-1"][2] == state["web-1"][2]

    # Phased: lower the partition one ordinal at a time.
    for partition in (1, 0):
        set_partition(cluster, ns, partition)
        wait_for(lambda: on_revisions(cluster, ns, partition, old, new), timeout=120,
                 what=f"the pods from web-{partition} up updated")
    sts = wait_for(lambda: (s := synced(cluster, ns)) and s["status"].get("currentRevision") == update and s,
                   timeout=30, what="the current revision to catch up")
    assert sts["status"]["updateRevision"] == update and sts["status"]["updatedReplicas"] == 3


# ---- Jobs ------------------------------------------------------------------------------------

def job(name: str, command: str, restart: str = "Never", volumes: bool = False, **spec) -> str:
    pod = {"restartPolicy": restart, "terminationGracePeriodSeconds": 1,
           "containers": [{"name": "main", "image": "busybox", "command": ["sh", "-c", command]}]}
    if volumes:
        pod["volumes"] = [{"name": "data", "emptyDir": {}}]
        pod["containers"][0]["volumeMounts"] = [{"name": "data", "mountPath": "/data"}]
    return json.dumps({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
                       "spec": {**spec, "template": {"spec": pod}}})


def job_condition(cluster, ns, name: str, kind: str) -> dict | None:
    found = cluster.kubectl_json("get", "job", name, "-n", ns)
    return next((c for c in found.get("status", {}).get("conditions") or []
                 if c["type"] == kind and c["status"] == "True"), None)


def owner_uid(pod: dict) -> str | None:
    refs = pod["metadata"].get("ownerReferences") or []
    return refs[0]["uid"] if refs else None


def test_job_tasks_that_fail_once_are_restarted_in_place_and_the_job_completes(cluster, ns):
    # Each container fails on its first run and succeeds on the next: the emptyDir outlives the restart.
    cluster.kubectl("create", "-n", ns, "-f", "-", input=job(
        "flaky", "if [ -e /data/failed-once ]; then exit 0; fi; touch /data/failed-once; exit 1",
        restart="OnFailure", volumes=True, completions=2, parallelism=2))
    wait_for(lambda: job_condition(cluster, ns, "flaky", "Complete"), timeout=180, what="the job to complete")
    status = cluster.kubectl_json("get", "job", "flaky", "-n", ns)["status"]
    assert status["succeeded"] == 2 and not status.get("failed"), status
    done = pods(cluster, ns, "job-name=flaky", live=False)
    assert len(done) == 2, "a task was replaced instead of restarted in place"
    for pod in done:
        (container,) = pod["status"]["containerStatuses"]
        assert container["restartCount"] == 1, container
        assert container["state"]["terminated"]["exitCode"] == 0, container
        assert container["lastState"]["terminated"]["exitCode"] == 1, container


def test_job_pod_failure_policy_fails_the_job_early_on_an_exit_code(cluster, ns):
    manifest = json.loads(job("policy", 'if [ "$JOB_COMPLETION_INDEX" = 1 ]; then exit 42; fi; exec sleep 3600',
                              completions=2, parallelism=2, completionMode="Indexed", backoffLimit=6))
    manifest["spec"]["podFailurePolicy"] = {"rules": [
        {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [42]}}]}
    cluster.kubectl("create", "-n", ns, "-f", "-", input=json.dumps(manifest))
    failed = wait_for(lambda: job_condition(cluster, ns, "policy", "Failed"), timeout=120, what="the job to fail")
    assert failed["reason"] == "PodFailurePolicy", failed
    assert "failed with exit code 42 matching FailJob rule at index 0" in failed["message"], failed
    # Failed at once, not after backoffLimit retries: index 1 ran once. The other index's pod is
    # stopped (and, as upstream, counted as failed with it).
    def stopped():
        found = pods(cluster, ns, "job-name=policy", live=False)
        return found if all(p["status"].get("phase") in ("Succeeded", "Failed") for p in found) else None
    found = wait_for(stopped, timeout=60, what="the sleeping pod stopped")
    index_1 = [p for p in found if p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] == "1"]
    assert len(index_1) == 1, [p["metadata"]["name"] for p in found]
    assert index_1[0]["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 42
    status = cluster.kubectl_json("get", "job", "policy", "-n", ns)["status"]
    assert not status.get("active") and not status.get("succeeded"), status


def test_indexed_job_pods_get_their_index_and_hostname(cluster, ns):
    cluster.kubectl("create", "-n", ns, "-f", "-", input=job(
        "indexed", 'echo "$JOB_COMPLETION_INDEX $(hostname)"', completions=3, parallelism=3,
        completionMode="Indexed"))
    wait_for(lambda: job_condition(cluster, ns, "indexed", "Complete"), timeout=120, what="the job to complete")
    assert cluster.kubectl_json("get", "job", "indexed", "-n", ns)["status"]["completedIndexes"] == "0-2"
    seen = []
    for pod in pods(cluster, ns, "job-name=indexed", live=False):
        index = pod["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
        printed = cluster.kubectl("logs", pod["metadata"]["name"], "-n", ns).stdout.split()
        assert printed == [index, f"indexed-{index}"], (pod["metadata"]["name"], printed)
        seen.append(index)
    assert sorted(seen) == ["0", "1", "2"]


def running_job_pods(cluster, ns, name: str, count: int) -> list[dict] | None:
    found = pods(cluster, ns, f"job-name={name}")
    return found if len(found) == count and all(
        s.get("containerID", "").startswith("runc://") and "running" in s.get("state", {})
        for p in found for s in p["status"].get("containerStatuses") or [{}]) else None


def test_deleting_a_job_with_running_pods_stops_them(cluster, ns):
    cluster.kubectl("create", "-n", ns, "-f", "-", input=job("foo", "exec sleep 3600", completions=4, parallelism=2))
    wait_for(lambda: running_job_pods(cluster, ns, "foo", 2), timeout=90, what="two running pods (parallelism)")
    wait_for(lambda: cluster.kubectl_json("get", "job", "foo", "-n", ns)["status"].get("active") == 2, timeout=30,
             what="status.active 2")
    cluster.kubectl("delete", "job", "foo", "-n", ns, "--timeout=60s", timeout=70)
    assert not cluster.exists("job", "foo", "-n", ns)
    wait_for(lambda: not pods(cluster, ns, "job-name=foo", live=False), timeout=60, what="the job's pods gone")


def test_job_adopts_an_orphan_and_releases_a_relabelled_pod(cluster, ns):
    cluster.kubectl("create", "-n", ns, "-f", "-", input=job("adopt", "exec sleep 3600", completions=4,
                                                              parallelism=2))
    uid = cluster.kubectl_json("get", "job", "adopt", "-n", ns)["metadata"]["uid"]
    orphan, stray = (p["metadata"]["name"] for p in wait_for(
        lambda: running_job_pods(cluster, ns, "adopt", 2), timeout=90, what="two running pods (parallelism)"))
    cluster.kubectl("patch", "pod", orphan, "-n", ns, "--type=json",
                    "-p", '[{"op": "remove", "path": "/metadata/ownerReferences"}]')
    wait_for(lambda: owner_uid(cluster.kubectl_json("get", "pod", orphan, "-n", ns)) == uid, timeout=30,
             what="the orphan re-adopted")
    # the generated selector is the Job's uid label: a pod relabelled away from it is released
    cluster.kubectl("label", "pod", stray, "-n", ns, "batch.kubernetes.io/controller-uid=someone-else",
                    "controller-uid=someone-else", "--overwrite")
    wait_for(lambda: owner_uid(cluster.kubectl_json("get", "pod", stray, "-n", ns)) is None, timeout=30,
             what="the relabelled pod released")
    assert running_in_runc(cluster.kubectl_json("get", "pod", stray, "-n", ns))  # released, not killed
    assert owner_uid(cluster.kubectl_json("get", "pod", orphan, "-n", ns)) == uid


# ---- ReplicationController and ReplicaSet: adoption and release -------------------------------------

def controller(kind: str, name: str, replicas: int = 1, grace: int = 1) -> str:
    """A ReplicationController or ReplicaSet of busybox pods that sleep (as pid 1, so they take
    their whole grace period to stop)."""
    api, selector = ("v1", {"name": name}) if kind == "ReplicationController" else \
        ("apps/v1", {"matchLabels": {"name": name}})
    return json.dumps({"apiVersion": api, "kind": kind, "metadata": {"name": name},
                       "spec": {"replicas": replicas, "selector": selector, "template": {
                           "metadata": {"labels": {"name": name}},
                           "spec": {"terminationGracePeriodSeconds": grace, "containers": [
                               {"name": "main", "image": "busybox", "command": ["sleep", "3600"]}]}}}})


@pytest.mark.parametrize("kind", ["ReplicationController", "ReplicaSet"])
def test_controller_adopts_a_running_orphan_and_releases_it_when_relabelled(cluster, ns, kind):
    name = "pod-adoption"
    cluster.kubectl("run", name, "-n", ns, "--image=busybox", f"--labels=name={name}",
                    "--overrides", json.dumps({"spec": {"terminationGracePeriodSeconds": 1}}), "--", "sleep", "3600")
    wait_for(lambda: running_in_runc(cluster.kubectl_json("get", "pod", name, "-n", ns)), timeout=90,
             what="the orphan pod running")
    cluster.kubectl("create", "-n", ns, "-f", "-", input=controller(kind, name))
    owner = cluster.kubectl_json("get", kind.lower(), name, "-n", ns)["metadata"]["uid"]
    wait_for(lambda: owner_uid(cluster.kubectl_json("get", "pod", name, "-n", ns)) == owner, timeout=30,
             what="the orphan adopted")
    wait_for(lambda: (cluster.kubectl_json("get", kind.lower(), name, "-n", ns)["status"].get("readyReplicas")) == 1,
             timeout=30, what="the adopted pod counted")
    assert [p["metadata"]["name"] for p in pods(cluster, ns, f"name={name}", live=False)] == [name], \
        "the adopted pod was replaced"
    cluster.kubectl("label", "pod", name, "-n", ns, "name=released", "--overwrite")
    wait_for(lambda: owner_uid(cluster.kubectl_json("get", "pod", name, "-n", ns)) is None, timeout=30,
             what="the relabelled pod released")
    replacement = wait_for(lambda: all_running(cluster, ns, f"name={name}", 1), timeout=90, what="a replacement pod")
    assert replacement[0]["metadata"]["name"] != name and owner_uid(replacement[0]) == owner
    assert running_in_runc(cluster.kubectl_json("get", "pod", name, "-n", ns))  # released, not killed


# ---- Namespace deletion ------------------------------------------------------------------------

def test_deleting_a_namespace_stops_and_removes_its_running_pods_and_services(cluster):
    name = make_namespace(cluster, "wl-nsdel")
    cluster.kubectl("run", "test-pod", "-n", name, "--image=busybox", "--expose", "--port=80",
                    "--overrides", json.dumps({"spec": {"terminationGracePeriodSeconds": 1}}), "--", "sleep", "3600")
    wait_for(lambda: running_in_runc(cluster.kubectl_json("get", "pod", "test-pod", "-n", name)), timeout=90,
             what="the pod running")
    assert cluster.exists("service", "test-pod", "-n", name)
    cluster.kubectl("delete", "namespace", name, "--timeout=120s", timeout=130)
    assert not cluster.exists("namespace", name)
    for kind in ("pods", "services"):
        assert cluster.kubectl("get", kind, "-A", "--field-selector", f"metadata.namespace={name}",
                               "-o", "name").stdout.strip() == "", kind


# ---- Garbage collector: a ReplicationController deleted with each propagation policy -----------------

@pytest.mark.parametrize("policy", ["background", "foreground", "orphan"])
def test_deleting_a_replication_controller_with_running_pods(cluster, ns, policy):
    cluster.kubectl("create", "-n", ns, "-f", "-", input=controller("ReplicationController", "gc", replicas=2,
                                                                     grace=3))
    running = wait_for(lambda: all_running(cluster, ns, "name=gc", 2), timeout=90, what="two running pods")
    cluster.kubectl("delete", "rc", "gc", "-n", ns, f"--cascade={policy}", "--wait=false")
    if policy == "background":  # the RC goes at once, its pods after it
        assert not cluster.exists("rc", "gc", "-n", ns)
        assert pods(cluster, ns, "name=gc", live=False), "the pods went before their owner"
        wait_for(lambda: not pods(cluster, ns, "name=gc", live=False), timeout=60, what="the pods collected")
    elif policy == "foreground":  # the RC stays, marked, until its pods are gone
        seen_waiting = False
        deadline = time.monotonic() + 60
        while True:
            assert time.monotonic() < deadline, "the foreground deletion never finished"
            got = cluster.kubectl("get", "rc", "gc", "-n", ns, "-o", "json", check=False)
            remaining = pods(cluster, ns, "name=gc", live=False)  # looked at after the RC
            if got.returncode != 0:
                assert "NotFound" in got.stderr and not remaining, (got.stderr, remaining)
                break
            rc = json.loads(got.stdout)["metadata"]
            assert rc["deletionTimestamp"] and "foregroundDeletion" in rc["finalizers"], rc
            seen_waiting = seen_waiting or bool(remaining)
        assert seen_waiting, "the RC never waited for its pods"
    else:  # the pods stay, running, without an owner
        assert not cluster.exists("rc", "gc", "-n", ns)
        kept = wait_for(lambda: (found := all_running(cluster, ns, "name=gc", 2)) and
                        not any(p["metadata"].get("ownerReferences") for p in found) and found,
                        timeout=30, what="the pods orphaned")
        assert {p["metadata"]["uid"] for p in kept} == {p["metadata"]["uid"] for p in running}


# ---- Deployment strategies -----------------------------------------------------------------------

def busybox_deployment(name: str, replicas: int = 2, **spec) -> str:
    return json.dumps({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
                       "spec": {**spec, "replicas": replicas, "selector": {"matchLabels": {"app": name}},
                                "template": {"metadata": {"labels": {"app": name}}, "spec": {
                                    "terminationGracePeriodSeconds": 1, "containers": [
                                        {"name": "main", "image": "busybox", "command": ["sleep", "3600"]}]}}}})


def rolled_out(cluster, ns, name: str, timeout: int = 120) -> None:
    out = cluster.kubectl("rollout", "status", f"deploy/{name}", "-n", ns, f"--timeout={timeout}s",
                          timeout=timeout + 10).stdout
    assert "successfully rolled out" in out, out


def test_recreate_deployment_stops_every_old_pod_before_starting_a_new_one(cluster, ns):
    cluster.kubectl("create", "-n", ns, "-f", "-", input=busybox_deployment("recreate", strategy={"type": "Recreate"}))
    rolled_out(cluster, ns, "recreate")
    old = {p["metadata"]["name"] for p in wait_for(lambda: all_running(cluster, ns, "app=recreate", 2), timeout=60,
                                                   what="two running pods")}
    watch = census(cluster, ns, selector="app=recreate")
    try:
        wait_for(lambda: old <= watch.names_seen, timeout=30, what="the pod watch to list the old pods")
        cluster.kubectl("set", "image", "deploy/recreate", "main=busybox:1.36", "-n", ns)
        rolled_out(cluster, ns, "recreate")
        new = wait_for(lambda: all_running(cluster, ns, "app=recreate", 2), timeout=60, what="two new running pods")
    finally:
        watch.stop()
    assert {p["spec"]["containers"][0]["image"] for p in new} == {"busybox:1.36"}
    # No new pod until every old one has stopped: gone, or in a terminal phase (as upstream's
    # Recreate waits for, whatever the API still holds of the pod).
    events = watch.events
    first_new = min(event_index(events, p["metadata"]["name"], type="ADDED") for p in new)
    last_seen = {}
    for (type_, name, _, _), phase in zip(events[:first_new], watch.phases):
        last_seen[name] = "gone" if type_ == "DELETED" else phase
    assert all(last_seen.get(name) in ("gone", "Succeeded", "Failed") for name in old), (last_seen, events)


def test_deployment_keeps_only_revision_history_limit_old_replica_sets(cluster, ns):
    cluster.kubectl("create", "-n", ns, "-f", "-", input=busybox_deployment("history", replicas=1,
                                                                            revisionHistoryLimit=1))
    rolled_out(cluster, ns, "history")
    for image in ("busybox:1.36", "docker.io/library/busybox", "busybox:latest"):
        cluster.kubectl("set", "image", "deploy/history", f"main={image}", "-n", ns)
        rolled_out(cluster, ns, "history")

    def sets():
        found = cluster.kubectl_json("get", "rs", "-n", ns, "-l", "app=history")["items"]
        return {rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]:
                rs["spec"]["template"]["spec"]["containers"][0]["image"] for rs in found}
    kept = wait_for(lambda: len(s := sets()) == 2 and s, timeout=30, what="the old ReplicaSets cleaned up")
    assert kept == {"3": "docker.io/library/busybox", "4": "busybox:latest"}
    assert {p["spec"]["containers"][0]["image"] for p in all_running(cluster, ns, "app=history", 1)} == \
        {"busybox:latest"}


# ---- DaemonSet on the one real node ---------------------------------------------------------------

def daemon_pod(cluster, ns, image: str) -> dict | None:
    found = all_running(cluster, ns, "app=daemon", 1)
    return found[0] if found and found[0]["spec"]["containers"][0]["image"] == image else None


def test_daemonset_follows_node_labels_replaces_deleted_pods_and_rolls_out(cluster, ns):
    node = cluster.node.node_name
    label = f"daemon-{ns}"
    cluster.kubectl("create", "-n", ns, "-f", "-", input=json.dumps({
        "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "daemon"},
        "spec": {"selector": {"matchLabels": {"app": "daemon"}}, "template": {
            "metadata": {"labels": {"app": "daemon"}},
            "spec": {"nodeSelector": {label: "yes"}, "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "main", "image": "busybox", "command": ["sleep", "3600"]}]}}}}))
    try:
        # no node carries the label: no pod
        wait_for(lambda: (s := cluster.kubectl_json("get", "ds", "daemon", "-n", ns).get("status") or {})
                 .get("observedGeneration") and s, timeout=30, what="the DaemonSet seen")
        assert not pods(cluster, ns, "app=daemon", live=False)
        cluster.kubectl("label", "node", node, f"{label}=yes")
        # (the kubelet admits it against the node's labels as they are now, not as it last reported them)
        first = wait_for(lambda: daemon_pod(cluster, ns, "busybox"), timeout=90, what="a daemon pod on the node")
        assert first["spec"]["nodeName"] == node

        # a deleted daemon pod is replaced
        cluster.kubectl("delete", "pod", first["metadata"]["name"], "-n", ns, "--wait=false")
        again = wait_for(lambda: (p := daemon_pod(cluster, ns, "busybox")) and
                         p["metadata"]["uid"] != first["metadata"]["uid"] and p, timeout=90, what="a replacement")

        # a rolling update replaces it with the new template
        cluster.kubectl("set", "image", "ds/daemon", "main=busybox:1.36", "-n", ns)
        out = cluster.kubectl("rollout", "status", "ds/daemon", "-n", ns, "--timeout=90s", timeout=100).stdout
        assert "successfully rolled out" in out, out
        rolled = wait_for(lambda: daemon_pod(cluster, ns, "busybox:1.36"), timeout=60, what="the updated pod")
        assert rolled["metadata"]["uid"] != again["metadata"]["uid"]

        # the node leaves the selector: its pod goes
        cluster.kubectl("label", "node", node, f"{label}=no", "--overwrite")
        wait_for(lambda: not pods(cluster, ns, "app=daemon", live=False), timeout=60, what="the daemon pod removed")
    finally:
        cluster.kubectl("label", "node", node, f"{label}-", check=False)


# ---- Endpoints and EndpointSlices for running pods -----------------------------------------------------

def test_endpoints_and_slices_follow_running_pods_and_their_service(cluster, ns):
    cluster.kubectl("create", "-n", ns, "-f", "-", input=controller("ReplicaSet", "ep", replicas=2))
    cluster.kubectl("create", "-n", ns, "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "ep"},
        "spec": {"selector": {"name": "ep"}, "ports": [{"port": 80, "targetPort": 8080}]}}))
    running = wait_for(lambda: all_running(cluster, ns, "name=ep", 2), timeout=90, what="two running pods")

    def endpoint_ips():
        got = cluster.kubectl("get", "endpoints", "ep", "-n", ns, "-o", "json", check=False)
        if got.returncode != 0:
            return None
        return sorted(a["ip"] for s in json.loads(got.stdout).get("subsets") or [] for a in s.get("addresses") or [])

    def slice_ips():
        found = cluster.kubectl_json("get", "endpointslices", "-n", ns, "-l", "kubernetes.io/service-name=ep")["items"]
        return sorted(a for s in found for e in s.get("endpoints") or [] for a in e["addresses"]
                      if (e.get("conditions") or {}).get("ready"))
    ips = sorted(p["status"]["podIP"] for p in running)
    wait_for(lambda: endpoint_ips() == ips, timeout=30, what="both pods in the Endpoints")
    wait_for(lambda: slice_ips() == ips, timeout=30, what="both pods in the EndpointSlice")

    # scaled down: the stopped pod leaves both
    cluster.kubectl("scale", "rs/ep", "--replicas=1", "-n", ns)
    left = wait_for(lambda: (r := all_running(cluster, ns, "name=ep", 1)) and
                    len(pods(cluster, ns, "name=ep", live=False)) == 1 and r, timeout=60, what="one pod left")
    wait_for(lambda: endpoint_ips() == [left[0]["status"]["podIP"]], timeout=30, what="one address in the Endpoints")
    wait_for(lambda: slice_ips() == [left[0]["status"]["podIP"]], timeout=30, what="one address in the slice")

    # the Service goes: so do its Endpoints and slices
    cluster.kubectl("delete", "service", "ep", "-n", ns)
    wait_for(lambda: endpoint_ips() is None, timeout=30, what="the Endpoints deleted")
    wait_for(lambda: not cluster.kubectl_json("get", "endpointslices", "-n", ns, "-l",
                                              "kubernetes.io/service-name=ep")["items"],
             timeout=30, what="the EndpointSlices deleted")


def test_gc_keeps_a_running_pod_another_owner_still_holds(cluster, ns):
    cluster.kubectl("create", "-n", ns, "-f", "-", input=controller("ReplicationController", "first", replicas=2))
    # a second owner that selects nothing of its own
    second = json.loads(controller("ReplicationController", "second", replicas=0))
    cluster.kubectl("create", "-n", ns, "-f", "-", input=json.dumps(second))
    second_uid = cluster.kubectl_json("get", "rc", "second", "-n", ns)["metadata"]["uid"]
    shared, alone = wait_for(lambda: all_running(cluster, ns, "name=first", 2), timeout=90, what="two running pods")
    refs = shared["metadata"]["ownerReferences"] + [
        {"apiVersion": "v1", "kind": "ReplicationController", "name": "second", "uid": second_uid}]
    cluster.kubectl("patch", "pod", shared["metadata"]["name"], "-n", ns, "--type=merge",
                    "-p", json.dumps({"metadata": {"ownerReferences": refs}}))
    cluster.kubectl("delete", "rc", "first", "-n", ns, "--cascade=foreground", "--timeout=90s", timeout=100)
    left = pods(cluster, ns, live=False)
    assert [p["metadata"]["name"] for p in left] == [shared["metadata"]["name"]], left
    assert running_in_runc(left[0]) and not left[0]["metadata"].get("deletionTimestamp")
    assert [r["name"] for r in left[0]["metadata"]["ownerReferences"]] == ["second"]


def test_gc_deletes_running_pods_that_own_each_other_in_a_cycle(cluster, ns):
    names = ("pod1", "pod2", "pod3")
    for name in names:
        cluster.kubectl("run", name, "-n", ns, "--image=busybox", "--labels=cycle=yes",
                        "--overrides", json.dumps({"spec": {"terminationGracePeriodSeconds": 1}}),
                        "--", "sleep", "3600")
    running = wait_for(lambda: all_running(cluster, ns, "cycle=yes", 3), timeout=90, what="three running pods")
    uid = {p["metadata"]["name"]: p["metadata"]["uid"] for p in running}
    # pod1 is owned by pod3, pod2 by pod1, pod3 by pod2
    for owned, owner in (("pod1", "pod3"), ("pod2", "pod1"), ("pod3", "pod2")):
        ref = {"apiVersion": "v1", "kind": "Pod", "name": owner, "uid": uid[owner], "blockOwnerDeletion": True}
        cluster.kubectl("patch", "pod", owned, "-n", ns, "--type=merge",
                        "-p", json.dumps({"metadata": {"ownerReferences": [ref]}}))
    cluster.kubectl("delete", "pod", "pod1", "-n", ns, "--wait=false")
    wait_for(lambda: not pods(cluster, ns, "cycle=yes", live=False), timeout=90, what="every pod of the cycle gone")


# ---- PodDisruptionBudget and eviction --------------------------------------------------------------

def evict(cluster, ns, name: str):
    body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": ns}}
    return cluster.kubectl("create", "--raw", f"/api/v1/namespaces/{ns}/pods/{name}/eviction", "-f", "-",
                           input=json.dumps(body), check=False)


def test_pdb_status_counts_running_pods_and_blocks_an_eviction_until_relaxed(cluster, ns):
    cluster.kubectl("create", "-n", ns, "-f", "-", input=controller("ReplicaSet", "db", replicas=3))
    cluster.kubectl("create", "poddisruptionbudget", "db", "-n", ns, "--selector=name=db", "--min-available=3")
    running = wait_for(lambda: all_running(cluster, ns, "name=db", 3), timeout=90, what="three running pods")

    def budget(**want):
        status = cluster.kubectl_json("get", "pdb", "db", "-n", ns).get("status") or {}
        return status if all(status.get(k) == v for k, v in want.items()) else None
    wait_for(lambda: budget(expectedPods=3, currentHealthy=3, desiredHealthy=3, disruptionsAllowed=0),
             timeout=30, what="the PDB status to count three healthy pods")
    victim = running[0]["metadata"]["name"]
    refused = evict(cluster, ns, victim)
    assert refused.returncode != 0 and "disruption budget" in refused.stderr, refused.stderr
    assert not cluster.kubectl_json("get", "pod", victim, "-n", ns)["metadata"].get("deletionTimestamp")

    cluster.kubectl("patch", "pdb", "db", "-n", ns, "--type=merge", "-p", '{"spec": {"minAvailable": 2}}')
    wait_for(lambda: budget(desiredHealthy=2, disruptionsAllowed=1), timeout=30, what="one disruption allowed")
    done = evict(cluster, ns, victim)
    assert done.returncode == 0, done.stderr
    # the evicted pod really stops; the ReplicaSet replaces it and the budget counts three again
    wait_for(lambda: victim not in {p["metadata"]["name"] for p in pods(cluster, ns, "name=db", live=False)},
             timeout=60, what="the evicted pod gone")
    wait_for(lambda: all_running(cluster, ns, "name=db", 3), timeout=90, what="a replacement running")
    wait_for(lambda: budget(currentHealthy=3, disruptionsAllowed=1), timeout=30, what="three healthy again")
