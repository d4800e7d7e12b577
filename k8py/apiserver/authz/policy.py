"""Upstream's bootstrap RBAC policy, read from bootstrap-policy.yaml.

`bootstrap_objects()` gives the ClusterRoles, ClusterRoleBindings, Roles and
RoleBindings the API server creates and reconciles at start (reconcile.py),
in the wire form `kubectl get -o yaml` shows.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import yaml

from k8py.apiserver.authz.node_rules import NODE_RULES

GROUP = "rbac.authorization.k8s.io"
API_VERSION = f"{GROUP}/v1"
AUTOUPDATE = "rbac.authorization.kubernetes.io/autoupdate"
BOOTSTRAP_LABELS = {"kubernetes.io/bootstrapping": "rbac-defaults"}
AGGREGATE_LABEL = "rbac.authorization.k8s.io/aggregate-to-{}"
CONTROLLER_PREFIX = "system:controller:"
CONTROLLER_NAMESPACE = "kube-system"

_DATA = Path(__file__).with_name("bootstrap-policy.yaml")


@functools.lru_cache(maxsize=1)
def _data() -> dict:
    return yaml.load(_DATA.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _metadata(name: str, namespace: str = "", labels: dict | None = None) -> dict:
    metadata = {"name": name, "labels": {**BOOTSTRAP_LABELS, **(labels or {})},
                "annotations": {AUTOUPDATE: "true"}}
    if namespace:
        metadata["namespace"] = namespace
    return metadata


def _rules(rules) -> list[dict]:
    return copy.deepcopy(NODE_RULES if rules == "NODE_RULES" else rules or [])


def _cluster_role(entry: dict) -> dict:
    labels = {AGGREGATE_LABEL.format(target): "true" for target in entry.get("aggregateTo") or []}
    role = {"apiVersion": API_VERSION, "kind": "ClusterRole", "metadata": _metadata(entry["name"], labels=labels),
            "rules": _rules(entry.get("rules"))}
    if entry.get("aggregate"):
        role["aggregationRule"] = {"clusterRoleSelectors": [
            {"matchLabels": {AGGREGATE_LABEL.format(entry["aggregate"]): "true"}}]}
    return role


def subject(text: str) -> dict:
    """"User:alice", "Group:system:masters", "ServiceAccount:ns/name" as an RBAC Subject."""
    kind, _, name = text.partition(":")
    if kind == "ServiceAccount":
        namespace, _, name = name.partition("/")
        return {"kind": kind, "name": name, "namespace": namespace}
    return {"apiGroup": GROUP, "kind": kind, "name": name}


def _binding(entry: dict, kind: str, role_kind: str) -> dict:
    binding = {"apiVersion": API_VERSION, "kind": kind,
               "metadata": _metadata(entry["name"], entry.get("namespace", "")),
               "roleRef": {"apiGroup": GROUP, "kind": role_kind, "name": entry["role"]}}
    subjects = [subject(s) for s in entry.get("subjects") or []]
    if subjects:
        binding["subjects"] = subjects
    return binding


def _controller_roles(data: dict) -> tuple[list[dict], list[dict]]:
    roles, bindings = [], []
    for name, rules in (data.get("controllers") or {}).items():
        full = CONTROLLER_PREFIX + name
        roles.append(_cluster_role({"name": full, "rules": rules}))
        bindings.append(_binding({"name": full, "role": full,
                                  "subjects": [f"ServiceAccount:{CONTROLLER_NAMESPACE}/{name}"]},
                                 "ClusterRoleBinding", "ClusterRole"))
    return roles, bindings


def bootstrap_objects() -> list[dict]:
    """Every bootstrap object, roles before the bindings that refer to them."""
    data = _data()
    extra = data.get("k8py") or {}
    cluster_roles = [_cluster_role(e) for e in [*data["clusterRoles"], *(extra.get("clusterRoles") or [])]]
    cluster_bindings = [_binding(e, "ClusterRoleBinding", "ClusterRole")
                        for e in [*data["clusterRoleBindings"], *(extra.get("clusterRoleBindings") or [])]]
    controller_roles, controller_bindings = _controller_roles(data)
    roles = [{"apiVersion": API_VERSION, "kind": "Role", "metadata": _metadata(e["name"], e["namespace"]),
              "rules": _rules(e.get("rules"))} for e in [*data.get("roles", []), *extra.get("roles", [])]]
    role_bindings = [_binding(e, "RoleBinding", "Role")
                     for e in [*data.get("roleBindings", []), *extra.get("roleBindings", [])]]
    return [*cluster_roles, *controller_roles, *roles, *cluster_bindings, *controller_bindings, *role_bindings]


def dns_user() -> str:
    """The user the in-server cluster DNS authenticates as."""
    return (_data().get("k8py") or {}).get("dnsUser", "system:coredns")
