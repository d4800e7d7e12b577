"""NodeResourcesBalancedAllocation: prefer nodes whose cpu and memory use stay in step."""

from __future__ import annotations

import math

from k8py.scheduler.framework import MAX_NODE_SCORE

RESOURCES = ("cpu", "memory")


class BalancedAllocation:
    name = "NodeResourcesBalancedAllocation"

    def score(self, state, pod, node):
        fractions = []
        for name in RESOURCES:
            cap = node.allocatable.get(name, 0)
            if cap == 0:
                continue
            used = node.requested.get(name, 0) + pod.requests.get(name, 0)
            fractions.append(min(used / cap, 1.0))
        std = 0.0
        if len(fractions) == 2:
            std = abs((fractions[0] - fractions[1]) / 2)
        elif len(fractions) > 2:
            mean = sum(fractions) / len(fractions)
            std = math.sqrt(sum((f - mean) ** 2 for f in fractions) / len(fractions))
        return int((1 - std) * MAX_NODE_SCORE)
