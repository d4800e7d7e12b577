"""DefaultTolerationSeconds admission: every pod tolerates a not-ready or unreachable node for a while.

A pod without its own NoExecute toleration for node.kubernetes.io/not-ready
(or unreachable) gets one for --default-not-ready-toleration-seconds
(--default-unreachable-toleration-seconds), 300 s by default: that is how long
it stays on a node the node lifecycle controller tainted before the taint
eviction controller deletes it. Upstream runs it on creates and updates.
"""

from __future__ import annotations

NOT_READY = "node.kubernetes.io/not-ready"
UNREACHABLE = "node.kubernetes.io/unreachable"


def _covers(toleration, key: str) -> bool:
    return isinstance(toleration, dict) and (toleration.get("key") == key or
                                             (not toleration.get("key") and toleration.get("operator") == "Exists")) \
        and toleration.get("effect") in (None, "", "NoExecute")


def add_default_tolerations(pod: dict, not_ready_seconds: int = 300, unreachable_seconds: int = 300) -> None:
    spec = pod.get("spec")
    if not isinstance(spec, dict) or not isinstance(spec.get("tolerations", []), list):
        return    # validation reports it
    tolerations = list(spec.get("tolerations") or [])
    for key, seconds in ((NOT_READY, not_ready_seconds), (UNREACHABLE, unreachable_seconds)):
        if not any(_covers(t, key) for t in tolerations):
            tolerations.append({"key": key, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": seconds})
    spec["tolerations"] = tolerations


def admit_pod(api, pod: dict) -> None:
    config = getattr(api, "config", None)
    add_default_tolerations(pod, getattr(config, "default_not_ready_toleration_seconds", 300),
                            getattr(config, "default_unreachable_toleration_seconds", 300))
