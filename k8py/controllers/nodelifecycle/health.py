"""What the node lifecycle controller reads from a Node and writes back: pure functions.

- The heartbeat: when the kubelet last showed life (its Lease's renewTime or a
  change of its Ready condition), kept per node in NodeHealth.
- Conditions gone stale: Ready, MemoryPressure, DiskPressure and PIDPressure
  turn Unknown with upstream's reasons when the grace period has passed.
- Taints that mirror conditions: NoSchedule ones for every problem condition
  (and for a cordoned node), the NoExecute not-ready/unreachable pair for Ready.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"
UNSCHEDULABLE = "node.kubernetes.io/unschedulable"

# condition type -> {status: taint key}: the NoSchedule taints that say what is wrong with a node.
CONDITION_TAINTS = {
    "Ready": {"False": NOT_READY, "Unknown": UNREACHABLE},
    "MemoryPressure": {"True": "node.kubernetes.io/memory-pressure"},
    "DiskPressure": {"True": "node.kubernetes.io/disk-pressure"},
    "NetworkUnavailable": {"True": "node.kubernetes.io/network-unavailable"},
    "PIDPressure": {"True": "node.kubernetes.io/pid-pressure"},
}
CONDITION_TAINT_KEYS = {key for by_status in CONDITION_TAINTS.values() for key in by_status.values()}

# The kubelet's conditions that go Unknown when it stops posting.
WATCHED_CONDITIONS = ("Ready", "MemoryPressure", "DiskPressure", "PIDPressure")


def condition(node: dict, ctype: str) -> dict | None:
    return next((c for c in (node.get("status") or {}).get("conditions") or [] if c.get("type") == ctype), None)


def ready_status(node: dict) -> str | None:
    cond = condition(node, "Ready")
    return cond.get("status") if cond else None


@dataclass
class NodeHealth:
    """The controller's memory of one node: when it last heard from it (wall-clock seconds)."""
    probe: float
    ready: dict | None            # the Ready condition as last seen (heartbeat included)
    lease_renew: str | None = None


def observe(health: NodeHealth | None, node: dict, lease: dict | None, now: float, created: float) -> NodeHealth:
    """The node's health after seeing `node` and its `lease` now: a new Ready condition
    (the kubelet posted) or a newer lease renewal counts as a heartbeat."""
    ready = condition(node, "Ready")
    if ready is None:
        # Never posted: count from the node's creation, under the startup grace period.
        health = health or NodeHealth(probe=created, ready=None)
        health = NodeHealth(health.probe, None, health.lease_renew)
    elif health is None or health.ready != ready:
        health = NodeHealth(probe=now, ready=copy.deepcopy(ready), lease_renew=health.lease_renew if health else None)
    renew = ((lease or {}).get("spec") or {}).get("renewTime")
    if renew and (health.lease_renew is None or renew > health.lease_renew):
        health = NodeHealth(probe=now, ready=health.ready, lease_renew=renew)
    return health


def stale_conditions(node: dict, now_text: str) -> list[dict] | None:
    """The node's conditions with the kubelet's ones turned Unknown; None if nothing changes."""
    conditions = copy.deepcopy(((node.get("status") or {}).get("conditions")) or [])
    created = (node.get("metadata") or {}).get("creationTimestamp") or now_text
    changed = False
    for ctype in WATCHED_CONDITIONS:
        cond = next((c for c in conditions if c.get("type") == ctype), None)
        if cond is None:
            conditions.append({"type": ctype, "status": "Unknown", "reason": "NodeStatusNeverUpdated",
                               "message": "Kubelet never posted node status.",
                               "lastHeartbeatTime": created, "lastTransitionTime": now_text})
            changed = True
        elif cond.get("status") != "Unknown":
            cond.update(status="Unknown", reason="NodeStatusUnknown", message="Kubelet stopped posting node status.",
                        lastTransitionTime=now_text)
            changed = True
    return conditions if changed else None


def wanted_no_schedule_taints(node: dict) -> list[dict]:
    taints = []
    for cond in (node.get("status") or {}).get("conditions") or []:
        key = CONDITION_TAINTS.get(cond.get("type"), {}).get(cond.get("status"))
        if key:
            taints.append({"key": key, "effect": "NoSchedule"})
    if (node.get("spec") or {}).get("unschedulable"):
        taints.append({"key": UNSCHEDULABLE, "effect": "NoSchedule"})
    return taints


def no_schedule_changes(node: dict) -> tuple[list[dict], list[dict]]:
    """(taints to add, taints to remove) so the node's condition NoSchedule taints match its conditions."""
    wanted = wanted_no_schedule_taints(node)
    have = [t for t in (node.get("spec") or {}).get("taints") or []
            if t.get("effect") == "NoSchedule" and t.get("key") in (*CONDITION_TAINT_KEYS, UNSCHEDULABLE)]
    add = [t for t in wanted if not has_taint(have, t["key"], "NoSchedule")]
    remove = [t for t in have if not has_taint(wanted, t["key"], "NoSchedule")]
    return add, remove


def has_taint(taints: list[dict] | None, key: str, effect: str) -> bool:
    return any(t.get("key") == key and t.get("effect") == effect for t in taints or [])


def retainted(taints: list[dict] | None, add: list[dict], remove: list[dict]) -> list[dict] | None:
    """`taints` with `remove` gone and `add` added (same key and effect replaced); None if unchanged."""
    out = [t for t in taints or [] if not any(t.get("key") == r["key"] and t.get("effect") == r["effect"]
                                              for r in remove)]
    for taint in add:
        if not has_taint(out, taint["key"], taint["effect"]):
            out.append(taint)
    if len(out) == len(taints or []) and all(has_taint(taints, t["key"], t["effect"]) for t in out):
        return None
    return out


def pod_not_ready_status(pod: dict, now_text: str) -> dict | None:
    """The pod's status with its Ready condition False, or None when there is nothing to change
    (no Ready condition, or already False): upstream's MarkPodsNotReady for one pod."""
    status = copy.deepcopy(pod.get("status") or {})
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Ready":
            if cond.get("status") == "False":
                return None
            cond["status"] = "False"
            cond["lastTransitionTime"] = now_text
            return status
    return None
