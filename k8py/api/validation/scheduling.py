"""scheduling.k8s.io/v1 PriorityClasses (pkg/apis/scheduling/validation)."""

from __future__ import annotations

from k8py.api.validation import names, pods
from k8py.api.validation.field import d, forbidden, invalid, is_int, path, s
from k8py.api.validation.meta import validate_object_meta, validate_object_meta_update

HIGHEST_USER_PRIORITY = 1000000000
SYSTEM_PRIORITY_CLASSES = {"system-node-critical": 2000001000, "system-cluster-critical": 2000000000}



def validate_priority_class(obj: dict) -> list:
    errs = validate_object_meta(obj, False, names.name_is_dns_subdomain, kube_finalizers=False)
    name = s(d(obj.get("metadata")).get("name"))
    value = obj.get("value")
    if name.startswith("system-"):
        problem = ""
        if name not in SYSTEM_PRIORITY_CLASSES:
            problem = f"{name} is not a known system priority class"
        elif value != SYSTEM_PRIORITY_CLASSES[name]:
            problem = f"value of {name} PriorityClass must be {SYSTEM_PRIORITY_CLASSES[name]}"
        elif obj.get("globalDefault") is True:
            problem = f"globalDefault of {name} PriorityClass must be false"
        if problem:
            errs.append(forbidden(path("metadata", "name"), "priority class names with 'system-' prefix are reserved "
                                                            f"for system use only. error: {problem}"))
    elif is_int(value) and value > HIGHEST_USER_PRIORITY:
        errs.append(forbidden(path("value"), f"maximum allowed value of a user defined priority is {HIGHEST_USER_PRIORITY}"))
    if isinstance(obj.get("preemptionPolicy"), str):
        errs += pods.validate_preemption_policy(obj["preemptionPolicy"], path("preemptionPolicy"))
    return errs


def validate_priority_class_update(new: dict, old: dict) -> list:
    errs = validate_object_meta_update(new, old, kube_finalizers=False)
    if new.get("value") != old.get("value"):
        errs.append(forbidden(path("value"), "may not be changed in an update."))
    if new.get("preemptionPolicy") != old.get("preemptionPolicy"):
        errs.append(invalid(path("preemptionPolicy"), new.get("preemptionPolicy"), "field is immutable"))
    return errs


CREATE = {"PriorityClass": validate_priority_class}
UPDATE = {"PriorityClass": validate_priority_class_update}
STATUS_UPDATE: dict = {}
