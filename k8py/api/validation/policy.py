"""policy/v1 PodDisruptionBudgets (pkg/apis/policy/validation).

Upstream's PDB validation does not check metadata itself; the generic
registry then checks names as URL path segments.
"""

from __future__ import annotations

from k8py.api.validation import apps
from k8py.api.validation.field import GoValue, Path, d, invalid, is_int, not_supported, path
from k8py.api.validation.meta import validate_label_selector


def _pdb_spec(spec: dict, fld: Path) -> list:
    errs = []
    if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
        errs.append(invalid(fld, GoValue("policy.PodDisruptionBudgetSpec{...}"),
                            "minAvailable and maxUnavailable cannot be both set"))
    for key in ("minAvailable", "maxUnavailable"):
        if spec.get(key) is not None:
            errs += apps.validate_positive_int_or_percent(spec[key], fld.child(key))
            errs += apps.not_more_than_100_percent(spec[key], fld.child(key))
    errs += validate_label_selector(spec.get("selector"), fld.child("selector"))
    policy = spec.get("unhealthyPodEvictionPolicy")
    if isinstance(policy, str) and policy not in ("AlwaysAllow", "IfHealthyBudget"):
        errs.append(not_supported(fld.child("unhealthyPodEvictionPolicy"), policy, ["AlwaysAllow", "IfHealthyBudget"]))
    return errs


def validate_pdb(obj: dict) -> list:
    return _pdb_spec(d(obj.get("spec")), path("spec"))


def validate_pdb_update(new: dict, old: dict) -> list:
    return _pdb_spec(d(new.get("spec")), path("spec"))


def validate_pdb_status_update(new: dict, old: dict) -> list:
    status = d(new.get("status"))
    errs = []
    for key in ("disruptionsAllowed", "currentHealthy", "desiredHealthy", "expectedPods"):
        v = status.get(key)
        if is_int(v) and v < 0:
            errs.append(invalid(path("status", key), v, "must be greater than or equal to 0"))
    return errs


CREATE = {"PodDisruptionBudget": validate_pdb}
UPDATE = {"PodDisruptionBudget": validate_pdb_update}
STATUS_UPDATE = {"PodDisruptionBudget": validate_pdb_status_update}
