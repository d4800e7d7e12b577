"""PodTopologySpread: keep matching pods spread across topology domains.

DoNotSchedule constraints filter (skew = matching pods in the node's domain,
plus one if the pod matches itself, minus the smallest domain's count; minDomains
makes the minimum 0 while there are too few domains). ScheduleAnyway
constraints score. Pods with no constraints get upstream's system defaults
(3 per hostname, 5 per zone, ScheduleAnyway) over the labels of the Services,
ReplicaSets, StatefulSets and ReplicationControllers that select them.
"""

from __future__ import annotations

import math
import sys

from k8py.apimachinery.selectors import Requirement, Selector, selector_from_label_selector
from k8py.scheduler.framework import MAX_NODE_SCORE, SKIPPED, unresolvable, unschedulable
from k8py.scheduler.podinfo import HOSTNAME_LABEL
from k8py.scheduler.plugins.node_affinity import pod_matches_node_selector_and_affinity
from k8py.api.tolerations import first_untolerated

ERR_CONSTRAINTS = "node(s) didn't match pod topology spread constraints"
ERR_NODE_LABEL = ERR_CONSTRAINTS + " (missing required label)"
ZONE_LABEL = "topology.kubernetes.io/zone"
NODE_LABEL, CONSTRAINTS = unresolvable(ERR_NODE_LABEL), unschedulable(ERR_CONSTRAINTS)
SYSTEM_DEFAULT_CONSTRAINTS = [
    {"maxSkew": 3, "topologyKey": HOSTNAME_LABEL, "whenUnsatisfiable": "ScheduleAnyway"},
    {"maxSkew": 5, "topologyKey": ZONE_LABEL, "whenUnsatisfiable": "ScheduleAnyway"},
]


class Constraint:
    __slots__ = ("max_skew", "key", "selector", "min_domains", "honor_affinity", "honor_taints", "count_key")

    def __init__(self, raw: dict, selector: Selector):
        self.max_skew = int(raw.get("maxSkew") or 1)
        self.key = raw.get("topologyKey", "")
        self.selector = selector
        self.min_domains = int(raw.get("minDomains") or 1)
        self.honor_affinity = (raw.get("nodeAffinityPolicy") or "Honor") == "Honor"
        self.honor_taints = (raw.get("nodeTaintsPolicy") or "Ignore") == "Honor"
        self.count_key = "spread-count" + (repr(selector.requirements) if not isinstance(selector, _Nothing)
                                           else "nothing")

    def includes_node(self, pod, node) -> bool:
        spec = pod.spec
        if self.honor_affinity and (spec.get("nodeSelector") or spec.get("affinity")) and \
                not pod_matches_node_selector_and_affinity(spec, node):
            return False
        if self.honor_taints and node.taints and first_untolerated(
                node.taints, pod.spec.get("tolerations") or [], ("NoSchedule", "NoExecute")) is not None:
            return False
        return True


def pod_constraints(pod, when: str) -> list[Constraint]:
    out = []
    for raw in pod.spec.get("topologySpreadConstraints") or []:
        if raw.get("whenUnsatisfiable", "DoNotSchedule") != when:
            continue
        raw_selector = raw.get("labelSelector")
        if raw_selector is None:
            selector = _NOTHING  # a nil selector matches no pod
        else:
            extra = [Requirement(k, "in", (pod.labels[k],)) for k in raw.get("matchLabelKeys") or []
                     if k in pod.labels]
            selector = Selector(list(selector_from_label_selector(raw_selector).requirements) + extra)
        out.append(Constraint(raw, selector))
    return out


class _Nothing(Selector):
    def matches(self, labels) -> bool:
        return False


_NOTHING = _Nothing([])


def default_selector(pod, listers: dict) -> Selector | None:
    """Labels of the Services, RCs, ReplicaSets and StatefulSets that select the pod, merged."""
    merged: dict[str, str] = {}
    indexed = hasattr(listers, "in_namespace")  # the scheduler's informers (tests pass plain dicts)
    services = listers.in_namespace("services", pod.namespace) if indexed else listers.get("services", [])
    for svc in services:
        if (svc.get("metadata") or {}).get("namespace") != pod.namespace:
            continue
        sel = (svc.get("spec") or {}).get("selector")
        if sel and all(pod.labels.get(k) == v for k, v in sel.items()):
            merged.update(sel)
    reqs = [Requirement(k, "=", (v,)) for k, v in merged.items()]
    owner = next((o for o in (pod.pod.get("metadata") or {}).get("ownerReferences") or [] if o.get("controller")),
                 None)
    if owner is not None:
        kind_list = {"ReplicationController": "replicationcontrollers", "ReplicaSet": "replicasets",
                     "StatefulSet": "statefulsets"}.get(owner.get("kind"))
        if not kind_list:
            candidates = []
        elif indexed:
            candidates = [o for o in [listers.named(kind_list, pod.namespace, owner.get("name") or "")] if o]
        else:
            candidates = listers.get(kind_list, [])
        for obj in candidates:
            meta = obj.get("metadata") or {}
            if meta.get("namespace") == pod.namespace and meta.get("name") == owner.get("name"):
                sel = (obj.get("spec") or {}).get("selector")
                if owner.get("kind") == "ReplicationController":
                    reqs += [Requirement(k, "=", (v,)) for k, v in (sel or {}).items() if k not in merged]
                elif sel is not None:
                    reqs += list(selector_from_label_selector(sel).requirements)
    return Selector(reqs) if reqs else None


def count_for(node, c: Constraint, namespace: str, verdicts: dict) -> int:
    """count_matching, remembered per node generation."""
    memo = node.current_memo()
    key = sys.intern(c.count_key + "|" + namespace)
    n = memo.get(key)
    if n is None:
        n = memo[key] = count_matching(node, c.selector, namespace, verdicts)
    return n


def count_matching(node, selector: Selector, namespace: str, verdicts: dict | None = None) -> int:
    """Non-terminating pods of the namespace matching the selector, judged per group of look-alikes."""
    n = 0
    for gkey, (ns, labels, terminating, count) in node.label_groups.items():
        if ns != namespace or terminating:
            continue
        if verdicts is None:
            hit = selector.matches(labels)
        else:
            hit = verdicts.get(gkey)
            if hit is None:
                hit = verdicts[gkey] = selector.matches(labels)
        if hit:
            n += count
    return n


class _FilterState:
    __slots__ = ("constraints", "counts", "minimums", "self_match", "verdicts")


class _Counts:
    """Matching-pod counts per domain for one kind of incoming pod, plus how many nodes make up each
    domain (a domain disappears with its last node)."""
    __slots__ = ("epoch", "position", "counts", "members", "per_node", "verdicts")

    def __init__(self, epoch: int, constraints: int):
        self.epoch = epoch
        self.position = 0
        self.counts: list[dict[str, int]] = [{} for _ in range(constraints)]
        self.members: list[dict[str, int]] = [{} for _ in range(constraints)]
        self.per_node: dict[str, tuple] = {}
        self.verdicts: list[dict] = [{} for _ in range(constraints)]

    def put(self, name: str, parts: tuple) -> None:
        for i, value, n in self.per_node.pop(name, ()):
            self.counts[i][value] -= n
            self.members[i][value] -= 1
            if not self.members[i][value]:
                del self.members[i][value]
                del self.counts[i][value]
        if parts:
            self.per_node[name] = parts
            for i, value, n in parts:
                self.counts[i][value] = self.counts[i].get(value, 0) + n
                self.members[i][value] = self.members[i].get(value, 0) + 1


MAX_AGGREGATES = 8


class PodTopologySpread:
    name = "PodTopologySpread"

    def __init__(self):
        self._aggregates: dict[str, _Counts] = {}

    # ---- filter -------------------------------------------------------------

    def pre_filter(self, state, pod, snapshot):
        constraints = pod_constraints(pod, "DoNotSchedule")
        if not constraints:
            return SKIPPED
        counts: list[dict[str, int]] = [{} for _ in constraints]
        verdicts: list[dict] = [{} for _ in constraints]
        # One node's contribution ((constraint, domain, count)...) stays valid until the node changes.
        memo_key = sys.intern("spread-pf" + repr((pod.namespace, [(c.count_key, c.key, c.honor_affinity,
                                                                   c.honor_taints) for c in constraints]))
                              + pod.shape)
        feed = snapshot.change_feed
        if feed is not None:
            counts = self._counts_incremental(memo_key, pod, constraints, snapshot, feed)
        else:
            for node in snapshot.nodes:
                memo = node.current_memo()
                parts = memo.get(memo_key)
                if parts is None:
                    parts = memo[memo_key] = self._node_parts(pod, node, constraints, verdicts)
                for i, value, n in parts:
                    counts[i][value] = counts[i].get(value, 0) + n
        s = _FilterState()
        s.constraints, s.counts = constraints, counts
        s.minimums = [min(cnt.values()) if cnt else None for cnt in counts]
        s.self_match = [1 if c.selector.matches(pod.labels) else 0 for c in constraints]
        # Skew per domain is decided once here: (key, {domain: fits}, fits in an uncounted domain).
        s.verdicts = []
        for i, c in enumerate(constraints):
            minimum = s.minimums[i]
            if minimum is None:
                s.verdicts.append((c.key, {}, True))  # no domain counted: nothing to be skewed against
                continue
            if len(counts[i]) < c.min_domains:
                minimum = 0
            me = s.self_match[i]
            s.verdicts.append((c.key, {v: n + me - minimum <= c.max_skew for v, n in counts[i].items()},
                               me - minimum <= c.max_skew))
        state[self.name] = s
        return None

    def _counts_incremental(self, key, pod, constraints, snapshot, feed) -> list[dict[str, int]]:
        """Domain counts kept current from the cache's change log: only changed nodes are revisited."""
        agg = self._aggregates.pop(key, None)
        if agg is None or agg.epoch != feed.log_epoch or agg.position < feed.change_base:
            agg = _Counts(feed.log_epoch, len(constraints))
            for node in snapshot.nodes:
                agg.put(node.name, self._node_parts(pod, node, constraints, agg.verdicts))
        else:
            for name in set(feed.change_log[agg.position - feed.change_base:]):
                node = snapshot.by_name.get(name)
                agg.put(name, self._node_parts(pod, node, constraints, agg.verdicts) if node is not None else ())
        agg.position = feed.change_base + len(feed.change_log)
        self._aggregates[key] = agg
        if len(self._aggregates) > MAX_AGGREGATES:
            self._aggregates.pop(next(iter(self._aggregates)))
        return agg.counts

    @staticmethod
    def _node_parts(pod, node, constraints, verdicts) -> tuple:
        labels = node.labels
        if any(c.key not in labels for c in constraints):
            return ()
        return tuple((i, labels[c.key], count_for(node, c, pod.namespace, verdicts[i]))
                     for i, c in enumerate(constraints) if c.includes_node(pod, node))

    def filter(self, state, pod, node):
        labels = node.labels
        for key, fits, fits_elsewhere in state[self.name].verdicts:
            value = labels.get(key)
            if value is None:
                return NODE_LABEL
            if not fits.get(value, fits_elsewhere):
                return CONSTRAINTS
        return None

    # ---- score --------------------------------------------------------------

    def pre_score(self, state, pod, nodes, snapshot):
        constraints = pod_constraints(pod, "ScheduleAnyway")
        system_defaulted = False
        if not constraints and not pod.spec.get("topologySpreadConstraints"):
            selector = default_selector(pod, snapshot.listers)
            if selector is None:
                return SKIPPED
            constraints = [Constraint(c, selector) for c in SYSTEM_DEFAULT_CONSTRAINTS]
            system_defaulted = True
        if not constraints:
            return SKIPPED
        require_all = not system_defaulted
        ignored: set[str] = set()
        pair_counts: dict[tuple[str, str], int] = {}
        sizes = [0] * len(constraints)
        for node in nodes:
            if require_all and any(c.key not in node.labels for c in constraints):
                ignored.add(node.name)
                continue
            for i, c in enumerate(constraints):
                if c.key == HOSTNAME_LABEL or c.key not in node.labels:
                    continue
                pair = (c.key, node.labels[c.key])
                if pair not in pair_counts:
                    pair_counts[pair] = 0
                    sizes[i] += 1
        weights = []
        for i, c in enumerate(constraints):
            size = len(nodes) - len(ignored) if c.key == HOSTNAME_LABEL else sizes[i]
            weights.append(math.log(size + 2))
        verdicts: list[dict] = [{} for _ in constraints]
        for node in snapshot.nodes:
            if require_all and any(c.key not in node.labels for c in constraints):
                continue
            for i, c in enumerate(constraints):
                if c.key == HOSTNAME_LABEL or c.key not in node.labels:
                    continue
                pair = (c.key, node.labels[c.key])
                if pair in pair_counts and c.includes_node(pod, node):
                    pair_counts[pair] += count_for(node, c, pod.namespace, verdicts[i])
        state[self.name + "/score"] = (constraints, ignored, pair_counts, weights)
        state[self.name + "/verdicts"] = verdicts
        state[self.name + "/nodes"] = nodes
        return None

    def score(self, state, pod, node):
        constraints, ignored, pair_counts, weights = state[self.name + "/score"]
        if node.name in ignored:
            return 0
        total = 0.0
        for i, c in enumerate(constraints):
            value = node.labels.get(c.key)
            if value is None:
                continue
            if c.key == HOSTNAME_LABEL:
                count = count_for(node, c, pod.namespace, state[self.name + "/verdicts"][i])
            else:
                count = pair_counts.get((c.key, value), 0)
            total += count * weights[i] + (c.max_skew - 1)
        return int(math.floor(total + 0.5))

    def normalize_score(self, state, pod, scores):
        # Scores come in the order of the nodes pre_score saw; ignored nodes stay at 0.
        ignored = state[self.name + "/score"][1]
        flags = [n.name in ignored for n in state[self.name + "/nodes"]]
        lo, hi = None, 0
        for s, skip in zip(scores, flags):
            if skip:
                continue
            lo = s if lo is None or s < lo else lo
            hi = max(hi, s)
        for i, s in enumerate(scores):
            if flags[i]:
                scores[i] = 0
            elif hi == 0:
                scores[i] = MAX_NODE_SCORE
            else:
                scores[i] = MAX_NODE_SCORE * (hi + lo - s) // hi
