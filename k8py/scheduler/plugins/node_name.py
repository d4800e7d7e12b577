"""NodeName: a pod that names its node fits only there."""

from __future__ import annotations

from k8py.scheduler.framework import unresolvable

ERR_REASON = "node(s) didn't match the requested node name"


class NodeName:
    name = "NodeName"

    def filter(self, state, pod, node):
        wanted = pod.spec.get("nodeName")
        if wanted and wanted != node.name:
            return unresolvable(ERR_REASON)
        return None
