"""Pure controller logic: rollout arithmetic, deletion ranking, slow start, template hashes."""

import datetime

import pytest

from k8py.controllers import podutil, rollout

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)


def stamp(seconds_ago: float) -> str:
    return (T0 - datetime.timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def deployment(replicas=10, surge="25%", unavailable="25%", strategy="RollingUpdate", status_replicas=None):
    d = {"metadata": {"name": "d", "generation": 1},
         "spec": {"replicas": replicas, "strategy": {"type": strategy}}}
    if strategy == "RollingUpdate":
        d["spec"]["strategy"]["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavailable}
    if status_replicas is not None:
        d["status"] = {"replicas": status_replicas}
    return d


def rs(name, replicas, available=0, created=0, max_replicas=None, desired=None, revision=None, status_replicas=None):
    annotations = {}
    if max_replicas is not None:
        annotations[rollout.MAX_REPLICAS] = str(max_replicas)
    if desired is not None:
        annotations[rollout.DESIRED_REPLICAS] = str(desired)
    if revision is not None:
        annotations[rollout.REVISION] = str(revision)
    return {"metadata": {"name": name, "creationTimestamp": stamp(1000 - created), "annotations": annotations,
                         "generation": 1},
            "spec": {"replicas": replicas},
            "status": {"replicas": replicas if status_replicas is None else status_replicas,
                       "availableReplicas": available, "observedGeneration": 1}}


@pytest.mark.parametrize("replicas,surge,unavailable,expected", [
    (10, "25%", "25%", (3, 2)),      # surge rounds up, unavailable down
    (3, 1, 1, (1, 1)),
    (4, "10%", "10%", (1, 0)),
    (1, 0, 0, (0, 1)),                # both zero would never progress
    (1, "0%", "0%", (0, 1)),
    (10, "100%", "0%", (10, 0)),
    (0, "25%", "25%", (0, 1)),
])
def test_fenceposts_round_as_upstream(replicas, surge, unavailable, expected):
    assert rollout.fenceposts(deployment(replicas, surge, unavailable)) == expected


def test_max_unavailable_is_capped_by_replicas_and_zero_for_recreate():
    assert rollout.max_unavailable(deployment(2, 0, 5)) == 2
    assert rollout.max_unavailable(deployment(5, strategy="Recreate")) == 0
    assert rollout.max_surge(deployment(5, strategy="Recreate")) == 0


def test_new_replica_set_grows_up_to_replicas_plus_surge():
    d = deployment(10, "25%", "25%")
    old, new = rs("old", 10), rs("new", 0)
    assert rollout.new_rs_replicas(d, [old, new], new) == 3
    old, new = rs("old", 8), rs("new", 3)
    assert rollout.new_rs_replicas(d, [old, new], new) == 5
    old, new = rs("old", 10), rs("new", 3)  # already at 13: no more room
    assert rollout.new_rs_replicas(d, [old, new], new) == 3
    assert rollout.new_rs_replicas(deployment(4, strategy="Recreate"), [], None) == 4


def test_old_replica_sets_shrink_unhealthy_first_then_while_availability_allows():
    d = deployment(10, "25%", "25%")  # min available 8
    new = rs("new", 3, available=0)
    old = rs("old", 10, available=10)
    budget = rollout.old_scale_down_budget(d, [new, old], new)
    assert budget == 13 - 8 - 3 == 2
    assert rollout.plan_unhealthy_cleanup([old], budget) == {}
    assert rollout.plan_old_scale_down(d, [new, old], [old]) == {"old": 8}
    sick = rs("sick", 4, available=1, created=1)
    assert rollout.plan_unhealthy_cleanup([old, sick], 2) == {"sick": 2}


def test_proportional_scaling_shares_a_resize_by_size():
    d = deployment(12, 3, 0, status_replicas=13)  # was 10 + surge 3, now 12 + 3 = 15 allowed
    new = rs("new", 5, max_replicas=13, created=2)
    old = rs("old", 8, max_replicas=13, created=1)
    assert rollout.proportional_sizes(d, [new, old]) == {"new": 6, "old": 9}
    shrink = deployment(5, 3, 0, status_replicas=13)  # 8 allowed: 5 to remove
    assert rollout.proportional_sizes(shrink, [new, old]) == {"new": 3, "old": 5}


def test_proportional_scaling_leftover_goes_to_the_biggest():
    d = deployment(11, 0, 1)
    a = rs("a", 5, max_replicas=10, created=1)
    b = rs("b", 5, max_replicas=10, created=2)
    sizes = rollout.proportional_sizes(d, [a, b])
    assert sum(sizes.values()) == 11 and sorted(sizes.values()) == [5, 6]


def test_template_hash_is_stable_and_name_safe():
    t = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
    same = {"spec": {"containers": [{"image": "nginx", "name": "c"}]}, "metadata": {"labels": {"app": "x"}}}
    h = rollout.template_hash(t)
    assert h == rollout.template_hash(same) and 8 <= len(h) <= 10
    assert set(h) <= set("bcdfghjklmnpqrstvwxz2456789")
    assert rollout.template_hash(t, 1) != h
    other = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "nginx:2"}]}}
    assert rollout.template_hash(other) != h


def test_templates_compare_without_the_hash_label():
    a = {"metadata": {"labels": {"app": "x", "pod-template-hash": "abc"}}, "spec": {"x": 1}}
    b = {"metadata": {"labels": {"app": "x"}}, "spec": {"x": 1}}
    assert rollout.same_template(a, b)
    assert not rollout.same_template(a, {"metadata": {"labels": {"app": "y"}}, "spec": {"x": 1}})


def test_history_cleanup_keeps_limit_and_skips_busy_sets():
    sets = [rs(f"r{i}", 0, revision=i, status_replicas=0) for i in range(1, 6)]
    sets[1]["status"]["replicas"] = 1  # revision 2 still has a pod
    doomed = rollout.history_to_clean(sets, 2)
    assert [r["metadata"]["name"] for r in doomed] == ["r1", "r3"]
    assert rollout.history_to_clean(sets, 10) == []


def pod(name, node="", phase="Running", ready=True, ready_for=100, age=100, restarts=0, cost=None):
    p = {"metadata": {"name": name, "creationTimestamp": stamp(age), "annotations": {}},
         "spec": {"nodeName": node} if node else {},
         "status": {"phase": phase, "containerStatuses": [{"restartCount": restarts}],
                    "conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                    "lastTransitionTime": stamp(ready_for)}]}}
    if cost is not None:
        p["metadata"]["annotations"][podutil.DELETION_COST] = str(cost)
    return p


def names(pods):
    return [p["metadata"]["name"] for p in pods]


def test_deletion_order_follows_upstream_ranking():
    order = podutil.deletion_order([
        pod("running-ready", "n1"),
        pod("unscheduled", phase="Pending", ready=False),
        pod("pending", "n1", phase="Pending", ready=False),
        pod("unknown", "n1", phase="Unknown", ready=False),
        pod("not-ready", "n1", ready=False),
    ], at=T0)
    assert names(order) == ["unscheduled", "pending", "unknown", "not-ready", "running-ready"]


def test_deletion_order_cost_crowding_readiness_restarts_age():
    assert names(podutil.deletion_order([pod("cheap-no", "n1", cost=10), pod("cheap", "n2", cost=-5)],
                                        at=T0)) == ["cheap", "cheap-no"]
    crowded = [pod("alone", "n1"), pod("crowd-a", "n2", age=5000), pod("crowd-b", "n2", age=5000)]
    assert names(podutil.deletion_order(crowded, at=T0))[-1] == "alone"
    assert names(podutil.deletion_order([pod("long", "n1", ready_for=10000), pod("short", "n2", ready_for=10)],
                                        at=T0)) == ["short", "long"]
    assert names(podutil.deletion_order([pod("calm", "n1"), pod("flaky", "n2", restarts=4)],
                                        at=T0)) == ["flaky", "calm"]
    assert names(podutil.deletion_order([pod("old", "n1", age=100000), pod("new", "n2", age=10)],
                                        at=T0)) == ["new", "old"]


def test_availability_needs_min_ready_seconds_of_readiness():
    p = pod("p", "n1", ready_for=5)
    assert podutil.is_available(p, 0, at=T0)
    assert podutil.is_available(p, 5, at=T0)
    assert not podutil.is_available(p, 6, at=T0)
    assert not podutil.is_available(pod("q", ready=False), 0, at=T0)


def test_slow_start_batches_double():
    assert podutil.slow_start_batches(10) == [1, 2, 4, 3]
    assert podutil.slow_start_batches(1) == [1]
    assert podutil.slow_start_batches(0) == []
    assert sum(podutil.slow_start_batches(500)) == 500


def test_progress_and_completion():
    d = deployment(3)
    d["status"] = {"updatedReplicas": 1, "replicas": 4, "availableReplicas": 2}
    assert rollout.is_progressing(d, {"updatedReplicas": 2, "replicas": 4, "availableReplicas": 2})
    assert not rollout.is_progressing(d, dict(d["status"]))
    assert rollout.is_complete(d, {"updatedReplicas": 3, "replicas": 3, "availableReplicas": 3,
                                   "observedGeneration": 1})
    assert not rollout.is_complete(d, {"updatedReplicas": 3, "replicas": 4, "availableReplicas": 3,
                                       "observedGeneration": 1})
