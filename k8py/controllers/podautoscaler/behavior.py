"""From a metric's proposal to the replica count applied: stabilization and rate limits.

Kept per HPA (in memory, as upstream): the recent recommendations (for the
stabilization windows) and the recent scale events (for the policies'
periods). Without spec.behavior the legacy rules apply: the highest
recommendation of the downscale stabilization window, and scale-up limited to
max(2 x current, 4). With it, each direction has its stabilization window
(scale-down's defaults to --horizontal-pod-autoscaler-downscale-stabilization)
and its policies (Pods / Percent per period, combined by selectPolicy).

Each step returns the (reason, message) of the conditions upstream sets:
AbleToScale (ReadyForNewScale / ScaleUpStabilized / ScaleDownStabilized) and
ScalingLimited (DesiredWithinRange / TooManyReplicas / TooFewReplicas /
ScaleUpLimit / ScaleDownLimit).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

READY = ("ReadyForNewScale", "recommended size matches current size")
UP_STABILIZED = ("ScaleUpStabilized",
                 "recent recommendations were lower than current one, applying the lowest recent recommendation")
DOWN_STABILIZED = ("ScaleDownStabilized",
                   "recent recommendations were higher than current one, applying the highest recent recommendation")
WITHIN_RANGE = ("DesiredWithinRange", "the desired count is within the acceptable range")
TOO_MANY = ("TooManyReplicas", "the desired replica count is more than the maximum replica count")
TOO_FEW = ("TooFewReplicas", "the desired replica count is less than the minimum replica count")
UP_LIMIT = ("ScaleUpLimit", "the desired replica count is increasing faster than the maximum scale rate")
DOWN_LIMIT = ("ScaleDownLimit", "the desired replica count is decreasing faster than the maximum scale rate")

SCALE_UP_LIMIT_FACTOR = 2.0
SCALE_UP_LIMIT_MINIMUM = 4
DEFAULT_DOWNSCALE_STABILIZATION = 300.0


@dataclass
class ScaleEvent:
    change: int
    at: float
    outdated: bool = False


@dataclass
class History:
    """What one HPA's normalization remembers between syncs."""
    recommendations: list[tuple[int, float]] = field(default_factory=list)
    scale_ups: list[ScaleEvent] = field(default_factory=list)
    scale_downs: list[ScaleEvent] = field(default_factory=list)


@dataclass
class Outcome:
    replicas: int
    able_to_scale: tuple[str, str]
    limited: bool
    limit: tuple[str, str]


def _remember(history: History, recommendation: int, now: float, stale_before: float) -> None:
    """Store a recommendation, reusing the slot of one too old to matter."""
    for i, (_, at) in enumerate(history.recommendations):
        if at < stale_before:
            history.recommendations[i] = (recommendation, now)
            return
    history.recommendations.append((recommendation, now))


def _clamp(desired: int, minimum: int, maximum: int, maximum_reason) -> tuple[int, tuple[str, str]]:
    if desired < minimum:
        return minimum, TOO_FEW
    if desired > maximum:
        return maximum, maximum_reason
    return desired, WITHIN_RANGE


def normalize_legacy(history: History, current: int, desired: int, min_replicas: int, max_replicas: int,
                     downscale_window: float = DEFAULT_DOWNSCALE_STABILIZATION,
                     now: float | None = None) -> Outcome:
    """An HPA without spec.behavior."""
    now = time.time() if now is None else now
    cutoff = now - downscale_window
    stabilized = max([desired] + [r for r, at in history.recommendations if at >= cutoff])
    _remember(history, desired, now, cutoff)
    able = DOWN_STABILIZED if stabilized != desired else READY
    up_limit = max(math.ceil(SCALE_UP_LIMIT_FACTOR * current), SCALE_UP_LIMIT_MINIMUM)
    maximum, reason = (up_limit, UP_LIMIT) if max_replicas > up_limit else (max_replicas, TOO_MANY)
    replicas, limit = _clamp(stabilized, min_replicas or 1, maximum, reason)
    return Outcome(replicas, able, replicas != stabilized, limit)


def _window(rules: dict | None, default: float) -> float:
    value = (rules or {}).get("stabilizationWindowSeconds")
    return default if value is None else float(value)


def _changed_within(events: list[ScaleEvent], period: float, now: float) -> int:
    return sum(e.change for e in events if e.at > now - period and not e.outdated)


def _policy_limits(current: int, history: History, rules: dict, now: float, up: bool) -> list[int]:
    """Each policy's bound: counted from the replicas at the start of its period (the changes
    made within the period taken back), plus (scale-up) or minus (scale-down) what it allows."""
    limits = []
    for policy in rules.get("policies") or []:
        period = policy.get("periodSeconds", 15)
        start = current - _changed_within(history.scale_ups, period, now) \
            + _changed_within(history.scale_downs, period, now)
        value = policy["value"]
        if policy.get("type") == "Pods":
            limits.append(start + value if up else start - value)
        elif up:
            limits.append(math.ceil(start * (1 + value / 100)))
        else:
            limits.append(int(start * (1 - value / 100)))
    return limits


def scale_up_limit(current: int, history: History, rules: dict, now: float) -> int:
    select = rules.get("selectPolicy") or "Max"
    proposals = [] if select == "Disabled" else _policy_limits(current, history, rules, now, up=True)
    if not proposals:
        return current
    return min(proposals) if select == "Min" else max(proposals)


def scale_down_limit(current: int, history: History, rules: dict, now: float) -> int:
    select = rules.get("selectPolicy") or "Max"
    proposals = [] if select == "Disabled" else _policy_limits(current, history, rules, now, up=False)
    if not proposals:
        return current
    # "Max" picks the policy allowing the biggest change: the lowest floor
    return max(proposals) if select == "Min" else min(proposals)


def normalize_with_behavior(history: History, behavior: dict, current: int, desired: int, min_replicas: int,
                            max_replicas: int, downscale_window: float = DEFAULT_DOWNSCALE_STABILIZATION,
                            now: float | None = None) -> Outcome:
    """An HPA with spec.behavior (already defaulted by the API server)."""
    now = time.time() if now is None else now
    up_rules, down_rules = behavior.get("scaleUp") or {}, behavior.get("scaleDown") or {}
    up_window, down_window = _window(up_rules, 0.0), _window(down_rules, downscale_window)
    if desired >= current:
        cutoff, pick, stabilized_reason = now - up_window, min, UP_STABILIZED
    else:
        cutoff, pick, stabilized_reason = now - down_window, max, DOWN_STABILIZED
    stabilized = desired
    for recommendation, at in history.recommendations:
        if at > cutoff:
            stabilized = pick(stabilized, recommendation)
    _remember(history, desired, now, now - max(up_window, down_window))
    able = stabilized_reason if stabilized != desired else READY

    replicas, limit = stabilized, WITHIN_RANGE
    if stabilized > current:
        ceiling = max(scale_up_limit(current, history, up_rules, now), current)
        maximum, reason = (ceiling, UP_LIMIT) if max_replicas > ceiling else (max_replicas, TOO_MANY)
        if stabilized > maximum:
            replicas, limit = maximum, reason
    elif stabilized < current:
        floor = min(scale_down_limit(current, history, down_rules, now), current)
        minimum, reason = (floor, DOWN_LIMIT) if min_replicas < floor else (min_replicas, TOO_FEW)
        if stabilized < minimum:
            replicas, limit = minimum, reason
    return Outcome(replicas, able, replicas != stabilized, limit)


def _longest_period(rules: dict | None) -> float:
    return max([p.get("periodSeconds", 15) for p in (rules or {}).get("policies") or []] or [0])


def record_scale(history: History, behavior: dict | None, previous: int, new: int, now: float | None = None) -> None:
    """Remember a rescale for the policies' periods (only HPAs with behavior use them)."""
    if behavior is None or new == previous:
        return
    now = time.time() if now is None else now
    events, rules = (history.scale_ups, behavior.get("scaleUp")) if new > previous \
        else (history.scale_downs, behavior.get("scaleDown"))
    longest = _longest_period(rules)
    for e in events:
        if e.at < now - longest:
            e.outdated = True
    event = ScaleEvent(abs(new - previous), now)
    for i, e in enumerate(events):
        if e.outdated:
            events[i] = event
            return
    events.append(event)
