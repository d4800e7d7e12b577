"""Zones and how fast the node lifecycle controller may taint their nodes NoExecute.

Nodes are grouped by zone (the topology.kubernetes.io/region and /zone labels,
or their failure-domain.beta predecessors). A zone's state comes from how many
of its nodes are not Ready:

- Normal: taint at --node-eviction-rate nodes a second;
- PartialDisruption (more than two nodes and at least --unhealthy-zone-threshold
  of them not Ready): --secondary-node-eviction-rate, or not at all when the
  cluster has at most --large-cluster-size-threshold nodes;
- FullDisruption (no Ready node): the normal rate, since the zone as a whole
  is gone and its pods are better off elsewhere; but when every zone is fully
  disrupted the fault is more likely the control plane's own view, and no node
  is tainted at all.

As upstream, each zone has a queue of nodes to taint, drained through a token
bucket (burst 1) whose rate follows the zone's state.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

INITIAL = "Initial"
NORMAL = "Normal"
FULL_DISRUPTION = "FullDisruption"
PARTIAL_DISRUPTION = "PartialDisruption"

EXCLUDE_DISRUPTION_LABEL = "node.kubernetes.io/exclude-disruption"


@dataclass
class EvictionSettings:
    """kube-controller-manager's node lifecycle flags, with their v1.32 defaults."""
    node_eviction_rate: float = 0.1
    secondary_node_eviction_rate: float = 0.01
    unhealthy_zone_threshold: float = 0.55
    large_cluster_size_threshold: int = 50


def zone_key(node: dict) -> str:
    """Region and zone as one key ("" when the node has neither), as upstream spells it."""
    labels = (node.get("metadata") or {}).get("labels") or {}
    region = labels.get("topology.kubernetes.io/region") or labels.get("failure-domain.beta.kubernetes.io/region", "")
    zone = labels.get("topology.kubernetes.io/zone") or labels.get("failure-domain.beta.kubernetes.io/zone", "")
    if not region and not zone:
        return ""
    return f"{region}:\x00:{zone}"


def excluded_from_disruption(node: dict) -> bool:
    return EXCLUDE_DISRUPTION_LABEL in ((node.get("metadata") or {}).get("labels") or {})


def zone_state(ready_statuses: list[str | None], unhealthy_threshold: float) -> tuple[int, str]:
    """(not-Ready count, state) of a zone from its nodes' Ready statuses (None: no condition)."""
    ready = sum(1 for s in ready_statuses if s == "True")
    not_ready = len(ready_statuses) - ready
    if ready == 0 and not_ready > 0:
        return not_ready, FULL_DISRUPTION
    if not_ready > 2 and not_ready / (not_ready + ready) >= unhealthy_threshold:
        return not_ready, PARTIAL_DISRUPTION
    return not_ready, NORMAL


def tainting_rate(state: str, cluster_size: int, settings: EvictionSettings) -> float:
    """Nodes a second a zone in `state` may be tainted at (upstream passes the zone's size as
    the cluster size when it asks how large the cluster is, and so do we)."""
    if state == PARTIAL_DISRUPTION:
        return settings.secondary_node_eviction_rate if cluster_size > settings.large_cluster_size_threshold else 0.0
    return settings.node_eviction_rate


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved; a rate of 0 never gives one."""

    def __init__(self, rate: float, burst: int = 1, clock=time.monotonic):
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.tokens = float(burst) if rate > 0 else 0.0
        self.stamp = clock()

    def try_accept(self) -> bool:
        if self.rate <= 0:
            return False
        now = self.clock()
        self.tokens = min(float(self.burst), self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class TaintQueue:
    """Nodes waiting to be tainted NoExecute in one zone, first come first served, rate limited.

    A node stays remembered after it was handled, so asking again is a no-op until
    `remove` forgets it (the node got well, or lost its taint): upstream's
    RateLimitedTimedQueue on a UniqueQueue.
    """

    def __init__(self, rate: float, clock=time.monotonic):
        self.clock = clock
        self.limiter = TokenBucket(rate, clock=clock)
        self.waiting: dict[str, float] = {}     # node -> when it may be tried (insertion order kept)
        self.known: set[str] = set()

    def add(self, name: str) -> bool:
        if name in self.known:
            return False
        self.known.add(name)
        self.waiting[name] = self.clock()
        return True

    def remove(self, name: str) -> None:
        self.known.discard(name)
        self.waiting.pop(name, None)

    def swap_rate(self, rate: float) -> None:
        if rate == self.limiter.rate:
            return
        exhausted = not self.limiter.try_accept()
        self.limiter = TokenBucket(rate, clock=self.clock)
        if exhausted:
            self.limiter.try_accept()    # a spent bucket stays spent across the swap

    def try_next(self) -> str | None:
        """The next node to taint now, if the rate allows and one is due; None otherwise.
        Call `done(name, ok, retry_after)` with the outcome."""
        if not self.waiting:
            return None
        name, at = min(self.waiting.items(), key=lambda kv: kv[1])
        if not self.limiter.try_accept() or self.clock() < at:
            return None
        return name

    def done(self, name: str, ok: bool, retry_after: float = 0.0) -> None:
        if name not in self.waiting:
            return
        if ok:
            del self.waiting[name]          # still known: not queued again until removed
        else:
            self.waiting[name] = self.clock() + retry_after + 1e-9


class Zones:
    """Every zone's state and taint queue; `observe` moves them along after a monitor pass."""

    def __init__(self, settings: EvictionSettings, clock=time.monotonic):
        self.settings = settings
        self.clock = clock
        self.states: dict[str, str] = {}
        self.queues: dict[str, TaintQueue] = {}

    def queue(self, zone: str) -> TaintQueue:
        if zone not in self.queues:
            self.queues[zone] = TaintQueue(self.settings.node_eviction_rate, clock=self.clock)
        return self.queues[zone]

    def observe(self, ready_by_zone: dict[str, list[str | None]]) -> str | None:
        """Take this pass's Ready statuses per zone. Returns "enter-full-disruption" when
        every zone has just gone fully disrupted (nothing may be tainted now),
        "exit-full-disruption" when that ends, else None."""
        new_states = {}
        for zone, statuses in ready_by_zone.items():
            new_states[zone] = zone_state(statuses, self.settings.unhealthy_zone_threshold)[1]
            self.states.setdefault(zone, INITIAL)
            self.queue(zone)
        for zone in [z for z in self.states if z not in ready_by_zone]:
            del self.states[zone]
        all_full_now = all(s == FULL_DISRUPTION for s in new_states.values())
        all_full_before = all(s == FULL_DISRUPTION for s in self.states.values())
        if all_full_now and all_full_before:
            return None                       # still all down (or no nodes at all): nothing changes
        if all_full_now:
            for zone in self.states:
                self.queues[zone].swap_rate(0.0)
                self.states[zone] = FULL_DISRUPTION
            return "enter-full-disruption"
        for zone, state in new_states.items():
            if all_full_before or self.states[zone] != state:
                self.queues[zone].swap_rate(tainting_rate(state, len(ready_by_zone[zone]), self.settings))
                self.states[zone] = state
        return "exit-full-disruption" if all_full_before else None
