"""The HorizontalPodAutoscaler controller: every sync period, each HPA reads its target's
scale subresource and its pods' metrics, computes the replica count and writes it back.

Per HPA and sync (upstream's reconcileAutoscaler): the target's /scale (kind
mapped through discovery, so CRDs with a scale subresource work too) gives the
current replicas and the pods' selector; a target at 0 replicas is left alone
(ScalingDisabled); one outside [min, max] is brought inside; otherwise every
metric proposes a count (the largest wins), behavior.py stabilizes and
rate-limits it, and a change is written to /scale with a SuccessfulRescale
event. Status (current/desired replicas, current metrics, lastScaleTime,
conditions) is written only when it changed.

Metrics served here: Resource (cpu, memory, ...) with Utilization or
AverageValue targets, from metrics.k8s.io. Other metric types get the
upstream failure condition and event for their type.
"""

from __future__ import annotations

import copy
import datetime
import logging

from k8py.apimachinery import quantity
from k8py.apimachinery.errors import StatusError
from k8py.apimachinery.meta import now as utc_now
from k8py.apimachinery.selectors import parse_label_selector
from k8py.client import ApiError
from k8py.controllers.base import Controller
from k8py.controllers.discovery import Discovery
from k8py.controllers.podautoscaler import behavior as rules
from k8py.controllers.podautoscaler.metrics import resource_samples
from k8py.controllers.podautoscaler.replicas import (
    CPU_INITIALIZATION_PERIOD, DEFAULT_TOLERANCE, INITIAL_READINESS_DELAY, MetricError,
    resource_utilization_replicas, resource_value_replicas)
from k8py.controllers.podautoscaler.status import (
    ABLE_TO_SCALE, SCALING_ACTIVE, SCALING_LIMITED, set_condition, set_replicas_and_metrics)

log = logging.getLogger("k8py.controllers.podautoscaler")

DEFAULT_SYNC_PERIOD = 15.0
BY_NAMESPACE = "namespace"
_FAILURE_REASONS = {"Pods": "FailedGetPodsMetric", "Object": "FailedGetObjectMetric",
                    "External": "FailedGetExternalMetric", "ContainerResource": "FailedGetContainerResourceMetric"}


class TargetError(Exception):
    """The scale target cannot be read; the text is what upstream reports."""


def hpa_options(args) -> dict:
    """Controller settings from kube-controller-manager's flag names."""
    return {"hpa_sync_period": args.horizontal_pod_autoscaler_sync_period,
            "hpa_downscale_stabilization": args.horizontal_pod_autoscaler_downscale_stabilization,
            "hpa_tolerance": args.horizontal_pod_autoscaler_tolerance,
            "hpa_cpu_initialization_period": args.horizontal_pod_autoscaler_cpu_initialization_period,
            "hpa_initial_readiness_delay": args.horizontal_pod_autoscaler_initial_readiness_delay}


def add_hpa_flags(p, go_duration) -> None:
    p.add_argument("--horizontal-pod-autoscaler-sync-period", type=go_duration, default=DEFAULT_SYNC_PERIOD,
                   help="how often the HPA controller syncs each autoscaler (default 15s)")
    p.add_argument("--horizontal-pod-autoscaler-downscale-stabilization", type=go_duration,
                   default=rules.DEFAULT_DOWNSCALE_STABILIZATION,
                   help="the window of recommendations a scale-down picks the highest from (default 5m0s)")
    p.add_argument("--horizontal-pod-autoscaler-tolerance", type=float, default=DEFAULT_TOLERANCE,
                   help="usage/target ratio distance from 1.0 within which nothing changes (default 0.1)")
    p.add_argument("--horizontal-pod-autoscaler-cpu-initialization-period", type=go_duration,
                   default=CPU_INITIALIZATION_PERIOD,
                   help="after a pod starts, how long its CPU samples may be skipped (default 5m0s)")
    p.add_argument("--horizontal-pod-autoscaler-initial-readiness-delay", type=go_duration,
                   default=INITIAL_READINESS_DELAY,
                   help="after a pod starts, how long readiness changes count as initial (default 30s)")


class HorizontalController(Controller):
    name = "horizontal-pod-autoscaler"
    event_source = "horizontal-pod-autoscaler"
    workers = 2

    async def setup(self) -> None:
        options = self.ctx.options
        self.sync_period = float(options.get("hpa_sync_period", DEFAULT_SYNC_PERIOD))
        self.downscale_window = float(options.get("hpa_downscale_stabilization",
                                                  rules.DEFAULT_DOWNSCALE_STABILIZATION))
        self.tolerance = float(options.get("hpa_tolerance", DEFAULT_TOLERANCE))
        self.timing = {"cpu_init_period": float(options.get("hpa_cpu_initialization_period",
                                                            CPU_INITIALIZATION_PERIOD)),
                       "readiness_delay": float(options.get("hpa_initial_readiness_delay",
                                                            INITIAL_READINESS_DELAY))}
        self.histories: dict[str, rules.History] = {}
        self.discovery = Discovery(self.client)
        self.hpas = self.ctx.informer("autoscaling/v2", "horizontalpodautoscalers")
        self.pods = self.ctx.informer("v1", "pods")
        self.ctx.ensure_index(self.pods, BY_NAMESPACE, lambda pod: [pod["metadata"].get("namespace", "")])
        self.hpas.add_handler(on_add=self.enqueue, on_update=self._spec_changed, on_delete=self.enqueue)

    def _spec_changed(self, old: dict, new: dict) -> None:
        # our own status writes must not make the HPA sync again before its period
        if old.get("spec") != new.get("spec"):
            self.enqueue(new)

    async def sync(self, key: str) -> None:
        cached = self.hpas.get(key)
        if cached is None:
            self.histories.pop(key, None)
            return
        hpa = copy.deepcopy(cached)
        hpa.setdefault("apiVersion", "autoscaling/v2")
        hpa.setdefault("kind", "HorizontalPodAutoscaler")
        original = copy.deepcopy(hpa.get("status") or {})
        try:
            await self._reconcile(key, hpa)
        finally:
            self.requeue_after(key, self.sync_period)
            if (hpa.get("status") or {}) != original:
                await self._write_status(hpa)

    async def _write_status(self, hpa: dict) -> None:
        api = self.client.resource("autoscaling/v2", "horizontalpodautoscalers", hpa["metadata"]["namespace"])
        try:
            await api.update_status(hpa)
        except ApiError as e:
            if not (e.not_found or e.conflict):
                raise
            # a newer version exists (or none): the next sync recomputes from it

    # -- one sync of one HPA

    async def _reconcile(self, key: str, hpa: dict) -> None:
        spec = hpa.get("spec") or {}
        namespace = hpa["metadata"]["namespace"]
        try:
            scale_api, scale = await self._get_scale(namespace, spec.get("scaleTargetRef") or {})
        except TargetError as e:
            self.recorder.event(hpa, "Warning", "FailedGetScale", str(e))
            set_condition(hpa, ABLE_TO_SCALE, False, "FailedGetScale",
                          f"the HPA controller was unable to get the target's current scale: {e}")
            return
        set_condition(hpa, ABLE_TO_SCALE, True, "SucceededGetScale",
                      "the HPA controller was able to get the target's current scale")
        current = int((scale.get("spec") or {}).get("replicas") or 0)
        history = self.histories.setdefault(key, rules.History())
        if not history.recommendations:
            history.recommendations.append((current, _now_seconds()))
        min_replicas = 1 if spec.get("minReplicas") is None else int(spec["minReplicas"])
        max_replicas = int(spec.get("maxReplicas") or 0)

        desired, reason, statuses, rescale = 0, "", [], True
        if current == 0 and min_replicas != 0:
            rescale = False
            set_condition(hpa, SCALING_ACTIVE, False, "ScalingDisabled",
                          "scaling is disabled since the replica count of the target is zero")
        elif current > max_replicas:
            desired, reason = max_replicas, "Current number of replicas above Spec.MaxReplicas"
        elif current < min_replicas:
            desired, reason = min_replicas, "Current number of replicas below Spec.MinReplicas"
        else:
            proposal, metric_name, statuses, error = await self._replicas_for_metrics(hpa, scale, current)
            if proposal == -1:
                set_replicas_and_metrics(hpa, current, (hpa.get("status") or {}).get("desiredReplicas", 0),
                                         statuses, False)
                self.recorder.event(hpa, "Warning", "FailedComputeMetricsReplicas", error)
                return
            if proposal > desired:
                desired = proposal
                reason = f"{metric_name} above target" if desired > current else reason
            if desired < current:
                reason = "All metrics below target"
            outcome = self._normalize(history, spec, current, desired, min_replicas, max_replicas)
            set_condition(hpa, ABLE_TO_SCALE, True, *outcome.able_to_scale)
            set_condition(hpa, SCALING_LIMITED, outcome.limited, *outcome.limit)
            desired = outcome.replicas
            rescale = desired != current

        if rescale:
            scale["spec"]["replicas"] = desired
            try:
                await scale_api.update(scale)
            except ApiError as e:
                message = e.status.get("message") or str(e)
                self.recorder.event(hpa, "Warning", "FailedRescale",
                                    f"New size: {desired}; reason: {reason}; error: {message}")
                set_condition(hpa, ABLE_TO_SCALE, False, "FailedUpdateScale",
                              f"the HPA controller was unable to update the target scale: {message}")
                set_replicas_and_metrics(hpa, current, (hpa.get("status") or {}).get("desiredReplicas", 0),
                                         statuses, False)
                return
            set_condition(hpa, ABLE_TO_SCALE, True, "SucceededRescale",
                          f"the HPA controller was able to update the target scale to {desired}")
            self.recorder.event(hpa, "Normal", "SuccessfulRescale", f"New size: {desired}; reason: {reason}")
            rules.record_scale(history, spec.get("behavior"), current, desired, _now_seconds())
            log.info("rescaled %s from %d to %d: %s", key, current, desired, reason)
        else:
            desired = current
        set_replicas_and_metrics(hpa, current, desired, statuses, rescale)

    def _normalize(self, history, spec, current, desired, min_replicas, max_replicas) -> rules.Outcome:
        behavior = spec.get("behavior")
        if behavior is None:
            return rules.normalize_legacy(history, current, desired, min_replicas, max_replicas,
                                          self.downscale_window, _now_seconds())
        return rules.normalize_with_behavior(history, behavior, current, desired, min_replicas, max_replicas,
                                             self.downscale_window, _now_seconds())

    async def _get_scale(self, namespace: str, ref: dict):
        api_version, kind, name = ref.get("apiVersion") or "", ref.get("kind") or "", ref.get("name") or ""
        resource = await self.discovery.by_kind(api_version, kind)
        if resource is None:
            group = api_version.rpartition("/")[0] if "/" in api_version else ""
            raise TargetError(f'no matches for kind "{kind}" in group "{group}"')
        api = self.client.resource(resource.group_version, resource.plural, namespace)
        try:
            scale = await api.get(name, "scale")
        except ApiError as e:
            raise TargetError(e.status.get("message") or str(e)) from e
        return _ScaleWriter(api, name), scale

    async def _replicas_for_metrics(self, hpa: dict, scale: dict, current: int):
        """(replicas, metric name, metric statuses, error); replicas -1 when nothing can be decided."""
        selector_text = (scale.get("status") or {}).get("selector") or ""
        if not selector_text:
            self.recorder.event(hpa, "Warning", "SelectorRequired", "selector is required")
            set_condition(hpa, SCALING_ACTIVE, False, "InvalidSelector", "the HPA target's scale is missing a selector")
            return -1, "", [], "selector is required"
        try:
            selector = parse_label_selector(selector_text)
        except StatusError as e:
            message = f"couldn't convert selector into a corresponding internal selector object: {e}"
            self.recorder.event(hpa, "Warning", "InvalidSelector", message)
            set_condition(hpa, SCALING_ACTIVE, False, "InvalidSelector", message)
            return -1, "", [], message
        namespace = hpa["metadata"]["namespace"]
        pods = [p for p in self.pods.by_index(BY_NAMESPACE, namespace) if selector.matches(p["metadata"].get("labels"))]
        metrics = (hpa.get("spec") or {}).get("metrics") or []
        statuses: list[dict] = [{} for _ in metrics]
        best, best_name, invalid, first_error, first_condition = 0, "", 0, "", None
        for i, metric in enumerate(metrics):
            try:
                proposal, name, statuses[i] = await self._replicas_for_metric(
                    metric, namespace, selector_text, pods, current)
            except MetricError as e:
                kind = metric.get("type") or ""
                reason = _FAILURE_REASONS.get(kind, "FailedGetResourceMetric")
                error = str(e)
                self.recorder.event(hpa, "Warning", reason, error)
                if invalid == 0:
                    first_error = _metric_error(metric, error)
                    first_condition = (reason, f"the HPA was unable to compute the replica count: {error}")
                invalid += 1
                continue
            if best == 0 or proposal > best:
                best, best_name = proposal, name
        statuses = [s for s in statuses if s]
        if invalid and (invalid >= len(metrics) or best < current):
            set_condition(hpa, SCALING_ACTIVE, False, *first_condition)
            return -1, "", statuses, f"invalid metrics ({invalid} invalid out of {len(metrics)}), " \
                                     f"first error is: {first_error}"
        set_condition(hpa, SCALING_ACTIVE, True, "ValidMetricFound",
                      f"the HPA was able to successfully calculate a replica count from {best_name}")
        return best, best_name, statuses, ""

    async def _replicas_for_metric(self, metric: dict, namespace: str, selector: str, pods: list[dict],
                                   current: int) -> tuple[int, str, dict]:
        if metric.get("type") != "Resource":
            raise MetricError(f"{metric.get('type')} metrics are not supported by this controller yet")
        source = metric.get("resource") or {}
        resource, target = source.get("name") or "", source.get("target") or {}
        now = utc_now()
        if target.get("averageValue") is not None:
            value = quantity.scaled_value(quantity.parse(target["averageValue"]), -3)
            try:
                samples = await resource_samples(self.client, namespace, selector, resource)
                proposal = resource_value_replicas(current, value, resource, pods, samples, now,
                                                   self.tolerance, **self.timing)
            except MetricError as e:
                raise MetricError(f"failed to get {resource} usage: {e}") from e
            return proposal.replicas, f"{resource} resource", {"type": "Resource", "resource": {
                "name": resource, "current": {"averageValue": _milli(proposal.raw)}}}
        if target.get("averageUtilization") is None:
            raise MetricError("invalid resource metric source: neither an average utilization target "
                              "nor an average value (usage) target was set")
        try:
            samples = await resource_samples(self.client, namespace, selector, resource)
            proposal = resource_utilization_replicas(current, int(target["averageUtilization"]), resource, pods,
                                                     samples, now, self.tolerance, **self.timing)
        except MetricError as e:
            raise MetricError(f"failed to get {resource} utilization: {e}") from e
        return proposal.replicas, f"{resource} resource utilization (percentage of request)", {
            "type": "Resource", "resource": {"name": resource, "current": {
                "averageUtilization": proposal.utilization, "averageValue": _milli(proposal.raw)}}}


class _ScaleWriter:
    def __init__(self, api, name: str):
        self.api, self.name = api, name

    async def update(self, scale: dict) -> dict:
        return await self.api.client.request("PUT", self.api.path(self.name, "scale"), scale)


def _metric_error(metric: dict, error: str) -> str:
    """How computeReplicasForMetric wraps a metric's failure."""
    if metric.get("type") == "Resource":
        return f"failed to get {(metric.get('resource') or {}).get('name')} resource metric value: {error}"
    return error


def _milli(value: int) -> str:
    """resource.NewMilliQuantity(value, DecimalSI) in canonical form."""
    return quantity.canonical(quantity.parse(f"{value}m"))


def _now_seconds() -> float:
    return datetime.datetime.now(datetime.timezone.utc).timestamp()
