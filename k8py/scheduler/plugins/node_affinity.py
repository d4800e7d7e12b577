"""NodeAffinity: nodeSelector, required node affinity (filter) and preferred terms (score)."""

from __future__ import annotations

from k8py.apimachinery.nodeselector import requirement_matches
from k8py.scheduler.framework import MAX_NODE_SCORE, SKIPPED, PreFilterResult, unresolvable
from k8py.scheduler.plugins.scoring import default_normalize

ERR_REASON_POD = "node(s) didn't match Pod's node affinity/selector"
ERR_REASON_CONFLICT = "pod affinity terms conflict"
NAME_FIELD = "metadata.name"


def term_matches(term: dict, node) -> bool:
    """A NodeSelectorTerm: all its expressions and fields hold; an empty term matches nothing."""
    exprs, fields = term.get("matchExpressions") or [], term.get("matchFields") or []
    if not exprs and not fields:
        return False
    labels = node.labels
    for r in exprs:
        if not requirement_matches(r, labels):
            return False
    if fields:
        node_fields = {NAME_FIELD: node.name}
        for r in fields:
            if r.get("key") != NAME_FIELD or r.get("operator") not in ("In", "NotIn"):
                return False
            if not requirement_matches(r, node_fields):
                return False
    return True


def required_terms(pod_spec: dict) -> list | None:
    na = (pod_spec.get("affinity") or {}).get("nodeAffinity") or {}
    req = na.get("requiredDuringSchedulingIgnoredDuringExecution")
    if req is None:
        return None
    return req.get("nodeSelectorTerms") or []


def pod_matches_node_selector_and_affinity(pod_spec: dict, node) -> bool:
    """nodeSelector and required node affinity both hold (terms are ORed)."""
    selector = pod_spec.get("nodeSelector")
    if selector:
        labels = node.labels
        for k, v in selector.items():
            if labels.get(k) != v:
                return False
    terms = required_terms(pod_spec)
    if terms is not None:
        return any(term_matches(t, node) for t in terms)
    return True


class NodeAffinity:
    name = "NodeAffinity"

    def pre_filter(self, state, pod, snapshot):
        spec = pod.spec
        terms = required_terms(spec)
        if not spec.get("nodeSelector") and terms is None:
            return SKIPPED
        if not terms:
            return None
        names: set[str] | None = set()
        for t in terms:
            term_names = None
            for r in t.get("matchFields") or []:
                if r.get("key") == NAME_FIELD and r.get("operator") == "In":
                    values = set(r.get("values") or [])
                    term_names = values if term_names is None else term_names & values
            if term_names is None:
                return None  # this term can match any node: no narrowing
            names |= term_names
        if not names:
            return unresolvable(ERR_REASON_CONFLICT)
        return PreFilterResult(names)

    def filter(self, state, pod, node):
        if not pod_matches_node_selector_and_affinity(pod.spec, node):
            return unresolvable(ERR_REASON_POD)
        return None

    def pre_score(self, state, pod, nodes, snapshot):
        na = (pod.spec.get("affinity") or {}).get("nodeAffinity") or {}
        preferred = [p for p in na.get("preferredDuringSchedulingIgnoredDuringExecution") or []
                     if p.get("weight")]
        if not preferred:
            return SKIPPED
        state[self.name] = preferred

    def score(self, state, pod, node):
        return sum(int(p["weight"]) for p in state[self.name] if term_matches(p.get("preference") or {}, node))

    def normalize_score(self, state, pod, scores):
        default_normalize(scores, MAX_NODE_SCORE, reverse=False)
