"""NodeUnschedulable: cordoned nodes take only pods that tolerate the unschedulable taint."""

from __future__ import annotations

from k8py.scheduler.framework import unresolvable
from k8py.api.tolerations import tolerated_by

ERR_REASON = "node(s) were unschedulable"
UNSCHEDULABLE_TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}


class NodeUnschedulable:
    name = "NodeUnschedulable"

    def filter(self, state, pod, node):
        if node.unschedulable and not tolerated_by(UNSCHEDULABLE_TAINT, pod.spec.get("tolerations") or []):
            return unresolvable(ERR_REASON)
        return None
