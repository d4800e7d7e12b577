"""coordination.k8s.io/v1 Leases."""

from __future__ import annotations

from k8py.api.validation import names
from k8py.api.validation.field import Path, d, invalid, is_int, path
from k8py.api.validation.meta import validate_object_meta, validate_object_meta_update


def _lease_spec(spec: dict, fld: Path) -> list:
    errs = []
    duration = spec.get("leaseDurationSeconds")
    if is_int(duration) and duration <= 0:
        errs.append(invalid(fld.child("leaseDurationSeconds"), duration, "must be greater than 0"))
    transitions = spec.get("leaseTransitions")
    if is_int(transitions) and transitions < 0:
        errs.append(invalid(fld.child("leaseTransitions"), transitions, "must be greater than or equal to 0"))
    return errs


def validate_lease(obj: dict) -> list:
    errs = validate_object_meta(obj, True, names.name_is_dns_subdomain)
    return errs + _lease_spec(d(obj.get("spec")), path("spec"))


def validate_lease_update(new: dict, old: dict) -> list:
    errs = validate_object_meta_update(new, old)
    return errs + _lease_spec(d(new.get("spec")), path("spec"))


CREATE = {"Lease": validate_lease}
UPDATE = {"Lease": validate_lease_update}
STATUS_UPDATE: dict = {}
