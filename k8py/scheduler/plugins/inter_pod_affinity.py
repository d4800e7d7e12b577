"""InterPodAffinity: required/preferred pod affinity and anti-affinity, both ways.

Filter: the incoming pod's required affinity must find matching pods in the
node's topology domain, its required anti-affinity must find none, and no
existing pod's required anti-affinity may match the incoming pod there
(symmetry). Score: preferred terms of both sides, plus existing pods'
required affinity terms at the hard-affinity weight (1).
"""

from __future__ import annotations

import sys

from k8py.scheduler.framework import MAX_NODE_SCORE, SKIPPED, unresolvable, unschedulable
from k8py.scheduler.nodeinfo import MEMO_LIMIT

ERR_EXISTING_ANTI = "node(s) didn't satisfy existing pods anti-affinity rules"
ERR_AFFINITY = "node(s) didn't match pod affinity rules"
ERR_ANTI = "node(s) didn't match pod anti-affinity rules"
HARD_POD_AFFINITY_WEIGHT = 1
EXISTING_ANTI, AFFINITY, ANTI = unschedulable(ERR_EXISTING_ANTI), unresolvable(ERR_AFFINITY), unschedulable(ERR_ANTI)


def merge_namespace_selectors(terms, namespace_labels: dict[str, dict]) -> None:
    """Resolve a term's namespaceSelector into namespace names once per cycle."""
    for t in terms:
        if t.namespace_selector is not None:
            t.namespaces |= {ns for ns, labels in namespace_labels.items() if t.namespace_selector.matches(labels)}
            t._sig = None


def _matches_all(terms, pod, ns_labels) -> bool:
    return all(t.matches(pod, ns_labels) for t in terms)


class _FilterState:
    __slots__ = ("existing_anti", "affinity", "anti")

    def __init__(self):
        self.existing_anti: dict[tuple[str, str], int] = {}
        self.affinity: dict[tuple[str, str], int] = {}
        self.anti: dict[tuple[str, str], int] = {}


def _bump(counts: dict, labels: dict, key: str, by: int = 1) -> None:
    value = labels.get(key)
    if value is not None:
        pair = (key, value)
        counts[pair] = counts.get(pair, 0) + by


class _Aggregate:
    """Cluster-wide topology scores for one kind of incoming pod, kept current from the cache's
    change log: only nodes that changed since the last cycle are revisited."""
    __slots__ = ("epoch", "position", "total", "keys", "per_node", "per_group", "matched")

    def __init__(self, epoch: int):
        self.epoch = epoch
        self.position = 0
        self.total: dict[tuple[str, str], int] = {}
        self.keys: set[str] = set()
        self.per_node: dict[str, list] = {}
        self.per_group: dict[tuple, list] = {}
        self.matched: dict[tuple, bool] = {}

    def put(self, name: str, parts: list) -> None:
        total = self.total
        for pair, amount in self.per_node.pop(name, ()):
            total[pair] -= amount
        if parts:
            self.per_node[name] = parts
            for pair, amount in parts:
                total[pair] = total.get(pair, 0) + amount
                self.keys.add(pair[0])


MAX_AGGREGATES = 8


class InterPodAffinity:
    name = "InterPodAffinity"

    def __init__(self):
        self._aggregates: dict[str, _Aggregate] = {}

    # ---- filter -------------------------------------------------------------

    def pre_filter(self, state, pod, snapshot):
        with_anti = snapshot.with_required_anti_affinity
        if not pod.required_affinity and not pod.required_anti_affinity and not with_anti:
            return SKIPPED
        ns_labels = snapshot.namespace_labels
        merge_namespace_selectors(pod.required_affinity + pod.required_anti_affinity, ns_labels)
        own_ns_labels = ns_labels.get(pod.namespace)
        s = _FilterState()
        matched: dict[tuple, bool] = {}
        for node in with_anti:
            for existing in node.pods_with_required_anti_affinity.values():
                for t in existing.required_anti_affinity:
                    hit = matched.get(t.sig)
                    if hit is None:
                        hit = matched[t.sig] = t.matches(pod, own_ns_labels)
                    if hit:
                        _bump(s.existing_anti, node.labels, t.topology_key)
        if pod.required_affinity or pod.required_anti_affinity:
            # Per group of look-alike pods: (matches all affinity terms, anti-affinity terms it matches).
            verdicts: dict[tuple, tuple] = {}
            for node in snapshot.nodes:
                labels = node.labels
                for gkey, (ns, plabels, _, count) in node.label_groups.items():
                    v = verdicts.get(gkey)
                    if v is None:
                        ens = ns_labels.get(ns)
                        v = verdicts[gkey] = (
                            bool(pod.required_affinity) and all(
                                t.matches_labels(ns, plabels, ens) for t in pod.required_affinity),
                            [t for t in pod.required_anti_affinity if t.matches_labels(ns, plabels, ens)])
                    if v[0]:
                        for t in pod.required_affinity:
                            _bump(s.affinity, labels, t.topology_key, count)
                    for t in v[1]:
                        _bump(s.anti, labels, t.topology_key, count)
        state[self.name] = s
        return None

    def filter(self, state, pod, node):
        s: _FilterState = state[self.name]
        labels = node.labels
        if s.existing_anti:
            for key, value in labels.items():
                if s.existing_anti.get((key, value), 0) > 0:
                    return EXISTING_ANTI
        if pod.required_affinity and not self._satisfies_affinity(s, pod, labels, state):
            return AFFINITY
        for t in pod.required_anti_affinity:
            value = labels.get(t.topology_key)
            if value is not None and s.anti.get((t.topology_key, value), 0) > 0:
                return ANTI
        return None

    @staticmethod
    def _satisfies_affinity(s: _FilterState, pod, labels: dict, state) -> bool:
        pods_exist = True
        for t in pod.required_affinity:
            value = labels.get(t.topology_key)
            if value is None:
                return False  # every topology key must be on the node
            if s.affinity.get((t.topology_key, value), 0) <= 0:
                pods_exist = False
        if pods_exist:
            return True
        # The first pod of a group that is affine to itself may go anywhere
        # that has the topology labels, or it would wait forever.
        return not s.affinity and _matches_all(pod.required_affinity, pod, None)

    # ---- score --------------------------------------------------------------

    def pre_score(self, state, pod, nodes, snapshot):
        has_constraints = bool(pod.preferred_affinity or pod.preferred_anti_affinity)
        index = snapshot.scoring_terms
        if not has_constraints and (not index if index is not None else not snapshot.with_affinity):
            return SKIPPED
        ns_labels = snapshot.namespace_labels
        merge_namespace_selectors(pod.preferred_affinity + pod.preferred_anti_affinity, ns_labels)
        own_ns_labels = ns_labels.get(pod.namespace)
        terms = [(t, t.weight) for t in pod.preferred_affinity] + \
            [(t, -t.weight) for t in pod.preferred_anti_affinity]
        feed = snapshot.change_feed
        if feed is not None:
            return self._pre_score_incremental(state, pod, snapshot, terms, feed, has_constraints, ns_labels,
                                               own_ns_labels)
        score: dict[tuple[str, str], int] = {}  # (topology key, value) -> score
        get = score.get

        scan_existing = index is None
        if has_constraints or scan_existing:
            # What one node adds depends only on that node (and its pods) and on the incoming pod's
            # terms, labels and namespace: remembered per node generation. A string key hashes once.
            memo_key = sys.intern("ipa-score" + repr((pod.namespace, sorted(pod.labels.items()), scan_existing,
                                                      [(t.sig, w) for t, w in terms], snapshot.namespace_generation)))
            per_group: dict[tuple, list] = {}
            matched: dict[tuple, bool] = {}
            for node in snapshot.nodes if has_constraints else snapshot.with_affinity:
                memo = node.memo if node.memo_generation == node.generation and len(node.memo) <= MEMO_LIMIT \
                    else node.current_memo()
                parts = memo.get(memo_key)
                if parts is None:
                    parts = memo[memo_key] = self._node_parts(node, pod, terms, per_group, matched, ns_labels,
                                                              own_ns_labels, scan_existing)
                for pair, amount in parts:
                    score[pair] = get(pair, 0) + amount
        if not scan_existing:
            # Existing pods' terms against the incoming pod: each distinct term is matched once.
            by_name = snapshot.by_name
            for t, amount, per_node in index.values():
                if not t.matches(pod, own_ns_labels):
                    continue
                key = t.topology_key
                for node_name, count in per_node.items():
                    node = by_name.get(node_name)
                    if node is not None:
                        value = node.labels.get(key)
                        if value is not None:
                            pair = (key, value)
                            score[pair] = get(pair, 0) + amount * count
        if not score:
            return SKIPPED
        state[self.name + "/score"] = score
        state[self.name + "/keys"] = {key for key, _ in score}
        return None

    def _pre_score_incremental(self, state, pod, snapshot, terms, feed, has_constraints, ns_labels,
                               own_ns_labels):
        key = sys.intern("ipa-agg" + repr((pod.namespace, sorted(pod.labels.items()),
                                           [(t.sig, w) for t, w in terms], snapshot.namespace_generation)))
        agg = self._aggregates.pop(key, None)
        if agg is None or agg.epoch != feed.log_epoch or agg.position < feed.change_base:
            agg = _Aggregate(feed.log_epoch)
            for node in snapshot.nodes if has_constraints else snapshot.with_affinity:
                agg.put(node.name, self._node_parts(node, pod, terms, agg.per_group, agg.matched, ns_labels,
                                                    own_ns_labels, True))
        else:
            for name in set(feed.change_log[agg.position - feed.change_base:]):
                node = snapshot.by_name.get(name)
                agg.put(name, self._node_parts(node, pod, terms, agg.per_group, agg.matched, ns_labels,
                                               own_ns_labels, True) if node is not None else [])
        agg.position = feed.change_base + len(feed.change_log)
        self._aggregates[key] = agg  # most recently used last
        if len(self._aggregates) > MAX_AGGREGATES:
            self._aggregates.pop(next(iter(self._aggregates)))
        if not agg.per_node:
            return SKIPPED
        state[self.name + "/score"] = agg.total
        state[self.name + "/keys"] = agg.keys
        return None

    @staticmethod
    def _node_parts(node, pod, terms, per_group, matched, ns_labels, own_ns_labels, existing: bool) -> list:
        labels = node.labels
        if not labels:
            return []
        parts = []
        if terms:
            # The incoming pod's preferred terms against the node's pods, a group of look-alikes at a time.
            for gkey, (ns, plabels, _, count) in node.label_groups.items():
                hits = per_group.get(gkey)
                if hits is None:
                    ens = ns_labels.get(ns)
                    hits = per_group[gkey] = [(t.topology_key, w) for t, w in terms
                                              if t.matches_labels(ns, plabels, ens)]
                for key, w in hits:
                    value = labels.get(key)
                    if value is not None:
                        parts.append(((key, value), w * count))
        # Existing pods' terms (required affinity at the hard weight, preferred both ways) against
        # the incoming pod; identical terms on a node are counted together.
        for t, amount, count in node.affinity_groups.values() if existing else ():
            hit = matched.get(t.sig)
            if hit is None:
                hit = matched[t.sig] = t.matches(pod, own_ns_labels)
            if hit:
                value = labels.get(t.topology_key)
                if value is not None:
                    parts.append(((t.topology_key, value), amount * count))
        return parts

    def score(self, state, pod, node):
        total = 0
        score = state[self.name + "/score"]
        labels = node.labels
        for key in state[self.name + "/keys"]:
            value = labels.get(key)
            if value is not None:
                total += score.get((key, value), 0)
        return total

    def score_nodes(self, state, pod, nodes) -> list[int]:
        """score() for many nodes at once: one list comprehension per topology key."""
        get = state[self.name + "/score"].get
        totals = None
        for key in state[self.name + "/keys"]:
            part = [get((key, n.labels.get(key)), 0) for n in nodes]
            totals = part if totals is None else [a + b for a, b in zip(totals, part)]
        return totals if totals is not None else [0] * len(nodes)

    def normalize_score(self, state, pod, scores):
        if not scores:
            return
        lo, hi = min(scores), max(scores)
        spread = hi - lo
        if spread <= 0:
            scores[:] = [0] * len(scores)
            return
        scores[:] = [int(MAX_NODE_SCORE * ((s - lo) / spread)) for s in scores]
