"""Pure Job rules: which pods count as done, failure policies, back-off, indexes.

Kept free of I/O so the Job controller's decisions can be tested on plain dicts.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from k8py.apimachinery.meta import parse_time

TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
INDEX_FAILURE_COUNT = "batch.kubernetes.io/job-index-failure-count"
INDEX_ENV = "JOB_COMPLETION_INDEX"
BACKOFF_BASE = 10.0     # seconds before the first replacement of a failed pod
BACKOFF_MAX = 360.0     # the delay doubles per failure up to six minutes


def phase(pod: dict) -> str:
    return (pod.get("status") or {}).get("phase") or "Pending"


def has_tracking_finalizer(pod: dict) -> bool:
    return TRACKING_FINALIZER in (pod["metadata"].get("finalizers") or [])


def is_succeeded(pod: dict) -> bool:
    return phase(pod) == "Succeeded"


def is_failed(pod: dict, only_failed_phase: bool) -> bool:
    """A pod that counts as failed. With podReplacementPolicy Failed (always so
    with a podFailurePolicy) only the Failed phase counts; otherwise a tracked
    pod deleted before it succeeded counts too."""
    if phase(pod) == "Failed":
        return True
    if only_failed_phase:
        return False
    return bool(pod["metadata"].get("deletionTimestamp")) and has_tracking_finalizer(pod) and \
        phase(pod) != "Succeeded"


def is_active(pod: dict) -> bool:
    return phase(pod) not in ("Succeeded", "Failed") and not pod["metadata"].get("deletionTimestamp")


def is_terminating(pod: dict) -> bool:
    return phase(pod) not in ("Succeeded", "Failed") and bool(pod["metadata"].get("deletionTimestamp"))


def is_ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def finish_time(pod: dict) -> datetime.datetime | None:
    """When the pod's last container finished, else its last condition change."""
    latest = None
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        t = parse_time(((cs.get("state") or {}).get("terminated") or {}).get("finishedAt"))
        if t and (latest is None or t > latest):
            latest = t
    if latest is None:
        for cond in (pod.get("status") or {}).get("conditions") or []:
            t = parse_time(cond.get("lastTransitionTime"))
            if t and (latest is None or t > latest):
                latest = t
    return latest


# -- indexes ---------------------------------------------------------------------------

def pod_index(pod: dict) -> int | None:
    meta = pod["metadata"]
    value = (meta.get("annotations") or {}).get(COMPLETION_INDEX) or (meta.get("labels") or {}).get(COMPLETION_INDEX)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def parse_indexes(text: str | None) -> set[int]:
    """'1,3-5,7' -> {1,3,4,5,7} (status.completedIndexes / failedIndexes)."""
    result: set[int] = set()
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        try:
            result.update(range(int(lo), int(hi or lo) + 1))
        except ValueError:
            continue
    return result


def format_indexes(indexes: set[int]) -> str:
    """{1,3,4,5,7} -> '1,3-5,7'."""
    parts, run = [], []
    for i in sorted(indexes):
        if run and i == run[-1] + 1:
            run.append(i)
            continue
        if run:
            parts.append(_run_text(run))
        run = [i]
    if run:
        parts.append(_run_text(run))
    return ",".join(parts)


def _run_text(run: list[int]) -> str:
    return str(run[0]) if len(run) == 1 else f"{run[0]}-{run[-1]}"


def index_failures(pods: list[dict], index: int, only_failed_phase: bool) -> int:
    """Failures so far of one index: the latest failed pod's own count plus its failure."""
    counts = [int((p["metadata"].get("annotations") or {}).get(INDEX_FAILURE_COUNT, "0") or 0) + 1
              for p in pods if pod_index(p) == index and is_failed(p, only_failed_phase)]
    return max(counts, default=0)


def pending_indexes(completions: int, completed: set[int], failed: set[int], active: list[dict]) -> list[int]:
    """Indexes that still need a pod, lowest first."""
    taken = {pod_index(p) for p in active}
    return [i for i in range(completions) if i not in completed and i not in failed and i not in taken]


def matched_success_rule(policy: dict | None, completed: set[int]) -> int | None:
    """Index of the first successPolicy rule the completed indexes satisfy (Indexed Jobs).

    A rule names indexes (`succeededIndexes`), a count (`succeededCount`), or
    both: the count of completed indexes among those named.
    """
    for i, rule in enumerate((policy or {}).get("rules") or []):
        named = rule.get("succeededIndexes")
        count = rule.get("succeededCount")
        pool = completed & parse_indexes(named) if named is not None else completed
        if count is not None:
            if len(pool) >= count:
                return i
        elif named is not None and parse_indexes(named) <= completed:
            return i
    return None


# -- pod failure policy ------------------------------------------------------------------

@dataclass
class PolicyMatch:
    action: str          # FailJob, FailIndex, Ignore, Count
    message: str


def _exit_code_match(pod: dict, rule_index: int, rule: dict, action: str) -> PolicyMatch | None:
    requirement = rule.get("onExitCodes")
    if not requirement:
        return None
    container = requirement.get("containerName")
    operator = requirement.get("operator")
    values = set(requirement.get("values") or [])
    status = pod.get("status") or {}
    for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        if container and cs.get("name") != container:
            continue
        terminated = (cs.get("state") or {}).get("terminated")
        if not terminated:
            continue
        code = terminated.get("exitCode", 0)
        if code == 0:
            continue  # a successful container never matches
        if (operator == "In" and code in values) or (operator == "NotIn" and code not in values):
            meta = pod["metadata"]
            return PolicyMatch(action, f"Container {cs.get('name')} for pod {meta.get('namespace')}/{meta['name']} "
                                       f"failed with exit code {code} matching {action} rule at index {rule_index}")
    return None


def _condition_match(pod: dict, rule_index: int, rule: dict, action: str) -> PolicyMatch | None:
    patterns = rule.get("onPodConditions") or []
    for cond in (pod.get("status") or {}).get("conditions") or []:
        for pattern in patterns:
            if cond.get("type") == pattern.get("type") and cond.get("status") == (pattern.get("status") or "True"):
                meta = pod["metadata"]
                return PolicyMatch(action, f"Pod {meta.get('namespace')}/{meta['name']} has condition "
                                           f"{cond['type']} matching {action} rule at index {rule_index}")
    return None


def match_failure_policy(policy: dict | None, pod: dict) -> PolicyMatch | None:
    """The first rule the failed pod matches, or None (then it simply counts)."""
    if not policy:
        return None
    for i, rule in enumerate(policy.get("rules") or []):
        action = rule.get("action")
        found = _exit_code_match(pod, i, rule, action) or _condition_match(pod, i, rule, action)
        if found is not None:
            return found
    return None


# -- back-off ----------------------------------------------------------------------------

def backoff_delay(failures_in_a_row: int) -> float:
    if failures_in_a_row <= 0:
        return 0.0
    return min(BACKOFF_BASE * 2 ** (failures_in_a_row - 1), BACKOFF_MAX)


def remaining_backoff(failures_in_a_row: int, last_failure: datetime.datetime | None,
                      now: datetime.datetime) -> float:
    """Seconds to wait before creating a replacement pod."""
    if failures_in_a_row <= 0 or last_failure is None:
        return 0.0
    ready_at = last_failure + datetime.timedelta(seconds=backoff_delay(failures_in_a_row))
    return max((ready_at - now).total_seconds(), 0.0)


def restart_count(pod: dict) -> int:
    status = pod.get("status") or {}
    return sum(cs.get("restartCount", 0) for cs in
               (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []))


def past_backoff_limit_on_failure(spec: dict, active_pods: list[dict], failed: int) -> bool:
    """With restartPolicy OnFailure, container restarts count against backoffLimit too."""
    if ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy") != "OnFailure":
        return False
    limit = spec.get("backoffLimit", 6)
    total = failed + sum(restart_count(p) for p in active_pods if phase(p) in ("Running", "Pending"))
    return total > limit if limit is not None else False


def wanted_active(spec: dict, succeeded: int, indexed_pending: int | None) -> int:
    """How many pods should be running now."""
    parallelism = spec.get("parallelism", 1) or 0
    completions = spec.get("completions")
    if indexed_pending is not None:
        return min(parallelism, indexed_pending)
    if completions is None:
        return 0 if succeeded > 0 else parallelism
    return max(min(parallelism, completions - succeeded), 0)
