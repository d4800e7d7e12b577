"""The ReplicaSet controller (apps/v1): replica logic in replicas.py, a LabelSelector here."""

from __future__ import annotations

from k8py.apimachinery.selectors import selector_from_label_selector
from k8py.controllers.replicas import ReplicaManagerBase


class ReplicaSetController(ReplicaManagerBase):
    name = "replicaset"
    group_version = "apps/v1"
    plural = "replicasets"
    kind = "ReplicaSet"

    def selector_matches(self, owner: dict, labels: dict) -> bool:
        spec = (owner.get("spec") or {}).get("selector")
        selector = selector_from_label_selector(spec)
        # an empty selector would claim every pod in the namespace: upstream refuses it
        return selector is not None and not selector.empty() and selector.matches(labels)

    def label_matcher(self, owner: dict):
        selector = selector_from_label_selector((owner.get("spec") or {}).get("selector"))
        if selector is None or selector.empty():
            return lambda labels: False
        return selector.matches
