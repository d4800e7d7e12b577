"""How many replicas a metric asks for, by upstream's replica calculator.

Per-pod samples are milli-units (millicores, milli-bytes). Pods are split as
upstream does: deleted or failed pods are ignored, pending pods are unready,
pods without a sample are missing, and for CPU a pod still starting (within
the CPU initialization period) whose sample may predate its readiness, or a
pod that has never been ready, counts as unready. The usage ratio of the
ready pods decides; inside the tolerance nothing changes. When some pods are
missing or unready the ratio is recomputed assuming the worst for the
direction of the change (missing pods at 100% of target when scaling down, 0
when scaling up; unready pods 0 when scaling up), and the change is dropped
if that flips its direction.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass

from k8py.apimachinery import quantity
from k8py.apimachinery.meta import parse_time
from k8py.controllers.podutil import ready_condition

DEFAULT_TOLERANCE = 0.1
CPU_INITIALIZATION_PERIOD = 300.0
INITIAL_READINESS_DELAY = 30.0


class MetricError(Exception):
    """The metric cannot give a replica count; the text is upstream's."""


@dataclass
class PodSample:
    value: int                        # milli-units
    timestamp: datetime.datetime | None = None
    window: float = 0.0               # seconds


@dataclass
class Proposal:
    replicas: int
    utilization: int | None           # percent of requests (Utilization targets)
    raw: int                          # average milli-units per pod with a sample


def group_pods(pods: list[dict], samples: dict[str, PodSample], resource: str, now: datetime.datetime,
               cpu_init_period: float = CPU_INITIALIZATION_PERIOD,
               readiness_delay: float = INITIAL_READINESS_DELAY) -> tuple[int, set, set, set]:
    """(ready count, unready names, missing names, ignored names)."""
    ready, unready, missing, ignored = 0, set(), set(), set()
    for pod in pods:
        name = pod["metadata"]["name"]
        status = pod.get("status") or {}
        if pod["metadata"].get("deletionTimestamp") or status.get("phase") == "Failed":
            ignored.add(name)
            continue
        if status.get("phase") == "Pending":
            unready.add(name)
            continue
        sample = samples.get(name)
        if sample is None:
            missing.add(name)
            continue
        if resource == "cpu" and _cpu_sample_unready(pod, sample, now, cpu_init_period, readiness_delay):
            unready.add(name)
            continue
        ready += 1
    return ready, unready, missing, ignored


def _cpu_sample_unready(pod: dict, sample: PodSample, now, cpu_init_period: float, readiness_delay: float) -> bool:
    condition = ready_condition(pod)
    started = parse_time((pod.get("status") or {}).get("startTime"))
    if condition is None or started is None:
        return True
    transition = parse_time(condition.get("lastTransitionTime")) or started
    if started + datetime.timedelta(seconds=cpu_init_period) > now:
        # still starting: its CPU may spike, so only a ready pod sampled a full window after readiness counts
        if condition.get("status") == "False":
            return True
        return sample.timestamp is not None and \
            sample.timestamp < transition + datetime.timedelta(seconds=sample.window)
    # past initialization: only a pod that has never been ready is left out
    return condition.get("status") == "False" and started + datetime.timedelta(seconds=readiness_delay) > transition


def pod_requests(pods: list[dict], resource: str, container: str | None = None) -> dict[str, int]:
    """Each pod's request (milli-units), summed over its containers (or the named one)."""
    out = {}
    for pod in pods:
        total = 0
        for c in (pod.get("spec") or {}).get("containers") or []:
            if container and c.get("name") != container:
                continue
            request = ((c.get("resources") or {}).get("requests") or {}).get(resource)
            if request is None:
                raise MetricError(f"missing request for {resource} in container {c.get('name')} "
                                  f"of Pod {pod['metadata']['name']}")
            total += quantity.scaled_value(quantity.parse(request), -3)
        out[pod["metadata"]["name"]] = total
    return out


def utilization_ratio(samples: dict[str, int], requests: dict[str, int], target: int) -> tuple[float, int, int]:
    """(usage/target ratio, utilization %, average raw usage) over pods with both a sample and a request."""
    used = requested = count = 0
    for name, value in samples.items():
        if name not in requests:
            continue
        used += value
        requested += requests[name]
        count += 1
    if requested == 0:
        raise MetricError("no metrics returned matched known pods")
    utilization = used * 100 // requested
    return utilization / target, utilization, used // count


def usage_ratio(samples: dict[str, int], target: int) -> tuple[float, int]:
    """(average/target ratio, average) for AverageValue targets."""
    average = sum(samples.values()) // len(samples)
    return average / target, average


def _replicas(current: int, ready: int, unready: set, missing: set, ratio: float, tolerance: float,
              samples: dict[str, int], fill_missing, recompute) -> int | None:
    """The common second half of both calculations; None means keep `current`."""
    scale_up_with_unready = bool(unready) and ratio > 1.0
    if not scale_up_with_unready and not missing:
        if abs(1.0 - ratio) <= tolerance:
            return None
        return math.ceil(ratio * ready)
    for name in missing:
        samples[name] = fill_missing(name) if ratio < 1.0 else 0
    if scale_up_with_unready:
        for name in unready:
            samples[name] = 0
    new_ratio = recompute(samples)
    if abs(1.0 - new_ratio) <= tolerance or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return None
    replicas = math.ceil(new_ratio * len(samples))
    if (new_ratio < 1.0 and replicas > current) or (new_ratio > 1.0 and replicas < current):
        return None
    return replicas


def _usable(pods, samples, resource, now, **timing):
    if not pods:
        raise MetricError("no pods returned by selector while calculating replica count")
    ready, unready, missing, ignored = group_pods(pods, samples, resource, now, **timing)
    values = {name: s.value for name, s in samples.items() if name not in ignored and name not in unready}
    if not values:
        raise MetricError("did not receive metrics for targeted pods (pods might be unready)")
    return ready, unready, missing, values


def resource_utilization_replicas(current: int, target_utilization: int, resource: str, pods: list[dict],
                                  samples: dict[str, PodSample], now: datetime.datetime,
                                  tolerance: float = DEFAULT_TOLERANCE, container: str | None = None,
                                  **timing) -> Proposal:
    """A Utilization target: usage as a percentage of the pods' requests."""
    ready, unready, missing, values = _usable(pods, samples, resource, now, **timing)
    requests = pod_requests(pods, resource, container)
    ratio, utilization, raw = utilization_ratio(values, requests, target_utilization)
    fallback = max(100, target_utilization)
    replicas = _replicas(current, ready, unready, missing, ratio, tolerance, values,
                         lambda name: requests[name] * fallback // 100,
                         lambda s: utilization_ratio(s, requests, target_utilization)[0])
    return Proposal(current if replicas is None else replicas, utilization, raw)


def resource_value_replicas(current: int, target_value: int, resource: str, pods: list[dict],
                            samples: dict[str, PodSample], now: datetime.datetime,
                            tolerance: float = DEFAULT_TOLERANCE, **timing) -> Proposal:
    """An AverageValue target: the pods' average usage against a fixed amount (milli-units)."""
    ready, unready, missing, values = _usable(pods, samples, resource, now, **timing)
    ratio, average = usage_ratio(values, target_value)
    replicas = _replicas(current, ready, unready, missing, ratio, tolerance, values,
                         lambda name: target_value, lambda s: usage_ratio(s, target_value)[0])
    return Proposal(current if replicas is None else replicas, None, average)
