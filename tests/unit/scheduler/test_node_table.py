"""NodeTable: reading upstream's round-robin window off per-shape lists must choose exactly what
walking the nodes one by one chooses, as nodes fill up, get tainted, cordoned, added and removed."""

from __future__ import annotations

import random

import pytest

from k8py.scheduler.cache import SchedulerCache
from k8py.scheduler.framework import CycleState, FitError
from k8py.scheduler.node_table import NodeTable
from k8py.scheduler.plugins import default_profile
from k8py.scheduler.podinfo import PodInfo

from .helpers import node, pod


class _Feed:
    log_epoch = 0
    change_base = 0
    change_log: list = []


@pytest.mark.parametrize("bad, start, want, ranges, rejected, visited", [
    ([], 3, 4, [(3, 7)], [], 4),
    ([], 8, 4, [(8, 10), (0, 2)], [], 4),
    ([], 0, 50, [(0, 10)], [], 10),
    ([4, 5], 2, 4, [(2, 4), (6, 8)], [4, 5], 6),
    ([9, 0], 8, 3, [(8, 9), (1, 3)], [9, 0], 5),
    ([2], 0, 2, [(0, 2)], [], 2),                   # stops before a rejected node it doesn't need
    ([1, 3, 5, 7, 9], 6, 10, [(6, 7), (8, 9), (0, 1), (2, 3), (4, 5)], [7, 9, 1, 3, 5], 10),
    (list(range(10)), 4, 3, [], [4, 5, 6, 7, 8, 9, 0, 1, 2, 3], 10),
])
def test_window_walks_round_robin_past_rejected_nodes(bad, start, want, ranges, rejected, visited):
    t = NodeTable(list(range(10)), {}, [], [])
    t.infeasible = sorted(bad)
    assert t.window(start, want) == (ranges, rejected, visited)


def _cluster(n_nodes: int) -> SchedulerCache:
    cache = SchedulerCache()
    for i in range(n_nodes):
        # Mixed sizes so nodes fill up at different times and scores differ.
        cache.set_node(node(f"n{i:03d}", cpu=str(1 + i % 4), memory=f"{2 + i % 3}Gi", pods=str(5 + i % 7)))
    return cache


def _run(use_table: bool, steps) -> list:
    cache = _cluster(150)  # over 100 nodes, so only a share of them is searched
    prof = default_profile(rng=random.Random(7))
    if not use_table:
        prof.node_table = lambda *a, **kw: None
    out = []
    for step in steps:
        if step[0] == "pod":
            info = PodInfo(step[1])
            try:
                result = prof.schedule(CycleState(), info, cache.snapshot())
            except FitError as e:
                out.append(("fail", str(e)))
                continue
            assumed = cache.assume(info, result.node)
            if step[2]:
                cache.add_pod(assumed.pod)  # the informer confirms the binding
            out.append((result.node, prof.next_start))
        else:
            step[1](cache)
    return out


def test_table_chooses_exactly_what_the_node_walk_chooses():
    rng = random.Random(3)
    steps = []
    for i in range(400):
        cpu = rng.choice(["100m", "250m", "500m", "1"])
        steps.append(("pod", pod(f"p{i}", cpu=cpu, memory=rng.choice(["64Mi", "256Mi"])), i % 3 != 0))
        if i == 60:
            steps.append(("do", lambda c: c.set_node(node("n010", taints=[
                {"key": "k", "value": "v", "effect": "NoSchedule"}]))))
        if i == 90:
            steps.append(("do", lambda c: c.set_node(node("n020", unschedulable=True))))
        if i == 120:
            steps.append(("do", lambda c: c.set_node(node("n200", cpu="8", memory="16Gi"))))
        if i == 150:
            steps.append(("do", lambda c: c.remove_node("n030")))
        if i == 200:
            steps.append(("do", lambda c: c.remove_pod_key("default/p5")))
    steps.append(("pod", pod("huge", cpu="64"), True))
    with_table, walked = _run(True, steps), _run(False, steps)
    assert with_table == walked
    assert with_table[-1][0] == "fail" and "Insufficient cpu" in with_table[-1][1]
    assert len({n for n, _ in with_table[:-1]}) > 50  # the pods really spread over many nodes


def test_table_follows_the_change_log_and_rebuilds_after_a_trim():
    cache = _cluster(5)
    prof = default_profile(rng=random.Random(1))
    info = PodInfo(pod("a", cpu="100m"))
    state = CycleState()
    prof.run_pre_filters(state, info, cache.snapshot())
    table = prof.node_table(state, info, cache.snapshot(), None, {})
    assert table.infeasible == []
    cache.set_node(node("n002", unschedulable=True))
    table = prof.node_table(state, info, cache.snapshot(), None, {})
    assert table.infeasible == [2] and table.status[2].plugin == "NodeUnschedulable"
    cache.log_epoch += 1  # as when the cache trims its log: the table starts over
    cache.nodes["n003"].unschedulable = True
    table = prof.node_table(state, info, cache.snapshot(), None, {})
    assert table.infeasible == [2, 3]


def test_scoring_terms_group_the_same_way_per_node_and_cluster_wide():
    term = {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"app": "a"}}}
    spec = {"affinity": {
        "podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term],
                        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 5, "podAffinityTerm": term}]},
        "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 7, "podAffinityTerm": term}]}}}
    cache = _cluster(2)
    for i in range(3):
        cache.add_pod(pod(f"t{i}", spec=spec, node_name="n000"))
    info = cache.nodes["n000"].pods["default/t0"]
    assert [(k[0], k[1], amount) for k, _, amount in info.scoring_terms] == [
        ("required", 1, 1), ("preferred", 5, 5), ("anti", -7, -7)]
    per_node = {k: (amount, count) for k, (_, amount, count) in cache.nodes["n000"].affinity_groups.items()}
    cluster = {k: (amount, nodes) for k, (_, amount, nodes) in cache.scoring_terms.items()}
    assert per_node == {k: (a, 3) for k, _, a in info.scoring_terms}
    assert cluster == {k: (a, {"n000": 3}) for k, _, a in info.scoring_terms}
    for i in range(3):
        cache.remove_pod_key(f"default/t{i}")
    assert cache.nodes["n000"].affinity_groups == {} and cache.scoring_terms == {}
    assert PodInfo(pod("plain")).scoring_terms == ()


def test_a_new_node_realigns_the_table_instead_of_rebuilding_it():
    cache = _cluster(150)
    prof = default_profile(rng=random.Random(1))
    info = PodInfo(pod("a", cpu="100m"))
    state = CycleState()
    prof.run_pre_filters(state, info, cache.snapshot())
    table = prof.node_table(state, info, cache.snapshot(), None, {})
    computed = []
    original = NodeTable._compute
    NodeTable._compute = lambda self, st, p, n: computed.append(n.name) or original(self, st, p, n)
    try:
        cache.set_node(node("n075a", cpu="1", pods="1"))  # a new list: n010 goes, n075a comes last
        cache.add_pod(pod("x", cpu="1", node_name="n075a"))  # ... and is full at once
        cache.remove_node("n010")
        again = prof.node_table(state, info, cache.snapshot(), None, {})
    finally:
        NodeTable._compute = original
    assert again is table and sorted(set(computed)) == ["n075a"]
    names = [n.name for n in cache.snapshot().nodes]
    assert table.nodes is cache.snapshot().nodes and len(table.status) == len(names) == 150
    full = names.index("n075a")
    assert table.infeasible == [full] and table.status[full].reasons == ["Too many pods", "Insufficient cpu"]
    fresh = NodeTable(cache.snapshot().nodes, {}, table.filters, table.scorers)
    fresh.sync(state, info, cache, cache.snapshot().nodes, {n: i for i, n in enumerate(names)})
    assert fresh.scores == table.scores and [s is None for s in fresh.status] == [s is None for s in table.status]
