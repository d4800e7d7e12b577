"""The default profile end to end over plain dicts: messages, sampling, preemption, the queue."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest
import yaml

from k8py.scheduler.framework import CycleState, FitError, NoNodesAvailable, num_feasible_nodes_to_find
from k8py.scheduler.plugins import default_profile
from k8py.scheduler.podinfo import PodInfo
from k8py.scheduler.queue import NODE_ADD, POD_ADD, SchedulingQueue

from .helpers import node, pod, schedule, snapshot

SEED = Path(__file__).resolve().parents[4] / "shared" / "manifests" / "seed" / "08-scheduling.yaml"


def failure_message(p, snap) -> str:
    prof = default_profile(rng=random.Random(1))
    info = PodInfo(p)
    with pytest.raises(FitError) as err:
        prof.schedule(CycleState(), info, snap)
    post = prof.by_name["DefaultPreemption"].post_filter(prof, info, snap, err.value.diagnosis)
    err.value.diagnosis.post_filter_msg = post.message
    return str(err.value)


# ---- the seed's examples -----------------------------------------------------------

def seed_pods() -> dict[str, dict]:
    docs = [d for d in yaml.safe_load_all(SEED.read_text()) if d]
    for d in docs:
        d["metadata"].setdefault("namespace", "default")
        d["spec"].setdefault("priority", 0)
    return {d["metadata"]["name"]: d for d in docs}


def test_seed_node_selector_pod_lands_on_the_labelled_node():
    snap = snapshot([node("plain"), node("labelled", labels={"source": "qikqiak"}), node("other")])
    assert schedule(seed_pods()["node-selector-pod"], snap).node == "labelled"
    msg = failure_message(seed_pods()["node-selector-pod"], snapshot([node("plain"), node("other")]))
    assert msg == ("0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector. "
                   "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.")


def test_seed_node_affinity_pod_avoids_excluded_host_and_spreads_softly():
    master_taint = [{"key": "node-role.kubernetes.io/master", "effect": "NoSchedule"}]
    p = seed_pods()["node-affinity-pod"]
    twin = dict(p, metadata={**p["metadata"], "name": "twin"}, spec={**p["spec"], "nodeName": "master"})
    snap = snapshot([node("192.168.1.140"), node("master", taints=master_taint), node("worker")], [twin])
    # the excluded hostname never fits; the master taint is tolerated; anti-affinity prefers
    # the node without a twin, so it always lands on "worker"
    for seed in range(5):
        prof = default_profile(rng=random.Random(seed))
        assert prof.schedule(CycleState(), PodInfo(p), snap).node == "worker"


# ---- messages --------------------------------------------------------------------------

def test_failed_scheduling_message_sorts_reasons_like_upstream():
    snap = snapshot([node("t", taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}]),
                     node("s1", cpu="1"), node("s2", cpu="1")])
    assert failure_message(pod("p", cpu="2"), snap) == (
        "0/3 nodes are available: 1 node(s) had untolerated taint {k: v}, 2 Insufficient cpu. "
        "preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, "
        "2 No preemption victims found for incoming pod.")


def test_message_when_every_node_is_unresolvable():
    snap = snapshot([node("a", unschedulable=True), node("b", taints=[{"key": "k", "effect": "NoSchedule"}])])
    assert failure_message(pod("p"), snap) == (
        "0/2 nodes are available: 1 node(s) had untolerated taint {k: }, 1 node(s) were unschedulable. "
        "preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.")


def test_message_preemption_policy_never_and_no_nodes():
    p = pod("p", cpu="8", spec={"preemptionPolicy": "Never"})
    assert failure_message(p, snapshot([node("a")])) == (
        "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never.")
    with pytest.raises(NoNodesAvailable, match="no nodes available to schedule pods"):
        schedule(pod("p"), snapshot([]))


# ---- sampling ------------------------------------------------------------------------------

@pytest.mark.parametrize("nodes, pct, want", [
    (50, None, 50), (100, None, 100), (1000, None, 420), (5000, None, 500), (6000, None, 300),
    (20000, None, 1000), (1000, 10, 100), (1000, 100, 1000), (300, 10, 100),
])
def test_num_feasible_nodes_to_find(nodes, pct, want):
    assert num_feasible_nodes_to_find(nodes, pct) == want


def test_round_robin_start_index_over_a_sample():
    snap = snapshot([node(f"n{i:03}") for i in range(300)])
    prof = default_profile(percentage_of_nodes_to_score=10, rng=random.Random(0))
    prof.schedule(CycleState(), PodInfo(pod("a")), snap)
    # the first cycle evaluated nodes 0..99 (100 = the minimum), so the next starts at 100
    assert prof.next_start == 100
    prof.schedule(CycleState(), PodInfo(pod("b")), snap)
    assert prof.next_start == 200


# ---- preemption --------------------------------------------------------------------------------

def test_preemption_picks_lowest_priority_victims():
    snap = snapshot([node("a", cpu="2"), node("b", cpu="2")], [
        pod("low", cpu="2", priority=1, node_name="a"),
        pod("mid", cpu="2", priority=50, node_name="b")])
    prof = default_profile(rng=random.Random(0))
    info = PodInfo(pod("vip", cpu="2", priority=100))
    with pytest.raises(FitError) as err:
        prof.schedule(CycleState(), info, snap)
    result = prof.by_name["DefaultPreemption"].post_filter(prof, info, snap, err.value.diagnosis)
    assert result.nominated_node == "a"
    assert [v.name for v in result.victims] == ["low"]


def test_preemption_keeps_pods_it_does_not_need_to_evict():
    snap = snapshot([node("a", cpu="4")], [pod("l1", cpu="1", priority=1, node_name="a"),
                                           pod("l2", cpu="2", priority=2, node_name="a"),
                                           pod("l3", cpu="1", priority=3, node_name="a")])
    prof = default_profile()
    info = PodInfo(pod("vip", cpu="2", priority=100))
    with pytest.raises(FitError) as err:
        prof.schedule(CycleState(), info, snap)
    result = prof.by_name["DefaultPreemption"].post_filter(prof, info, snap, err.value.diagnosis)
    # put back l3 (most important), then l2 fits no more, then l1 fits: only l2 goes
    assert [v.name for v in result.victims] == ["l2"]


def test_nominated_pods_hold_their_place():
    snap = snapshot([node("a", cpu="2")])
    prof = default_profile()
    waiting = PodInfo(pod("vip", cpu="2", priority=100, status={"nominatedNodeName": "a"}))
    with pytest.raises(FitError):
        prof.schedule(CycleState(), PodInfo(pod("small", cpu="1")), snap, {"a": [waiting]})
    # a more important pod is not held back by a less important nomination
    assert prof.schedule(CycleState(), PodInfo(pod("vip2", cpu="1", priority=200)), snap, {"a": [waiting]}).node


# ---- the queue --------------------------------------------------------------------------------------

class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_queue_orders_by_priority_then_age_and_backs_off():
    async def main():
        clock = FakeClock()
        q = SchedulingQueue(clock=clock)
        q.add(PodInfo(pod("first")))
        clock.now += 1
        q.add(PodInfo(pod("second")))
        q.add(PodInfo(pod("urgent", priority=10)))
        order = [(await q.pop()).info.name for _ in range(3)]
        assert order == ["urgent", "first", "second"]
        # "first" fails: unschedulable until a relevant event, then back-off (1s after one attempt)
        q.add(PodInfo(pod("x")))
        qp = await q.pop()
        q.requeue_unschedulable(qp, {"NodeResourcesFit"})
        assert q.counts()["unschedulable"] == 1
        q.on_event(POD_ADD)  # NodeResourcesFit does not care about pods being added
        assert q.counts()["unschedulable"] == 1
        q.on_event(NODE_ADD)
        assert q.counts()["backoff"] == 1
        clock.now += 1.0
        assert (await q.pop()).info.name == "x"
        assert q.backoff_duration(qp) == 2.0  # second attempt doubles
        qp.attempts = 10
        assert q.backoff_duration(qp) == 10.0
    asyncio.run(main())


def test_queue_event_during_attempt_sends_pod_to_backoff_and_flushes_after_timeout():
    async def main():
        clock = FakeClock()
        q = SchedulingQueue(clock=clock)
        q.add(PodInfo(pod("p")))
        qp = await q.pop()
        q.on_event(NODE_ADD)  # arrives while "p" is being scheduled
        q.requeue_unschedulable(qp, {"NodeAffinity"})
        assert q.counts()["backoff"] == 1
        q2 = SchedulingQueue(clock=clock)
        q2.add(PodInfo(pod("stuck")))
        qp2 = await q2.pop()
        q2.requeue_unschedulable(qp2, {"NodeAffinity"})
        clock.now += 299
        q2.flush_unschedulable()
        assert q2.counts()["unschedulable"] == 1
        clock.now += 1
        q2.flush_unschedulable()
        assert q2.counts()["active"] == 1
    asyncio.run(main())


# ---- the decision log ---------------------------------------------------------------------------------

def test_decision_log_names_the_rejecting_filter_and_each_score(caplog):
    snap = snapshot([node("small", cpu="1"), node("big1", cpu="8"), node("big2", cpu="8", labels={"disk": "ssd"})])
    prof = default_profile(rng=random.Random(0))
    prof.trace = True
    spec = {"affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 5, "preference": {"matchExpressions": [{"key": "disk", "operator": "Exists"}]}}]}}}
    with caplog.at_level("DEBUG", logger="k8py.scheduler"):
        result = prof.schedule(CycleState(), PodInfo(pod("p", cpu="2", spec=spec)), snap)
    assert result.node == "big2"
    text = caplog.text
    assert "node small rejected by NodeResourcesFit: Insufficient cpu" in text
    assert "node big1 passed all filters" in text
    assert "node big2 score" in text and "NodeAffinity=100x2" in text and "NodeResourcesFit=" in text
    assert result.scores["big2"] > result.scores["big1"]


def test_preemption_prefers_victims_no_pdb_protects():
    protected = pod("guarded", cpu="2", priority=1, node_name="a", labels={"app": "db"})
    snap = snapshot([node("a", cpu="2"), node("b", cpu="2")],
                    [protected, pod("free", cpu="2", priority=5, node_name="b")],
                    listers={"poddisruptionbudgets": [{
                        "metadata": {"name": "db", "namespace": "default"},
                        "spec": {"selector": {"matchLabels": {"app": "db"}}}, "status": {"disruptionsAllowed": 0}}]})
    prof = default_profile()
    info = PodInfo(pod("vip", cpu="2", priority=100))
    with pytest.raises(FitError) as err:
        prof.schedule(CycleState(), info, snap)
    result = prof.by_name["DefaultPreemption"].post_filter(prof, info, snap, err.value.diagnosis)
    # "guarded" has the lower priority, but evicting it would break its budget
    assert result.nominated_node == "b" and [v.name for v in result.victims] == ["free"]


def test_pod_tries_its_nominated_node_first():
    snap = snapshot([node("busy", cpu="4"), node("idle", cpu="4")], [pod("x", cpu="3", node_name="busy")])
    p = pod("vip", cpu="1", status={"nominatedNodeName": "busy"})
    # LeastAllocated alone would pick "idle"; the nomination wins while the node fits
    assert schedule(p, snap).node == "busy"
    assert schedule(pod("other", cpu="1"), snap).node == "idle"
