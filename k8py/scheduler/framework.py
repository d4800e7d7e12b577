"""The scheduling framework: statuses, cycle state, and one profile's run.

A profile is an ordered list of plugins; each implements the extension points
it needs as methods (pre_filter, filter, post_filter, pre_score, score,
normalize_score, reserve, ...). Filters return None for "fits" so the common
case costs nothing.
"""

from __future__ import annotations

import logging
import random
from itertools import compress, islice
from itertools import count as count_from
import sys
from dataclasses import dataclass, field

from k8py.scheduler.node_table import MAX_TABLES, NodeTable
from k8py.scheduler.nodeinfo import MEMO_LIMIT, NodeInfo, Snapshot
from k8py.scheduler.podinfo import PodInfo

log = logging.getLogger("k8py.scheduler")

SUCCESS, ERROR, UNSCHEDULABLE, UNRESOLVABLE, SKIP = "Success", "Error", "Unschedulable", \
    "UnschedulableAndUnresolvable", "Skip"
MAX_NODE_SCORE = 100
# Plugins whose filter result / raw score depend only on the node and the pod's shape
# (not on other nodes or on cycle-wide state), so they can be remembered per node generation.
NODE_LOCAL_FILTERS = frozenset({"NodeUnschedulable", "NodeName", "TaintToleration", "NodeAffinity", "NodePorts",
                                "NodeResourcesFit"})
NODE_LOCAL_SCORES = frozenset({"TaintToleration", "NodeAffinity", "NodeResourcesFit",
                               "NodeResourcesBalancedAllocation"})
_MISSING = object()


class Status:
    __slots__ = ("code", "reasons", "plugin")

    def __init__(self, code: str, *reasons: str, plugin: str = ""):
        self.code = code
        self.reasons = list(reasons)
        self.plugin = plugin

    @property
    def message(self) -> str:
        return ", ".join(self.reasons)

    def is_rejection(self) -> bool:
        return self.code in (UNSCHEDULABLE, UNRESOLVABLE)

    def __repr__(self) -> str:
        return f"Status({self.code}, {self.reasons}, plugin={self.plugin})"


def unschedulable(*reasons: str) -> Status:
    return Status(UNSCHEDULABLE, *reasons)


def unresolvable(*reasons: str) -> Status:
    return Status(UNRESOLVABLE, *reasons)


SKIPPED = Status(SKIP)


@dataclass
class PreFilterResult:
    """A PreFilter may narrow the candidate nodes to a set of names."""
    node_names: set[str] | None = None


class CycleState(dict):
    """Per-pod scratch space shared by a plugin's extension points (keyed by plugin name)."""
    skip_filter: set
    skip_score: set
    narrowed_by: set
    uniform_scores: dict

    def __init__(self):
        super().__init__()
        self.skip_filter = set()
        self.skip_score = set()
        self.narrowed_by = set()
        self.uniform_scores = {}


@dataclass
class Diagnosis:
    node_status: dict[str, Status] = field(default_factory=dict)
    pre_filter_msg: str = ""
    post_filter_msg: str = ""
    unschedulable_plugins: set = field(default_factory=set)


class FitError(Exception):
    def __init__(self, pod: PodInfo, num_all_nodes: int, diagnosis: Diagnosis):
        super().__init__()
        self.pod = pod
        self.num_all_nodes = num_all_nodes
        self.diagnosis = diagnosis

    def __str__(self) -> str:
        from k8py.scheduler.messages import fit_error_message
        return fit_error_message(self.num_all_nodes, self.diagnosis)


class NoNodesAvailable(Exception):
    def __str__(self) -> str:
        return "no nodes available to schedule pods"


@dataclass
class ScheduleResult:
    node: str
    evaluated: int
    feasible: int
    scores: dict[str, int] | None = None


def _memo(node: NodeInfo) -> dict:
    return node.current_memo()


def num_feasible_nodes_to_find(num_all: int, percentage: int | None) -> int:
    """Upstream's adaptive sampling: score a share of big clusters, never fewer than 100 nodes."""
    min_feasible, min_percent = 100, 5
    if num_all < min_feasible:
        return num_all
    pct = percentage if percentage else 0
    if pct == 0:
        pct = 50 - num_all // 125
        if pct < min_percent:
            pct = min_percent
    if pct >= 100:
        return num_all
    n = num_all * pct // 100
    return max(n, min_feasible)


class Profile:
    def __init__(self, name: str, plugins: list, score_weights: dict[str, int],
                 percentage_of_nodes_to_score: int | None = None, rng: random.Random | None = None):
        self.name = name
        self.plugins = plugins
        self.by_name = {p.name: p for p in plugins}
        self.score_weights = score_weights
        self.percentage = percentage_of_nodes_to_score
        self.queue_sort = next((p for p in plugins if hasattr(p, "less")), None)
        self.pre_filters = [p for p in plugins if hasattr(p, "pre_filter")]
        self.filters = [p for p in plugins if hasattr(p, "filter")]
        self.post_filters = [p for p in plugins if hasattr(p, "post_filter")]
        self.pre_scores = [p for p in plugins if hasattr(p, "pre_score")]
        self.scorers = [p for p in plugins if hasattr(p, "score") and score_weights.get(p.name)]
        # Node-local scores summed as they are (no normalizing) and never skipped (no PreScore):
        # what a NodeTable can hold for every node.
        self.table_scorers = [(p, score_weights[p.name]) for p in self.scorers if p.name in NODE_LOCAL_SCORES
                              and not hasattr(p, "normalize_score") and not hasattr(p, "pre_score")]
        self._tables: dict[str, NodeTable] = {}
        self._positions: tuple[list | None, dict] = (None, {})
        self.next_start = 0
        self.rng = rng or random.Random()
        self.trace = False  # the per-node decision log (-v 4)

    # ---- PreFilter / Filter ------------------------------------------------

    def run_pre_filters(self, state: CycleState, pod: PodInfo, snapshot: Snapshot
                        ) -> tuple[Status | None, set[str] | None]:
        allowed: set[str] | None = None
        for p in self.pre_filters:
            result = p.pre_filter(state, pod, snapshot)
            if result is None:
                continue
            if isinstance(result, PreFilterResult):
                if result.node_names is not None:
                    state.narrowed_by.add(p.name)
                    allowed = result.node_names if allowed is None else allowed & result.node_names
                continue
            if result.code == SKIP:
                state.skip_filter.add(p.name)
                continue
            result.plugin = result.plugin or p.name
            return result, None
        return None, allowed

    def run_filters(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        return self._run([p for p in self.filters if p.name not in state.skip_filter], state, pod, node)

    @staticmethod
    def _run(plugins: list, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        for p in plugins:
            st = p.filter(state, pod, node)
            if st is not None:
                st.plugin = p.name
                return st
        return None

    def find_feasible(self, state: CycleState, pod: PodInfo, snapshot: Snapshot, diagnosis: Diagnosis,
                      allowed: set[str] | None, nominated: dict[str, list[PodInfo]]) -> list[NodeInfo]:
        nodes = snapshot.nodes
        if allowed is not None:
            nodes = [n for n in nodes if n.name in allowed]
        n = len(nodes)
        want = num_feasible_nodes_to_find(n, self.percentage)
        feasible: list[NodeInfo] = []
        start = self.next_start % n if n else 0
        processed = 0
        active = [p for p in self.filters if p.name not in state.skip_filter]
        # The leading node-local filters are remembered per node and pod shape; the others
        # (which look at other nodes' pods) run every time, after them, in profile order.
        split = next((i for i, p in enumerate(active) if p.name not in NODE_LOCAL_FILTERS), len(active))
        local, rest = active[:split], active[split:]
        memo_key = sys.intern("filter" + ",".join(p.name for p in local) + pod.shape)
        trace = self.trace
        statuses, plugins = diagnosis.node_status, diagnosis.unschedulable_plugins
        only = rest[0] if len(rest) == 1 else None
        for i in range(n):
            node = nodes[(start + i) % n]
            processed += 1
            if nominated and node.name in nominated:
                st = self.filter_with_nominated(state, pod, node, snapshot, nominated)
            else:
                memo = node.memo if node.memo_generation == node.generation and len(node.memo) <= MEMO_LIMIT \
                    else node.current_memo()
                st = memo.get(memo_key, _MISSING)
                if st is _MISSING:
                    st = memo[memo_key] = self._run(local, state, pod, node)
                if st is None and rest:
                    if only is not None:
                        st = only.filter(state, pod, node)
                        if st is not None:
                            st.plugin = only.name
                    else:
                        st = self._run(rest, state, pod, node)
            if st is None:
                feasible.append(node)
                if trace:
                    log.debug("pod %s: node %s passed all filters", pod.key, node.name)
                if len(feasible) >= want:
                    break
            else:
                statuses[node.name] = st
                plugins.add(st.plugin)
                if trace:
                    log.debug("pod %s: node %s rejected by %s: %s", pod.key, node.name, st.plugin, st.message)
        self.next_start = (start + processed) % n if n else 0
        return feasible

    def node_table(self, state: CycleState, pod: PodInfo, snapshot: Snapshot, allowed: set[str] | None,
                   nominated: dict) -> NodeTable | None:
        """The pod shape's NodeTable, brought up to date, when every filter this pod needs is
        node-local; None when the node-by-node walk must run (a narrowed node set, nominated pods,
        the decision log, or filters that look at other nodes)."""
        feed = snapshot.change_feed
        if self.trace or allowed is not None or nominated or feed is None or not snapshot.nodes:
            return None
        active = [p for p in self.filters if p.name not in state.skip_filter]
        if any(p.name not in NODE_LOCAL_FILTERS for p in active):
            return None
        nodes = snapshot.nodes
        if self._positions[0] is not nodes:  # nodes came or went: tables realign when next used
            self._positions = (nodes, {n.name: i for i, n in enumerate(nodes)})
        key = sys.intern("table" + ",".join(p.name for p in active) + pod.shape)
        table = self._tables.pop(key, None)
        if table is None:
            table = NodeTable(nodes, self._positions[1], active, self.table_scorers)
        self._tables[key] = table  # most recently used last
        if len(self._tables) > MAX_TABLES:
            self._tables.pop(next(iter(self._tables)))
        table.sync(state, pod, feed, nodes, self._positions[1])
        return table

    def feasible_from_table(self, table: NodeTable, pod: PodInfo, diagnosis: Diagnosis
                            ) -> tuple[list[NodeInfo], list[int]]:
        """find_feasible's answer (and each fitting node's node-local score sum) read off a table."""
        nodes = table.nodes
        n = len(nodes)
        start = self.next_start % n
        ranges, rejected, processed = table.window(start, num_feasible_nodes_to_find(n, self.percentage))
        statuses, plugins = diagnosis.node_status, diagnosis.unschedulable_plugins
        for i in rejected:
            st = table.status[i]
            statuses[nodes[i].name] = st
            plugins.add(st.plugin)
        self.next_start = (start + processed) % n
        if len(ranges) == 1:
            lo, hi = ranges[0]
            return nodes[lo:hi], table.scores[lo:hi]
        feasible: list[NodeInfo] = []
        scores: list[int] = []
        for lo, hi in ranges:
            feasible += nodes[lo:hi]
            scores += table.scores[lo:hi]
        return feasible, scores

    def filter_with_nominated(self, state: CycleState, pod: PodInfo, node: NodeInfo, snapshot: Snapshot,
                              nominated: dict[str, list[PodInfo]]) -> Status | None:
        """Pods nominated to this node with priority >= ours count as already there (upstream's two passes)."""
        others = [p for p in nominated.get(node.name, ()) if p.priority >= pod.priority and p.key != pod.key]
        if others:
            with_them = node.clone()
            for p in others:
                with_them.add_pod(p)
            st = self.run_filters(state, pod, with_them)
            if st is not None:
                return st
        return self.run_filters(state, pod, node)

    # ---- Score -------------------------------------------------------------

    def run_scoring(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo], snapshot: Snapshot,
                    table_scores: list[int] | None = None) -> list[int]:
        """Each node's weighted total. `table_scores`: the nodes' sums of the table scorers, if known."""
        for p in self.pre_scores:
            st = p.pre_score(state, pod, nodes, snapshot)
            if st is not None and st.code == SKIP:
                state.skip_score.add(p.name)
        active = [p for p in self.scorers if p.name not in state.skip_score]
        if self.trace:
            return self._score_traced(state, pod, nodes, active)
        totals = [0] * len(nodes)
        uniform = 0
        local_sum = [p for p in active if p.name in NODE_LOCAL_SCORES and not hasattr(p, "normalize_score")]
        from_table = table_scores is not None and local_sum == [p for p, _ in self.table_scorers]
        if from_table:
            totals = list(table_scores)
        for p in active:
            if p.name in state.uniform_scores:
                # Every node would get the same normalized score: add it without per-node work.
                uniform += state.uniform_scores[p.name] * self.score_weights[p.name]
            elif p not in local_sum:
                scores = self._plugin_scores(state, pod, nodes, p)
                w = self.score_weights[p.name]
                totals = [t + s * w for t, s in zip(totals, scores)]
        if local_sum and not from_table:
            # Node-local, unnormalized scores: one remembered weighted sum per node and pod shape.
            key = sys.intern("score-sum" + pod.shape)
            weighted = [(p, self.score_weights[p.name]) for p in local_sum]
            for i, node in enumerate(nodes):
                memo = node.memo if node.memo_generation == node.generation and len(node.memo) <= MEMO_LIMIT \
                    else node.current_memo()
                v = memo.get(key)
                if v is None:
                    v = memo[key] = sum(p.score(state, pod, node) * w for p, w in weighted)
                totals[i] += v
        # `uniform` is the same on every node: leaving it out changes no choice (the decision
        # log, which prints totals, adds it in _score_traced).
        return totals

    def _plugin_scores(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo], p) -> list[int]:
        if p.name in NODE_LOCAL_SCORES:
            key = sys.intern(p.name + pod.shape)
            scores = []
            for node in nodes:
                memo = _memo(node)
                s = memo.get(key)
                if s is None:
                    s = memo[key] = p.score(state, pod, node)
                scores.append(s)
        elif hasattr(p, "score_nodes"):
            scores = p.score_nodes(state, pod, nodes)
        else:
            scores = [p.score(state, pod, node) for node in nodes]
        if hasattr(p, "normalize_score"):
            p.normalize_score(state, pod, scores)
        return scores

    def _score_traced(self, state: CycleState, pod: PodInfo, nodes: list[NodeInfo], active: list) -> list[int]:
        totals = [0] * len(nodes)
        per_plugin = {}
        for p in active:
            if p.name in state.uniform_scores:
                scores = [state.uniform_scores[p.name]] * len(nodes)
            else:
                scores = self._plugin_scores(state, pod, nodes, p)
            w = self.score_weights[p.name]
            for i, s in enumerate(scores):
                totals[i] += s * w
            per_plugin[p.name] = scores
        for i, node in enumerate(nodes):
            parts = ", ".join(f"{name}={scores[i]}x{self.score_weights[name]}" for name, scores in per_plugin.items())
            log.debug("pod %s: node %s score %d (%s)", pod.key, node.name, totals[i], parts)
        return totals

    def select_host(self, nodes: list[NodeInfo], totals: list[int]) -> str:
        """Highest total wins; ties are broken uniformly at random, as upstream does."""
        best = max(totals)
        count = totals.count(best)
        # The k-th of the tied nodes, k uniform: what rng.choice(ties) would pick (randrange(n)
        # draws exactly as choice does), without building the list of ties.
        if count == 1:
            return nodes[totals.index(best)].name
        k = self.rng.randrange(count)
        return nodes[next(islice(compress(count_from(), map(best.__eq__, totals)), k, None))].name

    # ---- the whole algorithm ------------------------------------------------

    def schedule(self, state: CycleState, pod: PodInfo, snapshot: Snapshot,
                 nominated: dict[str, list[PodInfo]] | None = None) -> ScheduleResult:
        if not snapshot.nodes:
            raise NoNodesAvailable()
        nominated = nominated or {}
        diagnosis = Diagnosis()
        st, allowed = self.run_pre_filters(state, pod, snapshot)
        if st is not None:
            for node in snapshot.nodes:
                diagnosis.node_status[node.name] = st
            diagnosis.pre_filter_msg = st.message
            diagnosis.unschedulable_plugins.add(st.plugin)
            raise FitError(pod, len(snapshot.nodes), diagnosis)
        if allowed is not None:
            absent = unresolvable(f"node(s) didn't satisfy plugin(s) [{' '.join(sorted(state.narrowed_by))}]")
            for node in snapshot.nodes:
                if node.name not in allowed:
                    diagnosis.node_status[node.name] = absent
        # A pod that preempted for a node tries that node first (upstream's evaluateNominatedNode).
        nominated_node = (pod.pod.get("status") or {}).get("nominatedNodeName")
        if nominated_node and nominated_node in snapshot.by_name and (allowed is None or nominated_node in allowed):
            if self.filter_with_nominated(state, pod, snapshot.by_name[nominated_node], snapshot, nominated) is None:
                return ScheduleResult(nominated_node, 1, 1)
        table = self.node_table(state, pod, snapshot, allowed, nominated)
        table_scores = None
        if table is not None:
            feasible, table_scores = self.feasible_from_table(table, pod, diagnosis)
        else:
            feasible = self.find_feasible(state, pod, snapshot, diagnosis, allowed, nominated)
        if not feasible:
            raise FitError(pod, len(snapshot.nodes), diagnosis)
        evaluated = len(feasible) + len(diagnosis.node_status)
        if len(feasible) == 1:
            return ScheduleResult(feasible[0].name, evaluated, 1)
        totals = self.run_scoring(state, pod, feasible, snapshot, table_scores)
        return ScheduleResult(self.select_host(feasible, totals), evaluated, len(feasible),
                              dict(zip((n.name for n in feasible), totals)) if self.trace else None)
