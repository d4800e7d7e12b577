"""The disruption controller: PodDisruptionBudget status.

For each budget it counts the pods its selector matches and works out:
* expectedPods: with an integer minAvailable, the number of matching pods;
  otherwise (maxUnavailable, or a percentage) the replicas the pods'
  controllers ask for (Deployment through its ReplicaSet, ReplicaSet,
  ReplicationController, StatefulSet);
* desiredHealthy: minAvailable (rounded up from a percentage) or
  expectedPods - maxUnavailable;
* currentHealthy: Ready pods not being deleted and not already being evicted
  (`disruptedPods`, written by the eviction subresource);
* disruptionsAllowed = currentHealthy - desiredHealthy (never below 0), and
  the DisruptionAllowed condition (SufficientPods / InsufficientPods, or
  SyncFailed when the expected count cannot be worked out).
Evictions the API server recorded in `disruptedPods` are dropped once the pod
is gone or after two minutes, as upstream does.
"""

from __future__ import annotations

import copy
import datetime
import logging
import math

from k8py.apimachinery.meta import now as utc_now, parse_time, rfc3339
from k8py.apimachinery.selectors import selector_from_label_selector
from k8py.client import ApiError
from k8py.controllers import podutil
from k8py.controllers.base import Controller, split_key
from k8py.controllers.ownership import controller_ref

log = logging.getLogger("k8py.controllers.disruption")

DELETION_TIMEOUT = 120.0  # seconds an unconfirmed eviction stays in disruptedPods


class NoController(Exception):
    pass


def scaled_value(value, total: int, round_up: bool) -> int:
    if isinstance(value, int):
        return value
    text = str(value)
    if text.endswith("%"):
        fraction = int(text[:-1]) * total / 100
        return math.ceil(fraction) if round_up else math.floor(fraction)
    return int(text)


def budget_numbers(spec: dict, pods: list[dict], expected_from_controllers) -> tuple[int, int]:
    """(expectedPods, desiredHealthy) for a budget; expected_from_controllers() may raise NoController."""
    min_available = spec.get("minAvailable")
    max_unavailable = spec.get("maxUnavailable")
    if max_unavailable is not None:
        expected = expected_from_controllers()
        return expected, max(expected - scaled_value(max_unavailable, expected, True), 0)
    if isinstance(min_available, int):
        return len(pods), min_available
    if min_available is not None:
        expected = expected_from_controllers()
        return expected, scaled_value(min_available, expected, True)
    return len(pods), 0


def healthy(pods: list[dict], disrupted: dict) -> int:
    return sum(1 for p in pods if podutil.is_ready(p) and not p["metadata"].get("deletionTimestamp")
               and p["metadata"]["name"] not in disrupted)


def prune_disrupted(disrupted: dict, pods_by_name: dict, now: datetime.datetime) -> tuple[dict, float | None]:
    """Entries still pending, and seconds until the next one expires."""
    kept, next_expiry = {}, None
    for name, when in (disrupted or {}).items():
        pod = pods_by_name.get(name)
        if pod is None or pod["metadata"].get("deletionTimestamp"):
            continue
        stamp = parse_time(when)
        left = DELETION_TIMEOUT - (now - stamp).total_seconds() if stamp else 0
        if left <= 0:
            continue
        kept[name] = when
        next_expiry = left if next_expiry is None else min(next_expiry, left)
    return kept, next_expiry


class DisruptionController(Controller):
    name = "disruption"
    workers = 2
    event_source = "controllermanager"

    async def setup(self) -> None:
        self.budgets = self.ctx.informer("policy/v1", "poddisruptionbudgets")
        self.pods = self.ctx.informer("v1", "pods")
        self.replicasets = self.ctx.informer("apps/v1", "replicasets")
        self.deployments = self.ctx.informer("apps/v1", "deployments")
        self.statefulsets = self.ctx.informer("apps/v1", "statefulsets")
        self.rcs = self.ctx.informer("v1", "replicationcontrollers")
        self.budgets.add_handler(on_add=self.enqueue, on_update=lambda old, new: self.enqueue(new))
        self.pods.add_handler(on_add=self._pod_changed, on_update=lambda old, new: self._pod_changed(old, new),
                              on_delete=self._pod_changed)
        for informer in (self.replicasets, self.deployments, self.statefulsets, self.rcs):
            informer.add_handler(on_update=self._scale_changed)

    def _pod_changed(self, *pods: dict) -> None:
        for pod in pods:
            namespace = pod["metadata"].get("namespace", "")
            labels = pod["metadata"].get("labels") or {}
            for pdb in self.budgets.by_index("namespace", namespace):
                selector = selector_from_label_selector((pdb.get("spec") or {}).get("selector"))
                if selector is not None and selector.matches(labels):
                    self.enqueue(pdb)

    def _scale_changed(self, old: dict, new: dict) -> None:
        if (old.get("spec") or {}).get("replicas") != (new.get("spec") or {}).get("replicas"):
            for pdb in self.budgets.by_index("namespace", new["metadata"].get("namespace", "")):
                self.enqueue(pdb)

    def _expected_from_controllers(self, pods: list[dict]):
        def count() -> int:
            seen: dict[str, int] = {}
            for pod in pods:
                ref = controller_ref(pod)
                if ref is None:
                    raise NoController(f'found no controller ref for pod "{pod["metadata"]["name"]}"')
                uid, replicas = self._controller_scale(pod["metadata"]["namespace"], ref)
                seen[uid] = replicas
            return sum(seen.values())
        return count

    def _controller_scale(self, namespace: str, ref: dict) -> tuple[str, int]:
        kind, name = ref.get("kind"), ref.get("name")
        informer = {"ReplicaSet": self.replicasets, "ReplicationController": self.rcs,
                    "StatefulSet": self.statefulsets}.get(kind)
        obj = informer.get(f"{namespace}/{name}") if informer else None
        if obj is None or obj["metadata"].get("uid") != ref.get("uid"):
            raise NoController(f'found no controllers for pod "{name}"')
        if kind == "ReplicaSet":  # a Deployment's ReplicaSet: the Deployment's replicas count
            owner = controller_ref(obj)
            if owner is not None and owner.get("kind") == "Deployment":
                deployment = self.deployments.get(f"{namespace}/{owner['name']}")
                if deployment is not None and deployment["metadata"].get("uid") == owner.get("uid"):
                    return owner["uid"], (deployment.get("spec") or {}).get("replicas", 1)
        return obj["metadata"]["uid"], (obj.get("spec") or {}).get("replicas", 1)

    async def sync(self, key: str) -> None:
        pdb = self.budgets.get(key)
        if pdb is None:
            return
        pdb = copy.deepcopy(pdb)
        namespace, _ = split_key(key)
        spec = pdb.get("spec") or {}
        selector = selector_from_label_selector(spec.get("selector"))
        pods = [p for p in self.pods.by_index("namespace", namespace)
                if selector is not None and selector.matches(p["metadata"].get("labels"))]
        status = copy.deepcopy(pdb.get("status") or {})
        now = utc_now()
        disrupted, next_expiry = prune_disrupted(status.get("disruptedPods") or {},
                                                 {p["metadata"]["name"]: p for p in pods}, now)
        try:
            expected, desired = budget_numbers(spec, pods, self._expected_from_controllers(pods))
        except NoController as e:
            self.recorder.event(pdb, "Warning", "NoControllers", str(e))
            new = self._status(pdb, status, disrupted, status.get("currentHealthy", 0),
                               status.get("desiredHealthy", 0), status.get("expectedPods", 0), 0,
                               ("False", "SyncFailed", str(e)))
        else:
            current = healthy(pods, disrupted)
            allowed = max(current - desired, 0) if expected > 0 else 0
            reason = ("True", "SufficientPods", "") if allowed > 0 else ("False", "InsufficientPods", "")
            new = self._status(pdb, status, disrupted, current, desired, expected, allowed, reason)
        if new != (pdb.get("status") or {}):
            pdb["status"] = new
            try:
                await self.client.resource("policy/v1", "poddisruptionbudgets", namespace).update_status(pdb)
            except ApiError as e:
                if not e.not_found:
                    raise
        if next_expiry is not None:
            self.requeue_after(key, next_expiry)

    def _status(self, pdb: dict, old: dict, disrupted: dict, current: int, desired: int, expected: int,
                allowed: int, condition: tuple[str, str, str]) -> dict:
        status = {"observedGeneration": pdb["metadata"].get("generation"), "disruptionsAllowed": allowed,
                  "currentHealthy": current, "desiredHealthy": desired, "expectedPods": expected}
        if disrupted:
            status["disruptedPods"] = disrupted
        cond_status, reason, message = condition
        previous = next((c for c in old.get("conditions") or [] if c.get("type") == "DisruptionAllowed"), None)
        changed = previous is None or previous.get("status") != cond_status or previous.get("reason") != reason
        status["conditions"] = [c for c in old.get("conditions") or [] if c.get("type") != "DisruptionAllowed"] + [{
            "type": "DisruptionAllowed", "status": cond_status, "reason": reason, "message": message,
            "observedGeneration": pdb["metadata"].get("generation"),
            "lastTransitionTime": rfc3339() if changed else previous.get("lastTransitionTime")}]
        return status
