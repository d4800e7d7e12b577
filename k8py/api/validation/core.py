"""The core ("") group: every kind but Pod and Service, which have their own modules."""

from __future__ import annotations

import base64
import binascii
import json
import posixpath

from k8py.api.validation import names, pods, services
from k8py.apimachinery import quantity
from k8py.api.validation.field import (GoValue, Path, d, dicts, duplicate, forbidden, go_quote, go_string_map,
                                       i, invalid, lst, not_supported, path, required, s, strmap,
                                       too_long)
from k8py.api.validation.meta import (FIELD_IMMUTABLE, map_selector_matches,
                                      validate_immutable, validate_kube_finalizer_name, validate_label_name,
                                      validate_nonnegative, validate_object_meta,
                                      validate_object_meta_update, validate_qualified_name)
from k8py.api.validation.pods import PodOptions

MAX_SECRET_SIZE = 1024 * 1024
SA_NAME_ANNOTATION = "kubernetes.io/service-account.name"
BETA_STORAGE_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"
RECLAIM_POLICIES = ["Delete", "Recycle", "Retain"]


def _data_size(value) -> int:
    """Length of a base64 `[]byte` value once decoded."""
    if not isinstance(value, str):
        return 0
    try:
        return len(base64.b64decode(value, validate=False))
    except (binascii.Error, ValueError):
        return len(value)


# ---- pod templates and replication controllers ------------------------------------

def validate_pod_template(obj: dict) -> list:
    errs = validate_object_meta(obj, True, names.name_is_dns_subdomain)
    return errs + pods.validate_pod_template_spec(obj.get("template"), path("template"))


def validate_pod_template_update(new: dict, old: dict) -> list:
    errs = validate_object_meta_update(new, old)
    return errs + pods.validate_pod_template_spec(new.get("template"), path("template"))


def _rc_spec(spec: dict, fld: Path) -> list:
    errs = validate_nonnegative(spec.get("minReadySeconds"), fld.child("minReadySeconds"))
    selector = strmap(spec.get("selector"))
    if not selector:
        errs.append(required(fld.child("selector")))
    errs += validate_nonnegative(spec.get("replicas"), fld.child("replicas"))
    template = spec.get("template")
    tp = fld.child("template")
    if not isinstance(template, dict):
        errs.append(required(tp))
        return errs
    labels = d(template.get("metadata")).get("labels")
    if selector and not map_selector_matches(selector, labels):
        errs.append(invalid(tp.child("metadata", "labels"), GoValue(go_string_map(strmap(labels) if labels is not None
                                                                                  else None)),
                            "`selector` does not match template `labels`"))
    errs += pods.validate_pod_template_spec(template, tp)
    tspec = d(template.get("spec"))
    rp = s(tspec.get("restartPolicy"))
    if rp != "Always":
        errs.append(not_supported(tp.child("spec", "restartPolicy"), rp, ["Always"]))
    if tspec.get("activeDeadlineSeconds") is not None:
        errs.append(forbidden(tp.child("spec", "activeDeadlineSeconds"),
                              "activeDeadlineSeconds in ReplicationController is not Supported"))
    return errs


def validate_rc(obj: dict) -> list:
    errs = validate_object_meta(obj, True, names.name_is_dns_subdomain)
    return errs + _rc_spec(d(obj.get("spec")), path("spec"))


def validate_rc_update(new: dict, old: dict) -> list:
    return validate_object_meta_update(new, old) + _rc_spec(d(new.get("spec")), path("spec"))


def validate_replica_status(status: dict, fld: Path, extra: tuple = ("fullyLabeledReplicas",)) -> list:
    errs = []
    for key in ("replicas",) + extra + ("readyReplicas", "availableReplicas", "observedGeneration"):
        errs += validate_nonnegative(status.get(key), fld.child(key))
    replicas = i(status.get("replicas"))
    msg = "cannot be greater than status.replicas"
    for key in extra + ("readyReplicas", "availableReplicas"):
        if i(status.get(key)) > replicas:
            errs.append(invalid(fld.child(key), i(status.get(key)), msg))
    if i(status.get("availableReplicas")) > i(status.get("readyReplicas")):
        errs.append(invalid(fld.child("availableReplicas"), i(status.get("availableReplicas")),
                            "cannot be greater than readyReplicas"))
    return errs


def validate_rc_status_update(new: dict, old: dict) -> list:
    return validate_object_meta_update(new, old) + validate_replica_status(d(new.get("status")), path("status"))


# ---- config maps and secrets ------------------------------------------------------

def validate_config_map(obj: dict) -> list:
    errs = validate_object_meta(obj, True, names.name_is_dns_subdomain)
    data, binary = d(obj.get("data")), d(obj.get("binaryData"))
    total = 0
    for key, value in data.items():
        errs += [invalid(path("data").key(key), key, m) for m in names.is_config_map_key(key)]
        if key in binary:
            errs.append(invalid(path("data").key(key), key, "duplicate of key present in binaryData"))
        total += len(value.encode()) if isinstance(value, str) else 0
    for key, value in binary.items():
        errs += [invalid(path("binaryData").key(key), key, m) for m in names.is_config_map_key(key)]
        total += _data_size(value)
    if total > MAX_SECRET_SIZE:
        errs.append(too_long(path(""), MAX_SECRET_SIZE))
    return errs


def _immutable_data(new: dict, old: dict, keys: tuple) -> list:
    errs = []
    if old.get("immutable") is True:
        if new.get("immutable") is not True:
            errs.append(forbidden(path("immutable"), "field is immutable when `immutable` is set"))
        for key in keys:
            if (new.get(key) or None) != (old.get(key) or None):
                errs.append(forbidden(path(key), "field is immutable when `immutable` is set"))
    return errs


def validate_config_map_update(new: dict, old: dict) -> list:
    errs = validate_object_meta_update(new, old)
    errs += _immutable_data(new, old, ("data", "binaryData"))
    return errs + validate_config_map(new)


def _json_error(raw) -> str:
    try:
        json.loads(base64.b64decode(s(raw)))
    except (ValueError, binascii.Error) as err:
        return str(err)
    return ""


def validate_secret(obj: dict) -> list:
    errs = validate_object_meta(obj, True, names.name_is_dns_subdomain)
    data = d(obj.get("data"))
    dp = path("data")
    total = 0
    for key, value in data.items():
        errs += [invalid(dp.key(key), key, m) for m in names.is_config_map_key(key)]
        total += _data_size(value)
    if total > MAX_SECRET_SIZE:
        errs.append(too_long(dp, MAX_SECRET_SIZE))
    secret_type = s(obj.get("type"))
    ann = strmap(d(obj.get("metadata")).get("annotations"))
    if secret_type == "kubernetes.io/service-account-token":
        if not ann.get(SA_NAME_ANNOTATION):
            errs.append(required(path("metadata", "annotations").key(SA_NAME_ANNOTATION)))
    elif secret_type in ("kubernetes.io/dockercfg", "kubernetes.io/dockerconfigjson"):
        key = ".dockercfg" if secret_type == "kubernetes.io/dockercfg" else ".dockerconfigjson"
        if key not in data:
            errs.append(required(dp.key(key)))
        else:
            problem = _json_error(data[key])
            if problem:
                errs.append(invalid(dp.key(key), "<secret contents redacted>", problem))
    elif secret_type == "kubernetes.io/basic-auth":
        if "username" not in data and "password" not in data:
            errs += [required(dp.key("username")), required(dp.key("password"))]
    elif secret_type == "kubernetes.io/ssh-auth":
        if not _data_size(data.get("ssh-privatekey")):
            errs.append(required(dp.key("ssh-privatekey")))
    elif secret_type == "kubernetes.io/tls":
        for key in ("tls.crt", "tls.key"):
            if key not in data:
                errs.append(required(dp.key(key)))
    return errs


def validate_secret_update(new: dict, old: dict) -> list:
    errs = validate_object_meta_update(new, old)
    errs += validate_immutable(s(new.get("type")), s(old.get("type")), path("type"))
    errs += _immutable_data(new, old, ("data",))
    return errs + validate_secret(new)


def validate_service_account(obj: dict) -> list:
    return validate_object_meta(obj, True, names.name_is_dns_subdomain)


def validate_service_account_update(new: dict, old: dict) -> list:
    return validate_object_meta_update(new, old) + validate_service_account(new)


# ---- namespaces and nodes -----------------------------------------------------------

def _finalizer_name(value: str, fld: Path) -> list:
    return validate_qualified_name(value, fld) + validate_kube_finalizer_name(value, fld)


def validate_namespace(obj: dict) -> list:
    errs = validate_object_meta(obj, False, names.name_is_dns_label)
    for f in lst(d(obj.get("spec")).get("finalizers")):
        errs += _finalizer_name(s(f), path("spec", "finalizers"))
    return errs


def validate_namespace_update(new: dict, old: dict) -> list:
    return validate_object_meta_update(new, old)


def validate_namespace_status_update(new: dict, old: dict) -> list:
    errs = validate_object_meta_update(new, old)
    phase = s(d(new.get("status")).get("phase"))
    if not d(new.get("metadata")).get("deletionTimestamp"):
        if phase != "Active":
            errs.append(invalid(path("status", "Phase"), phase, "may only be 'Active' if `deletionTimestamp` is empty"))
    elif phase != "Terminating":
        errs.append(invalid(path("status", "Phase"), phase,
                            "may only be 'Terminating' if `deletionTimestamp` is not empty"))
    return errs


def _node_taints(taints, fld: Path) -> list:
    errs = []
    seen: dict = {}
    for n, taint in enumerate(lst(taints)):
        taint = d(taint)
        p = fld.index(n)
        key, value, effect = s(taint.get("key")), s(taint.get("value")), s(taint.get("effect"))
        errs += validate_label_name(key, p.child("key"))
        msgs = names.is_valid_label_value(value)
        if msgs:
            errs.append(invalid(p.child("value"), value, ";".join(msgs)))
        if not effect:
            errs.append(required(p.child("effect")))
        elif effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            errs.append(not_supported(p.child("effect"), effect, ["NoSchedule", "PreferNoSchedule", "NoExecute"]))
        if key in seen.get(effect, set()):
            shown = GoValue("core.Taint{Key:%s, Value:%s, Effect:%s, TimeAdded:<nil>}"
                            % (go_quote(key), go_quote(value), go_quote(effect)))
            cause = duplicate(p, shown)
            cause.message += ": taints must be unique by key and effect pair"
            errs.append(cause)
            continue
        seen.setdefault(effect, set()).add(key)
    return errs


def _node_resources(node: dict) -> list:
    errs = []
    status = d(node.get("status"))
    for key in ("capacity", "allocatable"):
        for name, raw in d(status.get(key)).items():
            errs += pods.validate_resource_quantity_value(name, raw, path("status", key, name))
    return errs


def validate_node(obj: dict) -> list:
    errs = validate_object_meta(obj, False, names.name_is_dns_subdomain)
    spec = d(obj.get("spec"))
    errs += _node_taints(spec.get("taints"), path("metadata", "taints"))
    errs += _node_resources(obj)
    cidrs = [s(c) for c in lst(spec.get("podCIDRs"))]
    fld = path("spec", "podCIDRs")
    for n, cidr in enumerate(cidrs):
        if names.parse_cidr(cidr) is None:
            errs.append(invalid(fld.index(n), cidr, "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"))
    if len(cidrs) > 1:
        nets = [names.parse_cidr(c) for c in cidrs]
        if len(cidrs) > 2 or None in nets or nets[0].version == nets[1].version:
            errs.append(invalid(fld, cidrs, "may specify no more than one CIDR for each IP family"))
        seen: set = set()
        for n, cidr in enumerate(cidrs):
            if cidr in seen:
                errs.append(duplicate(fld.index(n), cidr))
            seen.add(cidr)
    return errs


def validate_node_update(new: dict, old: dict) -> list:
    errs = validate_object_meta_update(new, old)
    errs += _node_resources(new)
    ns, os_ = d(new.get("spec")), d(old.get("spec"))
    seen: list = []
    for n, addr in enumerate(lst(d(new.get("status")).get("addresses"))):
        if addr in seen:
            addr = d(addr)
            errs.append(duplicate(path("status", "addresses").index(n),
                                  GoValue("core.NodeAddress{Type:%s, Address:%s}"
                                          % (go_quote(s(addr.get("type"))), go_quote(s(addr.get("address")))))))
        seen.append(addr)
    old_cidrs, new_cidrs = lst(os_.get("podCIDRs")), lst(ns.get("podCIDRs"))
    if old_cidrs:
        msg = 'node updates may not change podCIDR except from "" to valid'
        if len(old_cidrs) != len(new_cidrs):
            errs.append(forbidden(path("spec", "podCIDRs"), msg))
        else:
            errs += [forbidden(path("spec", "podCIDRs"), msg) for n, c in enumerate(old_cidrs) if c != new_cidrs[n]]
    if s(os_.get("providerID")) and s(os_.get("providerID")) != s(ns.get("providerID")):
        errs.append(forbidden(path("spec", "providerID"), 'node updates may not change providerID except from "" to valid'))
    errs += _node_taints(ns.get("taints"), path("metadata", "taints"))
    if s(ns.get("externalID")) != s(os_.get("externalID")):
        errs.append(forbidden(path("spec", "externalID"), "may not be updated"))
    return errs


# ---- persistent volumes and claims -------------------------------------------------

_PV_SOURCES = ["hostPath", "gcePersistentDisk", "awsElasticBlockStore", "glusterfs", "flocker", "nfs", "rbd",
               "quobyte", "cephfs", "iscsi", "cinder", "fc", "flexVolume", "azureFile", "vsphereVolume",
               "photonPersistentDisk", "portworxVolume", "azureDisk", "scaleIO", "local", "storageos", "csi"]
_PV_BUSY_NAMES = {"cephfs": "cephFS"}


def _pv_source(key: str, src: dict, fld: Path, pv_name: str) -> list:
    if key == "local":
        if not s(src.get("path")):
            return [required(fld.child("path"))]
        return pods._no_backsteps(s(src["path"]), fld.child("path"))
    if key == "csi":
        errs = pods.validate_csi_driver_name(s(src.get("driver")), fld.child("driver"))
        if not s(src.get("volumeHandle")):
            errs.append(required(fld.child("volumeHandle")))
        for ref_key in ("controllerPublishSecretRef", "controllerExpandSecretRef", "nodePublishSecretRef",
                        "nodeExpandSecretRef"):
            ref = src.get(ref_key)
            if not isinstance(ref, dict):
                continue
            rp = fld.child(ref_key)
            if not s(ref.get("name")):
                errs.append(required(rp.child("name")))
            else:
                errs += [invalid(rp.child("name"), s(ref["name"]), m) for m in names.is_dns1123_subdomain(s(ref["name"]))]
            if not s(ref.get("namespace")):
                errs.append(required(rp.child("namespace")))
            else:
                errs += [invalid(rp.child("namespace"), s(ref["namespace"]), m)
                         for m in names.is_dns1123_label(s(ref["namespace"]))]
        return errs
    if key == "glusterfs":
        errs = pods._required_fields(src, fld, "endpoints", "path")
        ens = src.get("endpointsNamespace")
        if isinstance(ens, str):
            if not ens:
                errs.append(invalid(fld.child("endpointsNamespace"), ens,
                                    "if the endpointnamespace is set, it must be a valid namespace name"))
            else:
                errs += [invalid(fld.child("endpointsNamespace"), ens, m) for m in names.name_is_dns_label(ens, False)]
        return errs
    if key == "iscsi":
        errs = pods._required_fields(src, fld, "targetPortal")
        if src.get("initiatorName") is not None and len(pv_name + ":" + s(src.get("targetPortal"))) > 64:
            errs.append(invalid(fld.child("targetportal"), s(src.get("targetPortal")),
                                "Total length of <volume name>:<iscsi.targetPortal> must be under 64 characters if "
                                "iscsi.initiatorName is specified."))
        return errs + pods._required_fields(src, fld, "iqn")
    return pods._validate_one_source(key, src, fld, "", None, PodOptions())


def validate_pv_spec(spec: dict, pv_name: str, fld: Path) -> list:
    errs = []
    modes = lst(spec.get("accessModes"))
    if not modes:
        errs.append(required(fld.child("accessModes")))
    errs += pods.validate_access_modes(modes, fld.child("accessModes"))
    capacity = d(spec.get("capacity"))
    if not capacity:
        errs.append(required(fld.child("capacity")))
    if "storage" not in capacity or len(capacity) > 1:
        errs.append(not_supported(fld.child("capacity"), GoValue(_go_resource_list(capacity)), ["storage"]))
    for name, raw in capacity.items():
        p = fld.child("capacity").key(name)
        q = quantity.try_parse(raw)
        if q is not None and q.value < 0:
            errs.append(invalid(p, int(q.value), "must be a valid resource quantity"))
        errs += pods.validate_positive_quantity(raw, p)
    policy = s(spec.get("persistentVolumeReclaimPolicy"))
    if policy and policy not in RECLAIM_POLICIES:
        errs.append(not_supported(fld.child("persistentVolumeReclaimPolicy"), policy, RECLAIM_POLICIES))
    affinity = spec.get("nodeAffinity")
    affinity_set = False
    if isinstance(affinity, dict):
        affinity_set = True
        if isinstance(affinity.get("required"), dict):
            errs += pods.validate_node_selector(affinity["required"], fld.child("nodeAffinity", "required"))
        else:
            errs.append(required(fld.child("nodeAffinity", "required"), "must specify required node constraints"))
    count = 0
    for key in _PV_SOURCES:
        src = spec.get(key)
        if not isinstance(src, dict):
            continue
        if count > 0 and key != "flexVolume":
            errs.append(forbidden(fld.child(_PV_BUSY_NAMES.get(key, key)), "may not specify more than 1 volume type"))
            continue
        count += 1
        own = {"gcePersistentDisk": "persistentDisk"}.get(key, key)
        errs += _pv_source(key, src, fld.child(own), pv_name)
        if key == "local" and not affinity_set:
            errs.append(required(fld.child("nodeAffinity"), "Local volume requires node affinity"))
    if count == 0:
        errs.append(required(fld, "must specify a volume type"))
    host_path = spec.get("hostPath")
    if isinstance(host_path, dict) and posixpath.normpath(s(host_path.get("path")) or ".") == "/" \
            and policy == "Recycle":
        errs.append(forbidden(fld.child("persistentVolumeReclaimPolicy"), "may not be 'recycle' for a hostPath mount of '/'"))
    sc = s(spec.get("storageClassName"))
    if sc:
        errs += [invalid(fld.child("storageClassName"), sc, m) for m in names.name_is_dns_subdomain(sc, False)]
    mode = spec.get("volumeMode")
    if isinstance(mode, str) and mode not in pods.VOLUME_MODES:
        errs.append(not_supported(fld.child("volumeMode"), mode, pods.VOLUME_MODES))
    return errs


def _go_resource_list(rl: dict) -> str:
    if not rl:
        return "core.ResourceList(nil)"
    items = ", ".join(f"{go_quote(k)}:{{{s(str(quantity.canonical_text(v)))}}}" for k, v in sorted(rl.items()))
    return "core.ResourceList{" + items + "}"


def validate_pv(obj: dict) -> list:
    name = s(d(obj.get("metadata")).get("name"))
    errs = validate_object_meta(obj, False, names.name_is_dns_subdomain)
    return errs + validate_pv_spec(d(obj.get("spec")), name, path("spec"))


def validate_pv_update(new: dict, old: dict) -> list:
    errs = validate_pv(new)
    ns, os_ = d(new.get("spec")), d(old.get("spec"))
    new_src = {k: ns.get(k) for k in _PV_SOURCES if ns.get(k) is not None}
    old_src = {k: os_.get(k) for k in _PV_SOURCES if os_.get(k) is not None}
    if isinstance(new_src.get("csi"), dict) and isinstance(old_src.get("csi"), dict) \
            and "controllerExpandSecretRef" not in old_src["csi"]:
        new_src["csi"] = {k: v for k, v in new_src["csi"].items() if k != "controllerExpandSecretRef"}
    if new_src != old_src:
        errs.append(forbidden(path("spec", "persistentvolumesource"),
                              "spec.persistentvolumesource is immutable after creation\n" + _diff(old_src, new_src)))
    errs += validate_immutable(ns.get("volumeMode"), os_.get("volumeMode"), path("volumeMode"))
    if os_.get("nodeAffinity") is not None and ns.get("nodeAffinity") != os_.get("nodeAffinity"):
        errs.append(invalid(path("nodeAffinity"), GoValue("&core.VolumeNodeAffinity{...}"),
                            FIELD_IMMUTABLE + ", except for updating from beta label to GA"))
    return errs


def _diff(old: dict, new: dict) -> str:
    lines = []
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            lines.append(f"-\t{key}: {old.get(key)!r}")
            lines.append(f"+\t{key}: {new.get(key)!r}")
    return "\n".join(lines)


def validate_pv_status_update(new: dict, old: dict) -> list:
    return validate_object_meta_update(new, old)


def validate_pvc(obj: dict) -> list:
    errs = validate_object_meta(obj, True, names.name_is_dns_subdomain)
    return errs + pods.validate_pvc_spec(d(obj.get("spec")), path("spec"))


def validate_pvc_update(new: dict, old: dict) -> list:
    errs = validate_object_meta_update(new, old)
    errs += validate_pvc(new)
    ns, os_ = dict(d(new.get("spec"))), dict(d(old.get("spec")))
    na = strmap(d(new.get("metadata")).get("annotations"))
    oa = strmap(d(old.get("metadata")).get("annotations"))
    if not s(os_.get("volumeName")):
        os_["volumeName"] = ns.get("volumeName")
        if os_["volumeName"] is None:
            os_.pop("volumeName")
    old_sc, new_sc = os_.get("storageClassName"), ns.get("storageClassName")
    upgrade = (BETA_STORAGE_CLASS_ANNOTATION in oa and old_sc is None and isinstance(new_sc, str)
               and new_sc == oa[BETA_STORAGE_CLASS_ANNOTATION]
               and (BETA_STORAGE_CLASS_ANNOTATION not in na or na[BETA_STORAGE_CLASS_ANNOTATION] == oa[BETA_STORAGE_CLASS_ANNOTATION]))
    if upgrade:
        ns.pop("storageClassName", None)
    else:
        if na.get(BETA_STORAGE_CLASS_ANNOTATION, "") != oa.get(BETA_STORAGE_CLASS_ANNOTATION, ""):
            errs.append(invalid(path("metadata", "annotations", BETA_STORAGE_CLASS_ANNOTATION),
                                na.get(BETA_STORAGE_CLASS_ANNOTATION, ""), FIELD_IMMUTABLE))
        if isinstance(new_sc, str) and old_sc is None and (
                BETA_STORAGE_CLASS_ANNOTATION not in oa or new_sc == oa[BETA_STORAGE_CLASS_ANNOTATION]):
            ns["storageClassName"] = None
            ns.pop("storageClassName")
    bound = s(d(new.get("status")).get("phase")) == "Bound"
    if bound and isinstance(d(ns.get("resources")).get("requests"), dict):
        requests = dict(ns["resources"]["requests"])
        old_storage = d(d(os_.get("resources")).get("requests")).get("storage")
        if old_storage is None:
            requests.pop("storage", None)
        else:
            requests["storage"] = old_storage
        ns["resources"] = dict(ns["resources"], requests=requests)
    if bound and ns.get("volumeAttributesClassName") is not None:
        ns["volumeAttributesClassName"] = os_.get("volumeAttributesClassName")
    if _canon_pvc_spec(ns) != _canon_pvc_spec(os_):
        errs.append(forbidden(path("spec"), "spec is immutable after creation except resources.requests and "
                                            "volumeAttributesClassName for bound claims\n" + _diff(os_, ns)))
    old_size = quantity.try_parse(d(d(d(old.get("spec")).get("resources")).get("requests")).get("storage"))
    new_size = quantity.try_parse(d(d(d(new.get("spec")).get("resources")).get("requests")).get("storage"))
    if old_size is not None and new_size is not None and new_size.value < old_size.value:
        # RecoverVolumeExpansionFailure (beta, on in v1.32): a failed expansion may be taken
        # back, but never to or below what the volume already has.
        capacity = quantity.try_parse(d(d(new.get("status")).get("capacity")).get("storage"))
        if new_size.value <= (capacity.value if capacity is not None else 0):
            errs.append(forbidden(path("spec", "resources", "requests", "storage"),
                                  "field can not be less than status.capacity"))
    errs += validate_immutable(d(new.get("spec")).get("volumeMode"), d(old.get("spec")).get("volumeMode"),
                               path("volumeMode"))
    return errs


def _canon_pvc_spec(spec: dict) -> dict:
    out = {k: v for k, v in spec.items() if v is not None}
    res = d(out.get("resources"))
    if res:
        out["resources"] = {k: {n: quantity.canonical_text(q) for n, q in d(v).items()} if isinstance(v, dict) else v
                            for k, v in res.items()}
    return out


def validate_pvc_status_update(new: dict, old: dict) -> list:
    errs = validate_object_meta_update(new, old)
    if not lst(d(new.get("spec")).get("accessModes")):
        errs.append(required(path("Spec", "accessModes")))
    for name, raw in d(d(new.get("status")).get("capacity")).items():
        q = quantity.try_parse(raw)
        if q is not None and q.value < 0:
            errs.append(invalid(path("status", "capacity").key(name), int(q.value), "must be a valid resource quantity"))
    return errs


# ---- quotas, limit ranges, endpoints, events -------------------------------------

_QUOTA_SCOPES = {"Terminating", "NotTerminating", "BestEffort", "NotBestEffort", "PriorityClass",
                 "CrossNamespacePodAffinity", "VolumeAttributesClass"}


def _quota_resource_name(name: str, fld: Path) -> list:
    errs = pods.validate_resource_name(name, fld)
    if "/" not in name and not pods.is_standard_quota_resource(name):
        errs.append(invalid(fld, name, "must be a standard resource for quota"))
    return errs


def _quota_spec(spec: dict, fld: Path) -> list:
    errs = []
    for name, raw in d(spec.get("hard")).items():
        p = fld.child("hard").key(name)
        errs += _quota_resource_name(name, p)
        errs += pods.validate_resource_quantity_value(name, raw, p)
    scopes = [s(x) for x in lst(spec.get("scopes"))]
    for scope in scopes:
        if scope not in _QUOTA_SCOPES:
            errs.append(invalid(fld.child("scopes"), scopes, "unsupported scope"))
    if {"BestEffort", "NotBestEffort"} <= set(scopes) or {"Terminating", "NotTerminating"} <= set(scopes):
        errs.append(invalid(fld.child("scopes"), scopes, "conflicting scopes"))
    return errs


def validate_resource_quota(obj: dict) -> list:
    errs = validate_object_meta(obj, True, names.name_is_dns_subdomain)
    errs += _quota_spec(d(obj.get("spec")), path("spec"))
    for key in ("hard", "used"):
        for name, raw in d(d(obj.get("status")).get(key)).items():
            p = path("status", key).key(name)
            errs += _quota_resource_name(name, p) + pods.validate_resource_quantity_value(name, raw, p)
    return errs


def validate_resource_quota_update(new: dict, old: dict) -> list:
    errs = validate_object_meta_update(new, old)
    errs += _quota_spec(d(new.get("spec")), path("spec"))
    new_scopes = {s(x) for x in lst(d(new.get("spec")).get("scopes"))}
    old_scopes = {s(x) for x in lst(d(old.get("spec")).get("scopes"))}
    if new_scopes != old_scopes:
        errs.append(invalid(path("spec", "scopes"), [s(x) for x in lst(d(new.get("spec")).get("scopes"))],
                            FIELD_IMMUTABLE))
    return errs


def validate_resource_quota_status_update(new: dict, old: dict) -> list:
    errs = validate_object_meta_update(new, old)
    for key in ("hard", "used"):
        for name, raw in d(d(new.get("status")).get(key)).items():
            p = path("status", key).key(name)
            errs += _quota_resource_name(name, p) + pods.validate_resource_quantity_value(name, raw, p)
    return errs


_LIMIT_TYPES = {"Pod", "Container", "PersistentVolumeClaim"}


def validate_limit_range(obj: dict) -> list:
    errs = validate_object_meta(obj, True, names.name_is_dns_subdomain)
    seen: set = set()
    for n, limit in dicts(d(obj.get("spec")).get("limits")):
        p = path("spec", "limits").index(n)
        ltype = s(limit.get("type"))
        type_errs = [invalid(p.child("type"), ltype, m) for m in names.is_qualified_name(ltype)]
        if not type_errs and "/" not in ltype and ltype not in _LIMIT_TYPES:
            type_errs.append(invalid(p.child("type"), ltype, "must be a standard limit type or fully qualified"))
        errs += type_errs
        if ltype in seen:
            errs.append(duplicate(p.child("type"), ltype))
        seen.add(ltype)
        name_fn = pods.validate_container_resource_name if ltype in ("Pod", "Container") else pods.validate_resource_name
        values: dict = {}
        for key in ("max", "min"):
            for res, raw in d(limit.get(key)).items():
                errs += name_fn(res, p.child(key).key(res))
                values.setdefault(key, {})[res] = quantity.try_parse(raw)
        if ltype == "Pod":
            for key in ("default", "defaultRequest"):
                if d(limit.get(key)):
                    errs.append(forbidden(p.child(key), "may not be specified when `type` is 'Pod'"))
        else:
            for key in ("default", "defaultRequest"):
                for res, raw in d(limit.get(key)).items():
                    errs += name_fn(res, p.child(key).key(res))
                    values.setdefault(key, {})[res] = quantity.try_parse(raw)
        if ltype == "PersistentVolumeClaim" and "storage" not in d(limit.get("min")) \
                and "storage" not in d(limit.get("max")):
            errs.append(required(p.child("limits"),
                                 "either minimum or maximum storage value is required, but neither was provided"))
        for res, raw in d(limit.get("maxLimitRequestRatio")).items():
            errs += name_fn(res, p.child("maxLimitRequestRatio").key(res))
            values.setdefault("ratio", {})[res] = quantity.try_parse(raw)
        keys = {k for group in values.values() for k in group}
        for res in keys:
            mn, mx = values.get("min", {}).get(res), values.get("max", {}).get(res)
            df, dr = values.get("default", {}).get(res), values.get("defaultRequest", {}).get(res)
            ratio = values.get("ratio", {}).get(res)
            if mn and mx and mn.value > mx.value:
                errs.append(invalid(p.child("min").key(res), str(mn), f"min value {mn} is greater than max value {mx}"))
            if dr and mn and mn.value > dr.value:
                errs.append(invalid(p.child("defaultRequest").key(res), str(dr),
                                    f"min value {mn} is greater than default request value {dr}"))
            if dr and mx and dr.value > mx.value:
                errs.append(invalid(p.child("defaultRequest").key(res), str(dr),
                                    f"default request value {dr} is greater than max value {mx}"))
            if dr and df and dr.value > df.value:
                errs.append(invalid(p.child("defaultRequest").key(res), str(dr),
                                    f"default request value {dr} is greater than default limit value {df}"))
            if df and mn and mn.value > df.value:
                errs.append(invalid(p.child("default").key(res), str(mn), f"min value {mn} is greater than default value {df}"))
            if df and mx and df.value > mx.value:
                errs.append(invalid(p.child("default").key(res), str(mx), f"default value {df} is greater than max value {mx}"))
            if ratio and ratio.value < 1:
                errs.append(invalid(p.child("maxLimitRequestRatio").key(res), str(ratio), f"ratio {ratio} is less than 1"))
    return errs


def validate_limit_range_update(new: dict, old: dict) -> list:
    return validate_object_meta_update(new, old) + validate_limit_range(new)


def validate_endpoints(obj: dict) -> list:
    errs = validate_object_meta(obj, True, names.name_is_dns_subdomain)
    for n, subset in dicts(obj.get("subsets")):
        p = path("subsets").index(n)
        if not lst(subset.get("addresses")) and not lst(subset.get("notReadyAddresses")):
            errs.append(required(p, "must specify `addresses` or `notReadyAddresses`"))
        for key in ("addresses", "notReadyAddresses"):
            for k, addr in dicts(subset.get(key)):
                ap = p.child(key).index(k)
                ip = s(addr.get("ip"))
                if names.parse_ip(ip) is None:
                    errs.append(invalid(ap.child("ip"), ip, "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"))
                host = s(addr.get("hostname"))
                if host:
                    errs += [invalid(ap.child("hostname"), host, m) for m in names.is_dns1123_label(host)]
                if isinstance(addr.get("nodeName"), str):
                    errs += [invalid(ap.child("nodeName"), addr["nodeName"], m)
                             for m in names.name_is_dns_subdomain(addr["nodeName"], False)]
                errs += services._non_special_ip(ip, ap.child("ip"))
        ports = lst(subset.get("ports"))
        for k, port in dicts(ports):
            pp = p.child("ports").index(k)
            name = s(port.get("name"))
            if len(ports) > 1 and not name:
                errs.append(required(pp.child("name")))
            elif name:
                errs += [invalid(pp.child("name"), name, m) for m in names.is_dns1123_label(name)]
            num = i(port.get("port"))
            errs += [invalid(pp.child("port"), num, m) for m in names.is_valid_port_num(num)]
            proto = s(port.get("protocol"))
            if not proto:
                errs.append(required(pp.child("protocol")))
            elif proto not in pods.SUPPORTED_PROTOCOLS:
                errs.append(not_supported(pp.child("protocol"), proto, pods.SUPPORTED_PROTOCOLS))
            if isinstance(port.get("appProtocol"), str):
                errs += validate_qualified_name(port["appProtocol"], pp.child("appProtocol"))
    return errs


def validate_endpoints_update(new: dict, old: dict) -> list:
    return validate_object_meta_update(new, old) + validate_endpoints(new)


def validate_event(obj: dict) -> list:
    """legacyValidateEvent: what core/v1 and events.k8s.io/v1beta1 clients get."""
    errs = []
    meta = d(obj.get("metadata"))
    ns = s(meta.get("namespace"))
    involved_ns = s(d(obj.get("involvedObject")).get("namespace"))
    inp = path("involvedObject", "namespace")
    if not obj.get("eventTime"):
        if not involved_ns:
            if ns not in ("", "default"):
                errs.append(invalid(inp, involved_ns, "does not match event.namespace"))
        elif ns != involved_ns:
            errs.append(invalid(inp, involved_ns, "does not match event.namespace"))
    else:
        if not involved_ns and ns not in ("default", "kube-system"):
            errs.append(invalid(inp, involved_ns, "does not match event.namespace"))
        controller = s(obj.get("reportingComponent"))
        if not controller:
            errs.append(required(path("reportingComponent")))
        errs += validate_qualified_name(controller, path("reportingComponent"))
        for key, limit in (("reportingInstance", 128), ("action", 128), ("reason", 128)):
            value = s(obj.get(key))
            if not value:
                errs.append(required(path(key)))
            if len(value) > limit:
                errs.append(invalid(path(key), "", f"can have at most {limit} characters"))
        if len(s(obj.get("message"))) > 1024:
            errs.append(invalid(path("message"), "", "can have at most 1024 characters"))
    errs += [invalid(path("namespace"), ns, m) for m in names.is_dns1123_subdomain(ns)]
    return errs


def validate_event_update(new: dict, old: dict) -> list:
    return validate_event(new)


def validate_binding(obj: dict) -> list:
    target = d(obj.get("target"))
    errs = []
    kind = s(target.get("kind"))
    if kind and kind != "Node":
        errs.append(not_supported(path("target", "kind"), kind, ["Node", "<empty>"]))
    if not s(target.get("name")):
        errs.append(required(path("target", "name")))
    return errs


CREATE = {
    "Pod": pods.validate_pod_create,
    "Service": services.validate_service,
    "PodTemplate": validate_pod_template,
    "ReplicationController": validate_rc,
    "ConfigMap": validate_config_map,
    "Secret": validate_secret,
    "ServiceAccount": validate_service_account,
    "Namespace": validate_namespace,
    "Node": validate_node,
    "PersistentVolume": validate_pv,
    "PersistentVolumeClaim": validate_pvc,
    "ResourceQuota": validate_resource_quota,
    "LimitRange": validate_limit_range,
    "Endpoints": validate_endpoints,
    "Event": validate_event,
    "Binding": validate_binding,
}

UPDATE = {
    "Pod": pods.validate_pod_update,
    "Service": services.validate_service_update,
    "PodTemplate": validate_pod_template_update,
    "ReplicationController": validate_rc_update,
    "ConfigMap": validate_config_map_update,
    "Secret": validate_secret_update,
    "ServiceAccount": validate_service_account_update,
    "Namespace": validate_namespace_update,
    "Node": validate_node_update,
    "PersistentVolume": validate_pv_update,
    "PersistentVolumeClaim": validate_pvc_update,
    "ResourceQuota": validate_resource_quota_update,
    "LimitRange": validate_limit_range_update,
    "Endpoints": validate_endpoints_update,
    "Event": validate_event_update,
}

STATUS_UPDATE = {
    "Pod": pods.validate_pod_status_update,
    "Service": services.validate_service_status_update,
    "ReplicationController": validate_rc_status_update,
    "Namespace": validate_namespace_status_update,
    "PersistentVolume": validate_pv_status_update,
    "PersistentVolumeClaim": validate_pvc_status_update,
    "ResourceQuota": validate_resource_quota_status_update,
    "Node": validate_node_update,
}

