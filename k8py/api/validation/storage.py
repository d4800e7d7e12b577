"""storage.k8s.io/v1: StorageClasses, CSIDrivers, CSINodes, VolumeAttachments."""

from __future__ import annotations

from k8py.api.validation import names, pods
from k8py.api.validation.field import (Path, d, dicts, forbidden, invalid, lst, not_supported, path, required, s,
                                       strmap, too_long)
from k8py.api.validation.meta import (validate_object_meta, validate_object_meta_update, validate_qualified_name)

MAX_PARAMETERS = 512
MAX_PARAMETERS_SIZE = 256 * 1024


def _parameters(params, fld: Path) -> list:
    params = strmap(params)
    if len(params) > MAX_PARAMETERS:
        return [too_long(fld, MAX_PARAMETERS)]
    errs = []
    total = 0
    for k, v in params.items():
        if not k:
            errs.append(invalid(fld, k, "field can not be empty."))
        total += len(k) + len(v)
    if total > MAX_PARAMETERS_SIZE:
        errs.append(too_long(fld, MAX_PARAMETERS_SIZE))
    return errs


def validate_storage_class(obj: dict) -> list:
    errs = validate_object_meta(obj, False, names.name_is_dns_subdomain)
    provisioner = s(obj.get("provisioner"))
    if not provisioner:
        errs.append(required(path("provisioner")))
    else:
        errs += validate_qualified_name(provisioner.lower(), path("provisioner"))
    errs += _parameters(obj.get("parameters"), path("parameters"))
    policy = obj.get("reclaimPolicy")
    if isinstance(policy, str) and policy and policy not in ("Delete", "Retain"):
        errs.append(not_supported(path("reclaimPolicy"), policy, ["Delete", "Retain"]))
    mode = obj.get("volumeBindingMode")
    if mode is None:
        errs.append(required(path("volumeBindingMode")))
    elif s(mode) not in ("Immediate", "WaitForFirstConsumer"):
        errs.append(not_supported(path("volumeBindingMode"), s(mode), ["Immediate", "WaitForFirstConsumer"]))
    topologies = obj.get("allowedTopologies")
    for n, term in dicts(topologies):
        tp = path("allowedTopologies").index(n)
        keys: set = set()
        for k, expr in dicts(term.get("matchLabelExpressions")):
            ep = tp.child("matchLabelExpressions").index(k)
            values = [s(v) for v in lst(expr.get("values"))]
            if not values:
                errs.append(required(ep.child("values")))
            seen: set = set()
            for m, v in enumerate(values):
                if v in seen:
                    from k8py.api.validation.field import duplicate
                    errs.append(duplicate(ep.child("values").index(m), v))
                seen.add(v)
            key = s(expr.get("key"))
            errs += [invalid(ep.child("key"), key, msg) for msg in names.is_qualified_name(key)]
            if key in keys:
                from k8py.api.validation.field import duplicate
                errs.append(duplicate(ep.child("key"), key))
            keys.add(key)
    return errs


def validate_storage_class_update(new: dict, old: dict) -> list:
    errs = validate_object_meta_update(new, old)
    if strmap(new.get("parameters")) != strmap(old.get("parameters")):
        errs.append(forbidden(path("parameters"), "updates to parameters are forbidden."))
    if s(new.get("provisioner")) != s(old.get("provisioner")):
        errs.append(forbidden(path("provisioner"), "updates to provisioner are forbidden."))
    if s(new.get("reclaimPolicy")) != s(old.get("reclaimPolicy")):
        errs.append(forbidden(path("reclaimPolicy"), "updates to reclaimPolicy are forbidden."))
    if new.get("volumeBindingMode") != old.get("volumeBindingMode"):
        errs.append(invalid(path("volumeBindingMode"), new.get("volumeBindingMode"), "field is immutable"))
    return errs


def validate_csi_driver(obj: dict) -> list:
    errs = validate_object_meta(obj, False, lambda name, prefix: [])
    errs += pods.validate_csi_driver_name(s(d(obj.get("metadata")).get("name")), path("name"))
    spec = d(obj.get("spec"))
    if spec.get("attachRequired") is None:
        errs.append(required(path("spec", "attachRequired")))
    if spec.get("podInfoOnMount") is None:
        errs.append(required(path("spec", "podInfoOnMount")))
    for n, mode in enumerate(lst(spec.get("volumeLifecycleModes"))):
        if mode not in ("Persistent", "Ephemeral"):
            errs.append(not_supported(path("spec", "volumeLifecycleModes"), s(mode), ["Ephemeral", "Persistent"]))
    return errs


def validate_csi_driver_update(new: dict, old: dict) -> list:
    errs = validate_csi_driver(new) + validate_object_meta_update(new, old)
    ns, os_ = d(new.get("spec")), d(old.get("spec"))
    for key in ("attachRequired", "podInfoOnMount", "volumeLifecycleModes", "fsGroupPolicy"):
        if ns.get(key) != os_.get(key):
            errs.append(invalid(path("spec").child(key), ns.get(key), "field is immutable"))
    return errs


def validate_csi_node(obj: dict) -> list:
    errs = validate_object_meta(obj, False, names.name_is_dns_subdomain)
    seen: set = set()
    for n, drv in dicts(d(obj.get("spec")).get("drivers")):
        dp = path("spec", "drivers").index(n)
        name = s(drv.get("name"))
        errs += pods.validate_csi_driver_name(name, dp.child("name"))
        if name in seen:
            from k8py.api.validation.field import duplicate
            errs.append(duplicate(dp.child("name"), name))
        seen.add(name)
        if not s(drv.get("nodeID")):
            errs.append(required(dp.child("nodeID"), "nodeID of the driver must be provided"))
    return errs


def validate_csi_node_update(new: dict, old: dict) -> list:
    return validate_csi_node(new) + validate_object_meta_update(new, old)


def validate_volume_attachment(obj: dict) -> list:
    errs = validate_object_meta(obj, False, names.name_is_dns_subdomain)
    spec = d(obj.get("spec"))
    errs += pods.validate_csi_driver_name(s(spec.get("attacher")), path("spec", "attacher"))
    source = d(spec.get("source"))
    if not s(spec.get("nodeName")):
        errs.append(required(path("spec", "nodeName")))
    if not source.get("persistentVolumeName") and not source.get("inlineVolumeSpec"):
        errs.append(required(path("spec", "source"), "must specify exactly one of inlineVolumeSpec and persistentVolumeName"))
    return errs


def validate_volume_attachment_update(new: dict, old: dict) -> list:
    errs = validate_volume_attachment(new) + validate_object_meta_update(new, old)
    if d(new.get("spec")) != d(old.get("spec")):
        errs.append(invalid(path("spec"), d(new.get("spec")) and None, "field is immutable"))
    return errs


CREATE = {"StorageClass": validate_storage_class, "CSIDriver": validate_csi_driver, "CSINode": validate_csi_node,
          "VolumeAttachment": validate_volume_attachment}
UPDATE = {"StorageClass": validate_storage_class_update, "CSIDriver": validate_csi_driver_update,
          "CSINode": validate_csi_node_update, "VolumeAttachment": validate_volume_attachment_update}
STATUS_UPDATE: dict = {}
