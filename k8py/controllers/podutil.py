"""Pure facts about pods that several controllers need: ready, available, active, deletion order."""

from __future__ import annotations

import datetime
import math

from k8py.apimachinery.meta import now, parse_time

DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
_PHASE_ORDER = {"Pending": 0, "Unknown": 1, "Running": 2}
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def ready_condition(pod: dict) -> dict | None:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond
    return None


def is_ready(pod: dict) -> bool:
    cond = ready_condition(pod)
    return cond is not None and cond.get("status") == "True"


def is_available(pod: dict, min_ready_seconds: int, at: datetime.datetime | None = None) -> bool:
    """Ready for at least min_ready_seconds (upstream's IsPodAvailable)."""
    if not is_ready(pod):
        return False
    if not min_ready_seconds:
        return True
    since = parse_time(ready_condition(pod).get("lastTransitionTime"))
    if since is None:
        return False
    return since + datetime.timedelta(seconds=min_ready_seconds) <= (at or now())


def is_terminal(pod: dict) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def is_active(pod: dict) -> bool:
    """Counts towards a controller's replicas: not finished and not being deleted."""
    return not is_terminal(pod) and not pod["metadata"].get("deletionTimestamp")


def _restarts(pod: dict) -> int:
    return sum(c.get("restartCount", 0) for c in (pod.get("status") or {}).get("containerStatuses") or [])


def _log2_bucket(t: datetime.datetime | None, reference: datetime.datetime) -> int:
    """Ages in the same power-of-two bucket count as equal (upstream's logarithmic scale-down),
    so pods of similar age are picked by the later, more telling criteria."""
    if t is None:
        return -1
    seconds = max((reference - t).total_seconds(), 0)
    return int(math.log2(seconds)) if seconds >= 1 else 0


def _cost(pod: dict) -> int:
    value = (pod["metadata"].get("annotations") or {}).get(DELETION_COST)
    try:
        return int(value) if value is not None else 0
    except ValueError:
        return 0


def deletion_order(pods: list[dict], related: list[dict] | None = None,
                   at: datetime.datetime | None = None) -> list[dict]:
    """Pods sorted so that the ones to delete first come first.

    Upstream's order: unscheduled before scheduled; Pending before Unknown
    before Running; not ready before ready; lower pod-deletion-cost first;
    pods on nodes crowded with related pods first; ready for a shorter time
    first; more restarts first; newer first.
    """
    reference = at or now()
    per_node: dict[str, int] = {}
    for pod in related if related is not None else pods:
        node = (pod.get("spec") or {}).get("nodeName")
        if node and is_active(pod):
            per_node[node] = per_node.get(node, 0) + 1

    def key(pod: dict):
        spec, status, m = pod.get("spec") or {}, pod.get("status") or {}, pod["metadata"]
        node = spec.get("nodeName") or ""
        ready = is_ready(pod)
        ready_since = parse_time((ready_condition(pod) or {}).get("lastTransitionTime")) if ready else None
        created = parse_time(m.get("creationTimestamp"))
        return (
            1 if node else 0,
            _PHASE_ORDER.get(status.get("phase"), 0),
            1 if ready else 0,
            _cost(pod),
            -per_node.get(node, 0) if node else 0,
            # a pod ready for less time goes first: a smaller age bucket sorts first
            _log2_bucket(ready_since, reference) if ready else 0,
            -_restarts(pod),
            _log2_bucket(created, reference),
            -(created or _EPOCH).timestamp(),
        )
    return sorted(pods, key=key)


def slow_start_batches(count: int, initial: int = 1) -> list[int]:
    """Batch sizes 1, 2, 4, ... adding up to count: a failing create fails fast, not count times."""
    batches, size, left = [], initial, count
    while left > 0:
        batch = min(size, left)
        batches.append(batch)
        left -= batch
        size *= 2
    return batches
