"""StatefulSet conformance behaviours with real runc containers and the real kubectl.

Upstream's StatefulSet conformance cases, each with three nginx pods at most:
ordered scaling that halts on an unhealthy pod, Parallel burst scaling that
does not, a rolling update and its rollback, and a canary plus phased
rollout with a partition that survives pods deleted mid-rollout. A pod is
made unhealthy as upstream does it: its readiness probe fetches
/index.html, and the test moves that file away (and back) inside the
container. The cluster (one node in its own network namespace, with the
controller-manager as its own process) is the one test_workloads_real.py
uses, started once for this module.
"""

from __future__ import annotations

import json

from tests.e2e.conftest import wait_for
from tests.e2e.test_workloads_real import (all_running, census, cluster, ns, pods,  # noqa: F401 (fixtures)
                                           running_in_runc)

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


def restore_probe(cluster, ns, *pod_names: str) -> None:
    for name in pod_names:
        cluster.kubectl("exec", "-n", ns, name, "--", "mv", "/tmp/index.html", f"{HTML}/index.html")


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
        restore_probe(cluster, ns, "web-0", "web-1", "web-2")
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
