"""Pod status from what the kubelet knows: phase, conditions, container statuses.

Pure functions over plain dicts and runtime ContainerStatus records, so the
rules (which mirror the kubelet's) can be tested without running anything.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

from k8py.kubelet.runtime.interface import ContainerStatus


def ts(unix: float | None) -> str | None:
    if unix is None:
        return None
    return datetime.datetime.fromtimestamp(unix, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ContainerRecord:
    """The kubelet's view of one container of a pod, across restarts."""
    name: str
    image: str
    current: ContainerStatus | None = None     # the newest instance
    previous: ContainerStatus | None = None    # the instance before it
    restart_count: int = 0
    waiting_reason: str = ""                   # why the container isn't running (when it isn't)
    waiting_message: str = ""
    ready: bool = False
    started: bool = False                      # startup probe passed (or none)
    image_name: str = ""                       # as the image store names it: docker.io/library/busybox:latest
    image_ref: str = ""                        # repo digest: docker.io/library/busybox@sha256:...


def terminated_state(cs: ContainerStatus, runtime_name: str) -> dict:
    if cs.oom_killed:
        reason = "OOMKilled"
    elif cs.reason and cs.reason not in ("Completed", "Error"):
        reason = cs.reason
    else:
        reason = "Completed" if cs.exit_code == 0 else "Error"
    state = {"exitCode": cs.exit_code if cs.exit_code is not None else 137 if cs.oom_killed else 0,
             "reason": reason,
             "startedAt": ts(cs.started_at or cs.created_at),
             "finishedAt": ts(cs.finished_at),
             "containerID": f"{runtime_name}://{cs.id}"}
    if cs.message:
        state["message"] = cs.message
    return state


def container_status(record: ContainerRecord, runtime_name: str, is_init: bool) -> dict:
    cur = record.current
    running = cur is not None and cur.state == "running" and not record.waiting_reason
    status: dict = {"name": record.name, "state": {}, "lastState": {}, "ready": bool(record.ready and running),
                    "restartCount": record.restart_count,
                    "image": record.image_name or (cur.image if cur and cur.image else record.image),
                    "imageID": (record.image_ref or cur.image_id) if cur else ""}
    if cur is not None:
        status["containerID"] = f"{runtime_name}://{cur.id}"
    last = record.previous
    if cur is not None and cur.state == "running" and not record.waiting_reason:
        status["state"] = {"running": {"startedAt": ts(cur.started_at or cur.created_at)}}
    elif cur is not None and cur.state == "exited" and not record.waiting_reason:
        status["state"] = {"terminated": terminated_state(cur, runtime_name)}
    else:
        status["state"] = {"waiting": {"reason": record.waiting_reason or "ContainerCreating"}}
        if record.waiting_message:
            status["state"]["waiting"]["message"] = record.waiting_message
        if cur is not None and cur.state == "exited":
            last = cur       # waiting to restart: the instance that just ended is the last state
    if last is not None and last.state == "exited":
        status["lastState"] = {"terminated": terminated_state(last, runtime_name)}
    if not is_init:
        status["started"] = bool(record.started and cur is not None and cur.state == "running"
                                 and not record.waiting_reason)
    else:
        status["started"] = bool(cur is not None and cur.state == "running")
    return status


def ephemeral_container_status(record: ContainerRecord, runtime_name: str) -> dict:
    """As upstream reports a debug container: never ready (no probes run on it), no `started`."""
    status = container_status(record, runtime_name, is_init=False)
    status["ready"] = False
    status.pop("started", None)
    return status


def init_done(init_statuses: list[dict]) -> bool:
    return all(_succeeded(s) for s in init_statuses)


def _succeeded(s: dict) -> bool:
    term = (s.get("state") or {}).get("terminated")
    return bool(term) and term.get("exitCode") == 0


def sidecar_names(pod: dict) -> set[str]:
    """Init containers with restartPolicy Always: sidecars that run beside the app containers."""
    return {c.get("name") for c in (pod.get("spec") or {}).get("initContainers") or []
            if c.get("restartPolicy") == "Always"}


def _app_started(statuses: list[dict]) -> bool:
    return any("waiting" not in (s.get("state") or {}) or (s.get("lastState") or {}).get("terminated")
               for s in statuses)


def pod_phase(pod: dict, init_statuses: list[dict], statuses: list[dict], terminal: bool = False) -> str:
    """The kubelet's phase rules (getPhase); `terminal`: the pod is being deleted and all is stopped."""
    policy = (pod.get("spec") or {}).get("restartPolicy", "Always")
    sidecars = sidecar_names(pod)
    pending_init = False
    for s in init_statuses:
        state = s.get("state") or {}
        if s.get("name") in sidecars:
            # A sidecar holds the pod in Pending only until it has started once.
            if not s.get("started") and not _app_started(statuses):
                pending_init = True
            continue
        if _succeeded(s):
            continue
        if "terminated" in state or ("waiting" in state and (s.get("lastState") or {}).get("terminated")):
            if policy == "Never":
                return "Failed"
        pending_init = True
    running = waiting = stopped = succeeded = 0
    for s in statuses:
        state = s.get("state") or {}
        if "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            if state["terminated"].get("exitCode") == 0:
                succeeded += 1
        elif "waiting" in state:
            if (s.get("lastState") or {}).get("terminated"):
                stopped += 1
            else:
                waiting += 1
    if terminal and running == 0 and (stopped > 0 or waiting > 0):
        return "Succeeded" if stopped > 0 and stopped == succeeded and waiting == 0 else "Failed"
    if pending_init or waiting > 0:
        return "Pending"
    if running > 0:
        return "Running"
    if stopped > 0:
        if terminal:
            return "Succeeded" if stopped == succeeded else "Failed"
        if policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"


def _condition(ctype: str, ok: bool, reason: str = "", message: str = "", previous: list | None = None,
               now: str = "") -> dict:
    status = "True" if ok else "False"
    old = next((c for c in previous or [] if c.get("type") == ctype), None)
    transition = old.get("lastTransitionTime") if old and old.get("status") == status else now
    cond = {"type": ctype, "status": status, "lastProbeTime": None, "lastTransitionTime": transition}
    if not ok and reason:
        cond["reason"] = reason
        if message:
            cond["message"] = message
    elif ok and reason == "PodCompleted":
        cond["reason"] = reason
    return cond


def pod_conditions(pod: dict, phase: str, init_statuses: list[dict], statuses: list[dict],
                   sandbox_ready: bool, now: str) -> list[dict]:
    previous = (pod.get("status") or {}).get("conditions") or []
    conditions: list[dict] = []
    conditions.append(_condition("PodReadyToStartContainers", sandbox_ready, previous=previous, now=now))
    # Initialized
    if phase == "Succeeded" and init_statuses:
        initialized = _condition("Initialized", True, "PodCompleted", previous=previous, now=now)
    else:
        sidecars = sidecar_names(pod)
        incomplete = [s["name"] for s in init_statuses
                      if (s["name"] in sidecars and not s.get("started") and not _app_started(statuses))
                      or (s["name"] not in sidecars and not _succeeded(s))]
        initialized = _condition("Initialized", not incomplete, "ContainersNotInitialized",
                                 f"containers with incomplete status: [{' '.join(incomplete)}]",
                                 previous, now)
    conditions.append(initialized)
    sidecars = sidecar_names(pod)
    unready = [s["name"] for s in init_statuses if s["name"] in sidecars and not s.get("ready")] + \
        [s["name"] for s in statuses if not s.get("ready")]
    if phase in ("Succeeded", "Failed") and unready:
        reason = "PodCompleted" if phase == "Succeeded" else "PodFailed"
        ready_ok, ready_reason, ready_msg = False, reason, ""
    elif init_statuses and initialized["status"] != "True":
        ready_ok, ready_reason = False, "ContainersNotReady"
        ready_msg = f"containers with unready status: [{' '.join(unready)}]"
    else:
        ready_ok, ready_reason = not unready, "ContainersNotReady"
        ready_msg = f"containers with unready status: [{' '.join(unready)}]"
    readiness_gates = [g.get("conditionType") for g in (pod.get("spec") or {}).get("readinessGates") or []]
    conditions.append(_condition("ContainersReady", ready_ok, ready_reason, ready_msg, previous, now))
    pod_ready_ok, pod_ready_reason, pod_ready_msg = ready_ok, ready_reason, ready_msg
    if ready_ok and readiness_gates:
        missing = [g for g in readiness_gates
                   if not any(c.get("type") == g and c.get("status") == "True" for c in previous)]
        if missing:
            pod_ready_ok, pod_ready_reason = False, "ReadinessGatesNotReady"
            pod_ready_msg = "corresponding condition of pod readiness gate " + \
                ", ".join(f'"{g}"' for g in missing) + " does not exist."
    conditions.append(_condition("Ready", pod_ready_ok, pod_ready_reason, pod_ready_msg, previous, now))
    scheduled = next((c for c in previous if c.get("type") == "PodScheduled"), None)
    conditions.append(scheduled or {"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                                    "lastTransitionTime": now})
    # Conditions others own (readiness gates, DisruptionTarget...) are kept as they are.
    ours = {"PodReadyToStartContainers", "Initialized", "ContainersReady", "Ready", "PodScheduled"}
    conditions.extend(c for c in previous if c.get("type") not in ours)
    return conditions
