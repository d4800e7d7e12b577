"""Deployment rollout arithmetic, as pure functions over plain dicts.

Everything here is upstream deployment behaviour that can be checked without
an API server: how maxSurge/maxUnavailable round, how many pods the new
ReplicaSet may have next, how many old pods may go, how a resize is shared
out between ReplicaSets mid-rollout, the pod-template-hash, revisions.
"""

from __future__ import annotations

import copy
import hashlib
import math

import orjson

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED_REPLICAS = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
HASH_LABEL = "pod-template-hash"
# Deployment annotations that are not copied onto its ReplicaSets.
NOT_COPIED = {"kubectl.kubernetes.io/last-applied-configuration", REVISION, REVISION_HISTORY, DESIRED_REPLICAS,
              MAX_REPLICAS, "deprecated.deployment.rollback.to"}
_SAFE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # no vowels: hashes never spell words


# -- sizes

def replicas_of(obj: dict | None) -> int:
    if obj is None:
        return 0
    value = (obj.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def status_of(obj: dict, field: str) -> int:
    return int((obj.get("status") or {}).get(field) or 0)


def scaled_value(value, total: int, round_up: bool) -> int:
    """An IntOrString (3 or "25%") against `total`; percentages round up or down."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    text = str(value)
    if text.endswith("%"):
        percent = int(text[:-1])
        exact = percent * total / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(text)


def rolling_params(deployment: dict) -> dict:
    strategy = (deployment.get("spec") or {}).get("strategy") or {}
    return strategy.get("rollingUpdate") or {}


def is_rolling(deployment: dict) -> bool:
    return ((deployment.get("spec") or {}).get("strategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"


def fenceposts(deployment: dict) -> tuple[int, int]:
    """(maxSurge, maxUnavailable): surge rounds up, unavailable down; both 0 would deadlock, so unavailable=1."""
    params = rolling_params(deployment)
    replicas = replicas_of(deployment)
    surge = scaled_value(params.get("maxSurge", "25%"), replicas, round_up=True)
    unavailable = scaled_value(params.get("maxUnavailable", "25%"), replicas, round_up=False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def max_surge(deployment: dict) -> int:
    return fenceposts(deployment)[0] if is_rolling(deployment) else 0


def max_unavailable(deployment: dict) -> int:
    if not is_rolling(deployment) or replicas_of(deployment) == 0:
        return 0
    return min(fenceposts(deployment)[1], replicas_of(deployment))


def total_replicas(replica_sets: list[dict]) -> int:
    return sum(replicas_of(rs) for rs in replica_sets if rs is not None)


def total_status(replica_sets: list[dict], field: str) -> int:
    return sum(status_of(rs, field) for rs in replica_sets if rs is not None)


def new_rs_replicas(deployment: dict, all_rss: list[dict], new_rs: dict | None) -> int:
    """How big the new ReplicaSet may be now."""
    wanted = replicas_of(deployment)
    if not is_rolling(deployment):
        return wanted
    current_new = replicas_of(new_rs) if new_rs is not None else 0
    if current_new >= wanted:
        return current_new
    ceiling = wanted + max_surge(deployment)
    current = total_replicas(all_rss)
    if current >= ceiling:
        return current_new
    return current_new + min(ceiling - current, wanted - current_new)


def old_scale_down_budget(deployment: dict, all_rss: list[dict], new_rs: dict | None) -> int:
    """How many old pods may go without dropping below the minimum availability."""
    min_available = replicas_of(deployment) - max_unavailable(deployment)
    new_unavailable = (replicas_of(new_rs) - status_of(new_rs, "availableReplicas")) if new_rs is not None else 0
    return total_replicas(all_rss) - min_available - new_unavailable


def by_creation(replica_sets: list[dict], newest_first: bool = False) -> list[dict]:
    return sorted(replica_sets, key=lambda rs: (rs["metadata"].get("creationTimestamp") or "",
                                                rs["metadata"].get("name", "")), reverse=newest_first)


def plan_unhealthy_cleanup(old_rss: list[dict], budget: int) -> dict[str, int]:
    """Old ReplicaSets shrink by their unavailable pods first (oldest first): {name: new size}."""
    plan: dict[str, int] = {}
    removed = 0
    for rs in by_creation(old_rss):
        if removed >= budget:
            break
        size = replicas_of(rs)
        if size == 0:
            continue
        unhealthy = size - status_of(rs, "availableReplicas")
        if unhealthy <= 0:
            continue
        cut = min(budget - removed, unhealthy)
        plan[rs["metadata"]["name"]] = size - cut
        removed += cut
    return plan


def plan_old_scale_down(deployment: dict, all_rss: list[dict], old_rss: list[dict]) -> dict[str, int]:
    """Then shrink old ReplicaSets (oldest first) as far as available pods allow: {name: new size}."""
    min_available = replicas_of(deployment) - max_unavailable(deployment)
    budget = total_status(all_rss, "availableReplicas") - min_available
    plan: dict[str, int] = {}
    for rs in by_creation(old_rss):
        if budget <= 0:
            break
        size = replicas_of(rs)
        if size == 0:
            continue
        cut = min(size, budget)
        plan[rs["metadata"]["name"]] = size - cut
        budget -= cut
    return plan


# -- proportional scaling

def annotated_int(rs: dict, key: str) -> int | None:
    value = (rs["metadata"].get("annotations") or {}).get(key)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def proportional_sizes(deployment: dict, active_rss: list[dict]) -> dict[str, int]:
    """Share a resize of a deployment mid-rollout among its active ReplicaSets.

    Each gets a part in proportion to its size (against the max-replicas it
    was sized for); whatever rounding leaves over goes to the biggest one.
    """
    allowed = replicas_of(deployment) + max_surge(deployment)
    to_add = allowed - total_replicas(active_rss)
    scale_up = to_add > 0
    # Growing favours the biggest (and among equals the newest); shrinking takes from the biggest,
    # among equals the oldest.
    order = sorted(active_rss, key=lambda rs: (replicas_of(rs), rs["metadata"].get("creationTimestamp") or ""),
                   reverse=True) if scale_up else \
        sorted(active_rss, key=lambda rs: (-replicas_of(rs), rs["metadata"].get("creationTimestamp") or ""))
    sizes = {rs["metadata"]["name"]: replicas_of(rs) for rs in order}
    added = 0
    for rs in order:
        share = _share(rs, deployment, to_add, added)
        sizes[rs["metadata"]["name"]] += share
        added += share
    if order and to_add != 0:
        first = order[0]["metadata"]["name"]
        sizes[first] = max(sizes[first] + to_add - added, 0)
    return sizes


def _share(rs: dict, deployment: dict, to_add: int, added: int) -> int:
    if replicas_of(rs) == 0 or to_add == 0:
        return 0
    fraction = _fraction(rs, deployment)
    left = to_add - added
    return min(fraction, left) if to_add > 0 else max(fraction, left)


def _fraction(rs: dict, deployment: dict) -> int:
    if replicas_of(deployment) == 0:
        return -replicas_of(rs)
    target = replicas_of(deployment) + max_surge(deployment)
    sized_for = annotated_int(rs, MAX_REPLICAS)
    if sized_for is None:
        sized_for = status_of(deployment, "replicas")
    if not sized_for:
        return 0
    return _round_half_away(replicas_of(rs) * target / sized_for) - replicas_of(rs)


def _round_half_away(x: float) -> int:
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


# -- templates, hashes, revisions

def template_hash(template: dict, collision_count: int | None = None) -> str:
    """A short stable name-safe hash of a pod template (plus the collision count, if any)."""
    data = orjson.dumps(template, option=orjson.OPT_SORT_KEYS)
    if collision_count:
        data += f"/{collision_count}".encode()
    number = int.from_bytes(hashlib.sha256(data).digest()[:4], "big")
    # each decimal digit becomes a letter: the familiar 9-10 character look of upstream's hashes
    return "".join(_SAFE_ALPHABET[ord(c) % len(_SAFE_ALPHABET)] for c in str(number))


def without_hash(template: dict) -> dict:
    t = copy.deepcopy(template or {})
    labels = (t.get("metadata") or {}).get("labels")
    if labels is not None:
        labels.pop(HASH_LABEL, None)
    return t


def same_template(a: dict, b: dict) -> bool:
    return _normal(without_hash(a)) == _normal(without_hash(b))


def _normal(template: dict) -> dict:
    """Empty maps and missing ones compare equal, as after a round-trip through the API."""
    meta = template.get("metadata") or {}
    meta = {k: v for k, v in meta.items() if v not in ({}, None, [])}
    return {**template, "metadata": meta}


def revision_of(obj: dict | None) -> int:
    if obj is None:
        return 0
    try:
        return int((obj["metadata"].get("annotations") or {}).get(REVISION, "0"))
    except ValueError:
        return 0


def max_revision(replica_sets: list[dict]) -> int:
    return max((revision_of(rs) for rs in replica_sets), default=0)


def history_to_clean(old_rss: list[dict], limit: int) -> list[dict]:
    """Old, empty ReplicaSets beyond revisionHistoryLimit, oldest revision first."""
    cleanable = [rs for rs in old_rss if not rs["metadata"].get("deletionTimestamp")]
    surplus = len(cleanable) - limit
    if surplus <= 0:
        return []
    doomed = []
    oldest = sorted(cleanable, key=lambda rs: (revision_of(rs), rs["metadata"].get("creationTimestamp") or ""))
    for rs in oldest[:surplus]:  # only the surplus oldest are candidates; a busy one is kept, not replaced
        status = rs.get("status") or {}
        if status.get("replicas") or replicas_of(rs) or \
                rs["metadata"].get("generation", 0) > status.get("observedGeneration", 0):
            continue  # still has pods, or the RS controller has not caught up with it
        doomed.append(rs)
    return doomed


def is_complete(deployment: dict, status: dict) -> bool:
    wanted = replicas_of(deployment)
    return status.get("updatedReplicas", 0) == wanted and status.get("replicas", 0) == wanted \
        and status.get("availableReplicas", 0) == wanted \
        and status.get("observedGeneration", 0) >= deployment["metadata"].get("generation", 0)


def is_progressing(deployment: dict, status: dict) -> bool:
    old = deployment.get("status") or {}
    old_old = old.get("replicas", 0) - old.get("updatedReplicas", 0)
    new_old = status.get("replicas", 0) - status.get("updatedReplicas", 0)
    return status.get("updatedReplicas", 0) > old.get("updatedReplicas", 0) or new_old < old_old \
        or status.get("readyReplicas", 0) > old.get("readyReplicas", 0) \
        or status.get("availableReplicas", 0) > old.get("availableReplicas", 0)
