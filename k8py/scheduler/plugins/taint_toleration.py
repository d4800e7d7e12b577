"""TaintToleration: NoSchedule/NoExecute taints must be tolerated; PreferNoSchedule ones cost score."""

from __future__ import annotations

from k8py.scheduler.framework import MAX_NODE_SCORE, unresolvable
from k8py.scheduler.plugins.scoring import default_normalize
from k8py.api.tolerations import first_untolerated, tolerated_by


class TaintToleration:
    name = "TaintToleration"

    def filter(self, state, pod, node):
        if not node.taints:
            return None
        taint = first_untolerated(node.taints, pod.spec.get("tolerations") or [], ("NoSchedule", "NoExecute"))
        if taint is None:
            return None
        return unresolvable(f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value', '')}}}")

    def pre_score(self, state, pod, nodes, snapshot):
        if snapshot.tainted_nodes == 0 or not any(n.taints for n in nodes):
            # No PreferNoSchedule taint anywhere: every node normalizes to the maximum.
            state.uniform_scores[self.name] = MAX_NODE_SCORE
        # Only tolerations that can apply to PreferNoSchedule count here.
        state[self.name] = [t for t in pod.spec.get("tolerations") or []
                            if not t.get("effect") or t.get("effect") == "PreferNoSchedule"]

    def score(self, state, pod, node):
        if not node.taints:
            return 0
        tolerations = state[self.name]
        return sum(1 for t in node.taints
                   if t.get("effect") == "PreferNoSchedule" and not tolerated_by(t, tolerations))

    def normalize_score(self, state, pod, scores):
        default_normalize(scores, MAX_NODE_SCORE, reverse=True)
