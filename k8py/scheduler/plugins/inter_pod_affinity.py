"""InterPodAffinity: required/preferred pod affinity and anti-affinity, both ways.

Filter: the incoming pod's required affinity must find matching pods in the
node's topology domain, its required anti-affinity must find none, and no
existing pod's required anti-affinity may match the incoming pod there
(symmetry). Score: preferred terms of both sides, plus existing pods'
required affinity terms at the hard-affinity weight (1).
"""

from __future__ import annotations

from k8py.scheduler.framework import MAX_NODE_SCORE, SKIPPED, unresolvable, unschedulable

ERR_EXISTING_ANTI = "node(s) didn't satisfy existing pods anti-affinity rules"
ERR_AFFINITY = "node(s) didn't match pod affinity rules"
ERR_ANTI = "node(s) didn't match pod anti-affinity rules"
HARD_POD_AFFINITY_WEIGHT = 1


def merge_namespace_selectors(terms, namespace_labels: dict[str, dict]) -> None:
    """Resolve a term's namespaceSelector into namespace names once per cycle."""
    for t in terms:
        if t.namespace_selector is not None:
            t.namespaces |= {ns for ns, labels in namespace_labels.items() if t.namespace_selector.matches(labels)}


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


class InterPodAffinity:
    name = "InterPodAffinity"

    # ---- filter -------------------------------------------------------------

    def pre_filter(self, state, pod, snapshot):
        with_anti = snapshot.with_required_anti_affinity
        if not pod.required_affinity and not pod.required_anti_affinity and not with_anti:
            return SKIPPED
        ns_labels = snapshot.namespace_labels
        merge_namespace_selectors(pod.required_affinity + pod.required_anti_affinity, ns_labels)
        own_ns_labels = ns_labels.get(pod.namespace)
        s = _FilterState()
        for node in with_anti:
            for existing in node.pods_with_required_anti_affinity.values():
                for t in existing.required_anti_affinity:
                    if t.matches(pod, own_ns_labels):
                        _bump(s.existing_anti, node.labels, t.topology_key)
        if pod.required_affinity or pod.required_anti_affinity:
            for node in snapshot.nodes:
                for existing in node.pods.values():
                    ens = ns_labels.get(existing.namespace)
                    if pod.required_affinity and _matches_all(pod.required_affinity, existing, ens):
                        for t in pod.required_affinity:
                            _bump(s.affinity, node.labels, t.topology_key)
                    for t in pod.required_anti_affinity:
                        if t.matches(existing, ens):
                            _bump(s.anti, node.labels, t.topology_key)
        state[self.name] = s
        return None

    def filter(self, state, pod, node):
        s: _FilterState = state[self.name]
        labels = node.labels
        if s.existing_anti:
            for key, value in labels.items():
                if s.existing_anti.get((key, value), 0) > 0:
                    return unschedulable(ERR_EXISTING_ANTI)
        if pod.required_affinity and not self._satisfies_affinity(s, pod, labels, state):
            return unresolvable(ERR_AFFINITY)
        for t in pod.required_anti_affinity:
            value = labels.get(t.topology_key)
            if value is not None and s.anti.get((t.topology_key, value), 0) > 0:
                return unschedulable(ERR_ANTI)
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
        candidates = snapshot.nodes if has_constraints else snapshot.with_affinity
        if not candidates:
            return SKIPPED
        ns_labels = snapshot.namespace_labels
        merge_namespace_selectors(pod.preferred_affinity + pod.preferred_anti_affinity, ns_labels)
        own_ns_labels = ns_labels.get(pod.namespace)
        score: dict[str, dict[str, int]] = {}

        def add(t, weight, target, target_ns_labels, labels):
            if t.matches(target, target_ns_labels):
                value = labels.get(t.topology_key)
                if value is not None:
                    by_value = score.setdefault(t.topology_key, {})
                    by_value[value] = by_value.get(value, 0) + weight

        for node in candidates:
            labels = node.labels
            if not labels:
                continue
            existing_pods = node.pods.values() if has_constraints else node.pods_with_affinity.values()
            for existing in existing_pods:
                if has_constraints:
                    ens = ns_labels.get(existing.namespace)
                    for t in pod.preferred_affinity:
                        add(t, t.weight, existing, ens, labels)
                    for t in pod.preferred_anti_affinity:
                        add(t, -t.weight, existing, ens, labels)
                for t in existing.required_affinity:
                    add(t, HARD_POD_AFFINITY_WEIGHT, pod, own_ns_labels, labels)
                for t in existing.preferred_affinity:
                    add(t, t.weight, pod, own_ns_labels, labels)
                for t in existing.preferred_anti_affinity:
                    add(t, -t.weight, pod, own_ns_labels, labels)
        if not score:
            return SKIPPED
        state[self.name + "/score"] = score
        return None

    def score(self, state, pod, node):
        total = 0
        for key, by_value in state[self.name + "/score"].items():
            value = node.labels.get(key)
            if value is not None:
                total += by_value.get(value, 0)
        return total

    def normalize_score(self, state, pod, scores):
        if not scores:
            return
        lo, hi = min(scores), max(scores)
        spread = hi - lo
        for i, s in enumerate(scores):
            scores[i] = int(MAX_NODE_SCORE * ((s - lo) / spread)) if spread > 0 else 0
