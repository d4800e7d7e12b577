"""The ReplicationController manager (core/v1): replica logic in replicas.py, a plain map selector here.

An RC without a selector selects its template's labels (the API server
defaults that), so the map below is never empty for a valid object.
"""

from __future__ import annotations

from k8py.controllers.replicas import ReplicaManagerBase


class ReplicationManager(ReplicaManagerBase):
    name = "replicationcontroller"
    group_version = "v1"
    plural = "replicationcontrollers"
    kind = "ReplicationController"

    event_source = "replication-controller"

    def selector_matches(self, owner: dict, labels: dict) -> bool:
        selector = (owner.get("spec") or {}).get("selector") or {}
        return bool(selector) and all(labels.get(k) == v for k, v in selector.items())
