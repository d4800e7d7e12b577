"""The Pod printer: READY, the one-word STATUS and RESTARTS of `kubectl get pods`.

STATUS condenses the pod's phase and container states the way upstream
does: the pod's reason or phase, overridden by the first init container
that has not finished (`Init:1/3`, `Init:CrashLoopBackOff`), else by the
first app container that is waiting or terminated (`CrashLoopBackOff`,
`Completed`, `ExitCode:1`), and finally by `Terminating` once deleted.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from k8py.api.printers import duration
from k8py.api.printers.columns import AGE, NAME, Column, Printer, age
from k8py.api.printers.formatting import NONE
from k8py.api.printers.values import as_dict, as_list, dig, integer, name_of, text

# The reason the node lifecycle controller gives pods on a lost node.
NODE_UNREACHABLE_REASON = "NodeLost"
TERMINAL_PHASES = ("Succeeded", "Failed")

COLUMNS = (
    NAME,
    Column("Ready", description="The aggregate readiness state of this pod for accepting traffic."),
    Column("Status", description="The aggregate status of the containers in this pod."),
    Column("Restarts", description="The number of times the containers in this pod have been "
                                   "restarted and when the last container in this pod has restarted."),
    AGE,
    Column("IP", priority=1, doc="core.v1.PodStatus.podIP"),
    Column("Node", priority=1, doc="core.v1.PodSpec.nodeName"),
    Column("Nominated Node", priority=1, doc="core.v1.PodStatus.nominatedNodeName"),
    Column("Readiness Gates", priority=1, doc="core.v1.PodSpec.readinessGates"),
)


@dataclass
class _Restarts:
    """Restart count and the latest restart time of a group of containers."""
    count: int = 0
    last: datetime.datetime | None = None

    def add(self, status: dict) -> None:
        self.count += integer(status.get("restartCount"))
        finished = duration.parse_time(dig(status, "lastState", "terminated", "finishedAt"))
        if finished and (self.last is None or self.last < finished):
            self.last = finished


@dataclass
class _Summary:
    reason: str
    ready: int = 0
    initializing: bool = False


def _restartable(container: dict | None) -> bool:
    """A sidecar: an init container that keeps running alongside the app."""
    return bool(container) and container.get("restartPolicy") == "Always"


def _state(container: dict, name: str) -> dict | None:
    """One of state.waiting/running/terminated, or None when the container is not in it."""
    state = as_dict(container.get("state")).get(name)
    return state if isinstance(state, dict) else None


def _terminated_reason(terminated: dict, prefix: str = "") -> str:
    if text(terminated.get("reason")):
        return prefix + text(terminated.get("reason"))
    if integer(terminated.get("signal")):
        return f"{prefix}Signal:{integer(terminated.get('signal'))}"
    return f"{prefix}ExitCode:{integer(terminated.get('exitCode'))}"


def _init_containers(spec: dict, status: dict, summary: _Summary,
                     all_restarts: _Restarts, sidecar_restarts: _Restarts) -> None:
    """Walk init containers in order until one has not finished."""
    specs = {text(c.get("name")): c for c in map(as_dict, as_list(spec.get("initContainers")))}
    total = len(as_list(spec.get("initContainers")))
    for index, container in enumerate(map(as_dict, as_list(status.get("initContainerStatuses")))):
        sidecar = _restartable(specs.get(text(container.get("name"))))
        all_restarts.add(container)
        if sidecar:
            sidecar_restarts.add(container)
        terminated, waiting = _state(container, "terminated"), _state(container, "waiting")
        if terminated is not None and integer(terminated.get("exitCode")) == 0:
            continue
        if sidecar and container.get("started") is True:
            summary.ready += 1 if container.get("ready") is True else 0
            continue
        if terminated is not None:
            summary.reason = _terminated_reason(terminated, "Init:")
        elif waiting and text(waiting.get("reason")) and waiting.get("reason") != "PodInitializing":
            summary.reason = "Init:" + text(waiting.get("reason"))
        else:
            summary.reason = f"Init:{index}/{total}"
        summary.initializing = True
        break


def _app_containers(status: dict, summary: _Summary, restarts: _Restarts) -> None:
    """App containers, last to first, so the first container's state has the final word."""
    has_running = False
    for container in reversed([as_dict(c) for c in as_list(status.get("containerStatuses"))]):
        restarts.add(container)
        waiting, terminated = _state(container, "waiting"), _state(container, "terminated")
        if waiting and text(waiting.get("reason")):
            summary.reason = text(waiting.get("reason"))
        elif terminated is not None:
            summary.reason = _terminated_reason(terminated)
        elif container.get("ready") is True and _state(container, "running") is not None:
            has_running = True
            summary.ready += 1
    # A completed container beside a still-running one: the pod is not done.
    if summary.reason == "Completed" and has_running:
        summary.reason = "Running" if _condition_true(status, "Ready") else "NotReady"


def _condition_true(status: dict, kind: str) -> bool:
    """Whether any condition of that type is True (upstream's PodReady check)."""
    return any(as_dict(c).get("type") == kind and as_dict(c).get("status") == "True"
               for c in as_list(status.get("conditions")))


def _initialized(status: dict) -> bool:
    """Whether the first Initialized condition is True."""
    for cond in map(as_dict, as_list(status.get("conditions"))):
        if cond.get("type") == "Initialized":
            return cond.get("status") == "True"
    return False


def _starting_reason(status: dict) -> str:
    reason = text(status.get("reason")) or text(status.get("phase"))
    for cond in map(as_dict, as_list(status.get("conditions"))):
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"
    return reason


def _total_containers(spec: dict) -> int:
    sidecars = sum(1 for c in as_list(spec.get("initContainers")) if _restartable(as_dict(c)))
    return len(as_list(spec.get("containers"))) + sidecars


def _deletion_reason(pod: dict, status: dict, reason: str) -> str:
    if not dig(pod, "metadata", "deletionTimestamp"):
        return reason
    if status.get("reason") == NODE_UNREACHABLE_REASON:
        return "Unknown"
    if status.get("phase") not in TERMINAL_PHASES:
        return "Terminating"
    return reason


def _restarts_cell(restarts: _Restarts, now: datetime.datetime) -> str:
    if restarts.count and restarts.last:
        return f"{restarts.count} ({duration.human_duration(duration.aware(now) - restarts.last)} ago)"
    return str(restarts.count)


def _pod_ip(status: dict) -> str:
    # podIP is authoritative over podIPs[0], as in upstream's conversion.
    if text(status.get("podIP")):
        return text(status.get("podIP"))
    ips = as_list(status.get("podIPs"))
    return (text(as_dict(ips[0]).get("ip")) if ips else "") or NONE


def _readiness_gates(spec: dict, status: dict) -> str:
    gates = [text(as_dict(g).get("conditionType")) for g in as_list(spec.get("readinessGates"))]
    if not gates:
        return NONE
    conds = [as_dict(c) for c in as_list(status.get("conditions"))]
    passed = sum(1 for gate in gates
                 if next((c.get("status") for c in conds if c.get("type") == gate), None) == "True")
    return f"{passed}/{len(gates)}"


def pod_cells(pod: dict, now: datetime.datetime) -> list:
    spec, status = as_dict(pod.get("spec")), as_dict(pod.get("status"))
    summary = _Summary(reason=_starting_reason(status))
    restarts, sidecar_restarts = _Restarts(), _Restarts()
    _init_containers(spec, status, summary, restarts, sidecar_restarts)
    if not summary.initializing or _initialized(status):
        # Once initialised, only sidecars' restarts count beside the app's.
        restarts = sidecar_restarts
        _app_containers(status, summary, restarts)
    reason = _deletion_reason(pod, status, summary.reason)
    return [
        name_of(pod),
        f"{summary.ready}/{_total_containers(spec)}",
        reason,
        _restarts_cell(restarts, now),
        age(pod, now),
        _pod_ip(status),
        text(spec.get("nodeName")) or NONE,
        text(status.get("nominatedNodeName")) or NONE,
        _readiness_gates(spec, status),
    ]


PRINTERS = {("", "Pod"): Printer(COLUMNS, pod_cells)}
