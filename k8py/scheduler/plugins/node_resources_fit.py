"""NodeResourcesFit: the pod's requests fit what the node has left; scoring by allocation.

Scoring strategies as upstream: LeastAllocated (default), MostAllocated and
RequestedToCapacityRatio, over cpu and memory (weight 1 each) unless told
otherwise. Scoring counts requestless containers at 100m/200Mi so best-effort
pods still spread; fitting never does.
"""

from __future__ import annotations

import math

from k8py.scheduler import resources
from k8py.scheduler.framework import MAX_NODE_SCORE, unschedulable

LEAST, MOST, RATIO = "LeastAllocated", "MostAllocated", "RequestedToCapacityRatio"
DEFAULT_RESOURCES = [{"name": "cpu", "weight": 1}, {"name": "memory", "weight": 1}]
DEFAULT_SHAPE = [{"utilization": 0, "score": 0}, {"utilization": 100, "score": 10}]
MAX_UTILIZATION = 100


def go_div(a: int, b: int) -> int:
    """Integer division truncating toward zero, like Go's."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def insufficient(pod, node) -> list[str]:
    reasons = []
    alloc, used, want = node.allocatable, node.requested, pod.requests
    if len(node.pods) + 1 > alloc.get(resources.PODS, 0):
        reasons.append("Too many pods")
    if not want:
        return reasons
    for name in (resources.CPU, resources.MEMORY, resources.EPHEMERAL):
        w = want.get(name, 0)
        if w > 0 and w > alloc.get(name, 0) - used.get(name, 0):
            reasons.append(f"Insufficient {name}")
    for name, w in want.items():
        if name in (resources.CPU, resources.MEMORY, resources.EPHEMERAL, resources.PODS) or w == 0:
            continue
        if w > alloc.get(name, 0) - used.get(name, 0):
            reasons.append(f"Insufficient {name}")
    return reasons


def least_requested(requested: int, capacity: int) -> int:
    if capacity == 0 or requested > capacity:
        return 0
    return (capacity - requested) * MAX_NODE_SCORE // capacity


def most_requested(requested: int, capacity: int) -> int:
    if capacity == 0:
        return 0
    requested = min(requested, capacity)
    return requested * MAX_NODE_SCORE // capacity


def broken_linear(shape: list[tuple[int, int]]):
    def f(p: int) -> int:
        for i, (u, s) in enumerate(shape):
            if p <= u:
                if i == 0:
                    return shape[0][1]
                pu, ps = shape[i - 1]
                return ps + go_div((s - ps) * (p - pu), u - pu)
        return shape[-1][1]
    return f


class NodeResourcesFit:
    name = "NodeResourcesFit"

    def __init__(self, scoring_strategy: dict | None = None):
        strategy = scoring_strategy or {}
        self.strategy = strategy.get("type") or LEAST
        self.resources = [(r["name"], int(r.get("weight") or 1)) for r in strategy.get("resources")
                          or DEFAULT_RESOURCES]
        shape = ((strategy.get("requestedToCapacityRatio") or {}).get("shape")) or DEFAULT_SHAPE
        # Shape scores are 0-10 in the API; the framework's scale is 0-100.
        self.shape = broken_linear([(int(p["utilization"]), int(p["score"]) * (MAX_NODE_SCORE // 10))
                                    for p in shape])

    def filter(self, state, pod, node):
        reasons = insufficient(pod, node)
        return unschedulable(*reasons) if reasons else None

    def _requested(self, pod, node, name: str) -> int:
        if name in (resources.CPU, resources.MEMORY):
            return node.non_zero_requested[name] + pod.non_zero[name]
        return node.requested.get(name, 0) + pod.requests.get(name, 0)

    def score(self, state, pod, node):
        alloc = node.allocatable
        total = weights = 0
        if self.strategy == RATIO:
            for name, weight in self.resources:
                cap = alloc.get(name, 0)
                if cap == 0:
                    continue
                req = self._requested(pod, node, name)
                s = self.shape(MAX_UTILIZATION if req > cap else req * MAX_UTILIZATION // cap)
                if s > 0:
                    total += s * weight
                    weights += weight
            return int(math.floor(total / weights + 0.5)) if weights else 0
        fn = most_requested if self.strategy == MOST else least_requested
        for name, weight in self.resources:
            cap = alloc.get(name, 0)
            if cap == 0:
                continue
            total += fn(self._requested(pod, node, name), cap) * weight
            weights += weight
        return total // weights if weights else 0
