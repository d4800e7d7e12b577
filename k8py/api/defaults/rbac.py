"""rbac.authorization.k8s.io/v1 defaults (pkg/apis/rbac/v1/defaults.go)."""

from __future__ import annotations

from k8py.api.defaults.core import _dicts

GROUP = "rbac.authorization.k8s.io"


def default_binding(obj: dict) -> None:
    ref = obj.get("roleRef")
    if isinstance(ref, dict) and not ref.get("apiGroup"):
        ref["apiGroup"] = GROUP
    for subject in _dicts(obj.get("subjects")):
        if not subject.get("apiGroup"):
            if subject.get("kind") == "ServiceAccount":
                subject["apiGroup"] = ""
            elif subject.get("kind") in ("User", "Group"):
                subject["apiGroup"] = GROUP


DEFAULTERS = {"RoleBinding": default_binding, "ClusterRoleBinding": default_binding}
