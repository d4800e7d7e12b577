"""Evictions that respect PodDisruptionBudgets.

Before the eviction subresource deletes a pod it asks the pod's budget:
* pods that are already finished, still Pending or being deleted are evicted
  without asking (they disrupt nothing);
* no budget selects the pod: allowed; more than one: a 500, as upstream;
* an unready pod may go without spending the budget when the budget's
  unhealthyPodEvictionPolicy is AlwaysAllow, or (IfHealthyBudget, the
  default) when the budget is currently met;
* a budget the disruption controller has not caught up with, or with no
  disruptions left, refuses with 429 TooManyRequests ("Cannot evict pod as
  it would violate the pod's disruption budget."), which kubectl drain retries;
* otherwise the eviction spends one disruption: disruptionsAllowed goes down
  and the pod is recorded in disruptedPods (so the controller does not count
  it healthy) in the same write, before the pod is deleted.
A pod that is still running is marked with the DisruptionTarget condition
before it is deleted, so a Job's podFailurePolicy can tell an eviction from a
crash.
"""

from __future__ import annotations

from k8py.apimachinery import errors
from k8py.apimachinery.meta import rfc3339
from k8py.apimachinery.selectors import selector_from_label_selector

VIOLATION = "Cannot evict pod as it would violate the pod's disruption budget."
MAX_DISRUPTED_PODS = 2000


def _ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def ignores_budgets(pod: dict) -> bool:
    phase = (pod.get("status") or {}).get("phase")
    return phase in ("Succeeded", "Failed", "Pending") or bool(pod["metadata"].get("deletionTimestamp"))


def matching_budgets(pod: dict, budgets: list[dict]) -> list[dict]:
    labels = pod["metadata"].get("labels") or {}
    found = []
    for pdb in budgets:
        selector = selector_from_label_selector((pdb.get("spec") or {}).get("selector"))
        if selector is not None and selector.matches(labels):
            found.append(pdb)
    return found


def _refuse(cause: str) -> errors.StatusError:
    return errors.StatusError(429, "TooManyRequests", VIOLATION,
                              causes=[errors.Cause("", cause, "DisruptionBudget")])


def spend(pdb: dict, pod: dict) -> dict | None:
    """The budget after this eviction (None: allowed without spending); raises when refused."""
    spec = pdb.get("spec") or {}
    status = pdb.get("status") or {}
    name = pdb["metadata"]["name"]
    if not _ready(pod):
        policy = spec.get("unhealthyPodEvictionPolicy") or "IfHealthyBudget"
        if policy == "AlwaysAllow" or status.get("currentHealthy", 0) >= status.get("desiredHealthy", 0) > 0:
            return None
    if (status.get("observedGeneration") or 0) < (pdb["metadata"].get("generation") or 0):
        raise _refuse(f"The disruption budget {name} is still being processed by the server.")
    allowed = status.get("disruptionsAllowed", 0)
    if allowed < 0:
        raise errors.StatusError(403, "Forbidden", "pdb disruptions allowed is negative")
    if len(status.get("disruptedPods") or {}) > MAX_DISRUPTED_PODS:
        raise errors.StatusError(403, "Forbidden",
                                 "DisruptedPods map too big - too many evictions not confirmed by PDB controller")
    if allowed == 0:
        raise _refuse(f"The disruption budget {name} needs {status.get('desiredHealthy', 0)} healthy pods and has "
                      f"{status.get('currentHealthy', 0)} currently")
    status = dict(status)
    status["disruptionsAllowed"] = allowed - 1
    status["disruptedPods"] = {**(status.get("disruptedPods") or {}), pod["metadata"]["name"]: rfc3339()}
    return {**pdb, "status": status}


async def check_and_record(api, pod: dict, dry_run: bool) -> None:
    """Raise the Status that refuses this eviction, or spend the budget for it."""
    if ignores_budgets(pod):
        return
    store = api.objects_for("policy", "v1", "poddisruptionbudgets")
    namespace = pod["metadata"]["namespace"]
    budgets = [c.obj for c in store.cache.list(store.resource.key_prefix(namespace))[0]]
    found = matching_budgets(pod, budgets)
    if not found:
        return
    if len(found) > 1:
        raise errors.internal_error("This pod has more than one PodDisruptionBudget, which the eviction "
                                    "subresource does not support.")
    if dry_run:
        spend(found[0], pod)
        return

    def mutate(current: dict) -> dict:
        updated = spend(current, pod)
        return updated if updated is not None else current

    await store.guaranteed_update(namespace, found[0]["metadata"]["name"], mutate, subresource="status")


def with_disruption_target(pod: dict) -> dict:
    """The pod with DisruptionTarget=True (reason EvictionByEvictionAPI), unless it already finished."""
    status = pod.setdefault("status", {})
    if status.get("phase") in ("Succeeded", "Failed"):
        return pod
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != "DisruptionTarget"]
    conditions.append({"type": "DisruptionTarget", "status": "True", "lastProbeTime": None,
                       "lastTransitionTime": rfc3339(), "reason": "EvictionByEvictionAPI",
                       "message": "Eviction API: evicting"})
    status["conditions"] = conditions
    return pod


async def mark_disruption_target(pods_store, namespace: str, name: str, user) -> None:
    await pods_store.guaranteed_update(namespace, name, with_disruption_target, subresource="status", user=user)
