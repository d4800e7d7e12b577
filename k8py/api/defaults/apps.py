"""apps/v1 defaults (pkg/apis/apps/v1/defaults.go). Templates get pod-spec
defaults but not the Pod-only ones (requests from limits, enableServiceLinks)."""

from __future__ import annotations

from k8py.api.defaults.core import _dicts, _ensure, default_pod_template, default_pvc_spec, empty_template_metadata


def _template(spec: dict) -> None:
    template = _ensure(spec, "template")
    if template is not None:
        default_pod_template(template)


def _revision_history(spec: dict) -> None:
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10


def default_deployment(obj: dict) -> None:
    spec = _ensure(obj, "spec")
    if spec is None:
        return
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    strategy = _ensure(spec, "strategy")
    if strategy is not None:
        if not strategy.get("type"):
            strategy["type"] = "RollingUpdate"
        if strategy["type"] == "RollingUpdate":
            rolling = _ensure(strategy, "rollingUpdate")
            if rolling is not None:
                rolling.setdefault("maxUnavailable", "25%")
                rolling.setdefault("maxSurge", "25%")
                for key in ("maxUnavailable", "maxSurge"):
                    if rolling[key] is None:
                        rolling[key] = "25%"
    _revision_history(spec)
    if spec.get("progressDeadlineSeconds") is None:
        spec["progressDeadlineSeconds"] = 600
    _template(spec)


def default_replica_set(obj: dict) -> None:
    spec = _ensure(obj, "spec")
    if spec is None:
        return
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    _template(spec)


def default_stateful_set(obj: dict) -> None:
    spec = _ensure(obj, "spec")
    if spec is None:
        return
    if not spec.get("podManagementPolicy"):
        spec["podManagementPolicy"] = "OrderedReady"
    strategy = _ensure(spec, "updateStrategy")
    if strategy is not None:
        if not strategy.get("type"):
            strategy["type"] = "RollingUpdate"
            if strategy.get("rollingUpdate") is None:
                strategy["rollingUpdate"] = {}
        rolling = strategy.get("rollingUpdate")
        if strategy["type"] == "RollingUpdate" and isinstance(rolling, dict) and rolling.get("partition") is None:
            rolling["partition"] = 0
    retention = _ensure(spec, "persistentVolumeClaimRetentionPolicy")
    if retention is not None:
        for key in ("whenDeleted", "whenScaled"):
            if not retention.get(key):
                retention[key] = "Retain"
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    _revision_history(spec)
    _template(spec)
    for claim in _dicts(spec.get("volumeClaimTemplates")):
        # embedded PersistentVolumeClaims carry their type and get PVC defaults
        claim.setdefault("apiVersion", "v1")
        claim.setdefault("kind", "PersistentVolumeClaim")
        empty_template_metadata(claim)
        default_pvc_spec(_ensure(claim, "spec"))
        status = _ensure(claim, "status")
        if status is not None and not status.get("phase"):
            status["phase"] = "Pending"


def default_daemon_set(obj: dict) -> None:
    spec = _ensure(obj, "spec")
    if spec is None:
        return
    strategy = _ensure(spec, "updateStrategy")
    if strategy is not None:
        if not strategy.get("type"):
            strategy["type"] = "RollingUpdate"
        if strategy["type"] == "RollingUpdate":
            rolling = _ensure(strategy, "rollingUpdate")
            if rolling is not None:
                if rolling.get("maxUnavailable") is None:
                    rolling["maxUnavailable"] = 1
                if rolling.get("maxSurge") is None:
                    rolling["maxSurge"] = 0
    _revision_history(spec)
    _template(spec)


DEFAULTERS = {
    "Deployment": default_deployment,
    "ReplicaSet": default_replica_set,
    "StatefulSet": default_stateful_set,
    "DaemonSet": default_daemon_set,
}
