"""Pods, pod templates, containers and volumes (pkg/apis/core/validation).

Checks run in upstream's order so that a client sees the same causes in the
same sequence. Feature gates follow v1.32 defaults: relaxed environment
variable names (beta, on), sleep actions (on, zero not allowed), sidecar
containers (on); alpha fields (pod-level resources, relaxed DNS search) are
not accepted specially.
"""

from __future__ import annotations

import re

from dataclasses import dataclass

from k8py.api.validation import names
from k8py.apimachinery import quantity
from k8py.api.validation.field import (GoValue, Path, d, dicts, duplicate, forbidden, go_quote,
                                       i, invalid, is_int, lst, not_found, not_supported, path, required,
                                       s, strmap, too_long)
from k8py.api.validation.meta import (IS_NEGATIVE, validate_annotations, validate_label_name,
                                      validate_label_selector, validate_labels, validate_nonnegative,
                                      validate_qualified_name, validate_template_object_meta)

FILE_MODE_MSG = "must be a number between 0 and 0777 (octal), both inclusive"
MAX_INT32 = 2 ** 31 - 1
MIRROR_ANNOTATION = "kubernetes.io/config.mirror"
DELETION_COST_ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"
SECCOMP_POD_ANNOTATION = "seccomp.security.alpha.kubernetes.io/pod"
SECCOMP_CONTAINER_PREFIX = "container.seccomp.security.alpha.kubernetes.io/"
APPARMOR_PREFIX = "container.apparmor.security.beta.kubernetes.io/"
SUPPORTED_PROTOCOLS = ["SCTP", "TCP", "UDP"]
HOST_PATH_TYPES = ["", "BlockDevice", "CharDevice", "Directory", "DirectoryOrCreate", "File", "FileOrCreate",
                   "Socket"]
PULL_POLICIES = ["Always", "IfNotPresent", "Never"]
ENV_FIELD_PATHS = ["metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName",
                   "spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP",
                   "status.podIPs"]
VOLUME_FIELD_PATHS = ["metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace",
                      "metadata.uid"]
# ConvertDownwardAPIFieldLabel for v1 pods
_CONVERTIBLE_FIELD_PATHS = {"metadata.annotations", "metadata.labels", "metadata.name", "metadata.namespace",
                            "metadata.uid", "spec.nodeName", "spec.restartPolicy", "spec.serviceAccountName",
                            "spec.schedulerName", "status.phase", "status.hostIP", "status.hostIPs",
                            "status.podIP", "status.podIPs"}
RESOURCE_FIELD_PATHS = ["limits.cpu", "limits.ephemeral-storage", "limits.memory", "requests.cpu",
                        "requests.ephemeral-storage", "requests.memory"]


@dataclass
class PodOptions:
    resource_is_pod: bool = False
    allow_invalid_label_value_in_selector: bool = False


# ---- resource names (pkg/apis/core/helper) ---------------------------------------

_STANDARD_RESOURCES = {
    "cpu", "memory", "ephemeral-storage", "requests.cpu", "requests.memory", "requests.ephemeral-storage",
    "limits.cpu", "limits.memory", "limits.ephemeral-storage", "pods", "resourcequotas", "services",
    "replicationcontrollers", "secrets", "configmaps", "persistentvolumeclaims", "storage",
    "requests.storage", "services.nodeports", "services.loadbalancers"}
_STANDARD_QUOTA_RESOURCES = {
    "cpu", "memory", "ephemeral-storage", "requests.cpu", "requests.memory", "requests.storage",
    "requests.ephemeral-storage", "limits.cpu", "limits.memory", "limits.ephemeral-storage", "pods",
    "resourcequotas", "services", "replicationcontrollers", "secrets", "configmaps", "persistentvolumeclaims",
    "services.nodeports", "services.loadbalancers"}
_INTEGER_RESOURCES = {"pods", "resourcequotas", "services", "replicationcontrollers", "secrets", "configmaps",
                      "persistentvolumeclaims", "services.nodeports", "services.loadbalancers"}


def is_hugepage_resource(name: str) -> bool:
    return name.startswith("hugepages-")


def is_native_resource(name: str) -> bool:
    return "/" not in name or "kubernetes.io/" in name


def is_extended_resource(name: str) -> bool:
    if is_native_resource(name) or name.startswith("requests."):
        return False
    return not names.is_qualified_name("requests." + name)


def is_overcommit_allowed(name: str) -> bool:
    return is_native_resource(name) and not is_hugepage_resource(name)


def is_integer_resource(name: str) -> bool:
    return name in _INTEGER_RESOURCES or is_extended_resource(name)


def is_standard_resource(name: str) -> bool:
    return name in _STANDARD_RESOURCES or name.startswith("hugepages-") or name.startswith("requests.hugepages-")


def is_standard_quota_resource(name: str) -> bool:
    return (name in _STANDARD_QUOTA_RESOURCES or name.startswith("hugepages-")
            or name.startswith("requests.hugepages-"))


def validate_resource_name(value: str, fld: Path) -> list:
    errs = [invalid(fld, value, m) for m in names.is_qualified_name(value)]
    if errs:
        return errs
    if "/" not in value and not is_standard_resource(value):
        return [invalid(fld, value, "must be a standard resource type or fully qualified")]
    return []


def validate_container_resource_name(value: str, fld: Path) -> list:
    errs = validate_resource_name(value, fld)
    if "/" not in value:
        if not (value in ("cpu", "memory", "ephemeral-storage") or is_hugepage_resource(value)):
            return errs + [invalid(fld, value, "must be a standard resource for containers")]
    elif not is_native_resource(value) and not is_extended_resource(value):
        return errs + [invalid(fld, value, "doesn't follow extended resource name standard")]
    return errs


def validate_resource_quantity_value(name: str, raw, fld: Path) -> list:
    q = quantity.try_parse(raw)
    if q is None:
        return []
    errs = []
    if q.value < 0:
        errs.append(invalid(fld, str(q), IS_NEGATIVE))
    if is_integer_resource(name) and (q.value * 1000) % 1000 != 0:
        errs.append(invalid(fld, str(q), "must be an integer"))
    return errs


def validate_positive_quantity(raw, fld: Path) -> list:
    q = quantity.try_parse(raw)
    if q is not None and q.value <= 0:
        return [invalid(fld, str(q), "must be greater than zero")]
    return []


def validate_resource_requirements(req, fld: Path, claim_names: set, name_fn=validate_container_resource_name) -> list:
    req = d(req)
    errs = []
    lim_path, req_path = fld.child("limits"), fld.child("requests")
    limits, requests = d(req.get("limits")), d(req.get("requests"))
    lim_cpu_mem = req_cpu_mem = lim_huge = req_huge = False
    for name, raw in limits.items():
        p = lim_path.key(name)
        errs += name_fn(name, p)
        errs += validate_resource_quantity_value(name, raw, p)
        if is_hugepage_resource(name):
            lim_huge = True
        if name in ("cpu", "memory"):
            lim_cpu_mem = True
    for name, raw in requests.items():
        p = req_path.key(name)
        errs += name_fn(name, p)
        errs += validate_resource_quantity_value(name, raw, p)
        q = quantity.try_parse(raw)
        if name in limits:
            lq = quantity.try_parse(limits[name])
            if q is not None and lq is not None:
                if q.value != lq.value and not is_overcommit_allowed(name):
                    errs.append(invalid(req_path, str(q), f"must be equal to {name} limit of {lq}"))
                elif q.value > lq.value:
                    errs.append(invalid(req_path, str(q), f"must be less than or equal to {name} limit of {lq}"))
        elif not is_overcommit_allowed(name):
            errs.append(required(lim_path, "Limit must be set for non overcommitable resources"))
        if is_hugepage_resource(name):
            req_huge = True
        if name in ("cpu", "memory"):
            req_cpu_mem = True
    if not lim_cpu_mem and not req_cpu_mem and (req_huge or lim_huge):
        errs.append(forbidden(fld, "HugePages require cpu or memory"))
    seen: set = set()
    for n, claim in enumerate(lst(req.get("claims"))):
        name = s(d(claim).get("name"))
        if not name:
            errs.append(required(fld.child("claims").index(n)))
            continue
        if name in seen:
            errs.append(duplicate(fld.child("claims").index(n), name))
        seen.add(name)
        if name not in claim_names:
            detail = "must be one of the names in pod.spec.resourceClaims"
            detail += " which is empty" if not claim_names else ": " + ", ".join(sorted(claim_names))
            errs.append(not_found(fld.child("claims").index(n), name, detail))
    return errs


# ---- paths -----------------------------------------------------------------------

def _no_backsteps(target: str, fld: Path) -> list:
    if ".." in target.replace("\\", "/").split("/"):
        return [invalid(fld, target, "must not contain '..'")]
    return []


def local_descending_path(target: str, fld: Path) -> list:
    errs = []
    if target.startswith("/"):
        errs.append(invalid(fld, target, "must be a relative path"))
    return errs + _no_backsteps(target, fld)


def local_non_reserved_path(target: str, fld: Path) -> list:
    errs = local_descending_path(target, fld)
    if target.startswith("..") and not target.startswith("../"):
        errs.append(invalid(fld, target, "must not start with '..'"))
    return errs


def _file_mode(value, fld: Path) -> list:
    if is_int(value) and (value > 0o777 or value < 0):
        return [invalid(fld, value, FILE_MODE_MSG)]
    return []


def _key_to_path(kp: dict, fld: Path) -> list:
    errs = []
    if not s(kp.get("key")):
        errs.append(required(fld.child("key")))
    if not s(kp.get("path")):
        errs.append(required(fld.child("path")))
    errs += local_non_reserved_path(s(kp.get("path")), fld.child("path"))
    errs += _file_mode(kp.get("mode"), fld.child("mode"))
    return errs


# ---- volumes ----------------------------------------------------------------------

# (wire key, path used in "more than 1 volume type", path used for its own checks)
_VOLUME_SOURCES = [
    ("emptyDir", "emptyDir", "emptyDir"), ("hostPath", "hostPath", "hostPath"), ("gitRepo", "gitRepo", "gitRepo"),
    ("gcePersistentDisk", "gcePersistentDisk", "persistentDisk"),
    ("awsElasticBlockStore", "awsElasticBlockStore", "awsElasticBlockStore"), ("secret", "secret", "secret"),
    ("nfs", "nfs", "nfs"), ("iscsi", "iscsi", "iscsi"), ("glusterfs", "glusterfs", "glusterfs"),
    ("flocker", "flocker", "flocker"), ("persistentVolumeClaim", "persistentVolumeClaim", "persistentVolumeClaim"),
    ("rbd", "rbd", "rbd"), ("cinder", "cinder", "cinder"), ("cephfs", "cephFS", "cephfs"),
    ("quobyte", "quobyte", "quobyte"), ("downwardAPI", "downwarAPI", "downwardAPI"), ("fc", "fc", "fc"),
    ("flexVolume", "flexVolume", "flexVolume"), ("configMap", "configMap", "configMap"),
    ("azureFile", "azureFile", "azureFile"), ("vsphereVolume", "vsphereVolume", "vsphereVolume"),
    ("photonPersistentDisk", "photonPersistentDisk", "photonPersistentDisk"),
    ("portworxVolume", "portworxVolume", "portworxVolume"), ("azureDisk", "azureDisk", "azureDisk"),
    ("storageos", "storageos", "storageos"), ("projected", "projected", "projected"),
    ("scaleIO", "scaleIO", "scaleIO"), ("csi", "csi", "csi"), ("ephemeral", "ephemeral", "ephemeral"),
    ("image", "image", "image"),
]
VOLUME_SOURCE_KEYS = [k for k, _, _ in _VOLUME_SOURCES]


def _required_fields(src: dict, fld: Path, *keys: str) -> list:
    return [required(fld.child(k)) for k in keys if not src.get(k)]


def _validate_one_source(key: str, src: dict, fld: Path, vol_name: str, pod_meta, opts: PodOptions) -> list:
    if key == "emptyDir":
        q = quantity.try_parse(src.get("sizeLimit")) if src.get("sizeLimit") is not None else None
        if q is not None and q.value < 0:
            return [forbidden(fld.child("sizeLimit"), "SizeLimit field must be a valid resource quantity")]
        return []
    if key == "hostPath":
        p = s(src.get("path"))
        if not p:
            return [required(fld.child("path"))]
        errs = _no_backsteps(p, fld.child("path"))
        if "type" in src and src["type"] is not None and s(src.get("type")) not in HOST_PATH_TYPES:
            errs.append(not_supported(fld.child("type"), s(src.get("type")), HOST_PATH_TYPES))
        return errs
    if key == "gitRepo":
        errs = _required_fields(src, fld, "repository")
        return errs + local_descending_path(s(src.get("directory")), fld.child("directory"))
    if key in ("gcePersistentDisk", "awsElasticBlockStore"):
        errs = _required_fields(src, fld, "pdName" if key == "gcePersistentDisk" else "volumeID")
        part = src.get("partition")
        if is_int(part) and (part < 0 or part > 255):
            errs.append(invalid(fld.child("partition"), part, names.inclusive_range_error(1, 255)))
        return errs
    if key == "secret":
        errs = _required_fields(src, fld, "secretName")
        errs += _file_mode(src.get("defaultMode"), fld.child("defaultMode"))
        for n, kp in dicts(src.get("items")):
            errs += _key_to_path(kp, fld.child("items").index(n))
        return errs
    if key == "configMap":
        errs = _required_fields(src, fld, "name")
        errs += _file_mode(src.get("defaultMode"), fld.child("defaultMode"))
        for n, kp in dicts(src.get("items")):
            errs += _key_to_path(kp, fld.child("items").index(n))
        return errs
    if key == "nfs":
        errs = _required_fields(src, fld, "server", "path")
        if not s(src.get("path")).startswith("/"):
            errs.append(invalid(fld.child("path"), s(src.get("path")), "must be an absolute path"))
        return errs
    if key == "iscsi":
        errs = _required_fields(src, fld, "targetPortal", "iqn")
        lun = src.get("lun")
        if is_int(lun) and (lun < 0 or lun > 255):
            errs.append(invalid(fld.child("lun"), lun, names.inclusive_range_error(0, 255)))
        if (src.get("chapAuthDiscovery") or src.get("chapAuthSession")) and not src.get("secretRef"):
            errs.append(required(fld.child("secretRef")))
        return errs
    if key == "glusterfs":
        return _required_fields(src, fld, "endpoints", "path")
    if key == "flocker":
        errs = []
        if not s(src.get("datasetName")) and not s(src.get("datasetUUID")):
            errs.append(required(fld, "one of datasetName and datasetUUID is required"))
        if s(src.get("datasetName")) and s(src.get("datasetUUID")):
            errs.append(invalid(fld, "resource", "datasetName and datasetUUID can not be specified simultaneously"))
        if "/" in s(src.get("datasetName")):
            errs.append(invalid(fld.child("datasetName"), s(src.get("datasetName")), "must not contain '/'"))
        return errs
    if key == "persistentVolumeClaim":
        return _required_fields(src, fld, "claimName")
    if key == "rbd":
        return _required_fields(src, fld, "monitors", "image")
    if key == "cinder":
        errs = _required_fields(src, fld, "volumeID")
        if isinstance(src.get("secretRef"), dict) and not s(src["secretRef"].get("name")):
            errs.append(required(fld.child("secretRef", "name")))
        return errs
    if key == "cephfs":
        return _required_fields(src, fld, "monitors")
    if key == "quobyte":
        errs = []
        if not s(src.get("registry")):
            errs.append(required(fld.child("registry"), "must be a host:port pair or multiple pairs separated by commas"))
        return errs + _required_fields(src, fld, "volume")
    if key == "downwardAPI":
        errs = _file_mode(src.get("defaultMode"), fld.child("defaultMode"))
        for _, item in dicts(src.get("items")):
            errs += _downward_api_file(item, fld)
        return errs
    if key == "fc":
        errs = []
        wwns, wwids = lst(src.get("targetWWNs")), lst(src.get("wwids"))
        if not wwns and not wwids:
            errs.append(required(fld.child("targetWWNs"), "must specify either targetWWNs or wwids, but not both"))
        if wwns and wwids:
            errs.append(invalid(fld.child("targetWWNs"), wwns,
                                "targetWWNs and wwids can not be specified simultaneously"))
        if wwns:
            lun = src.get("lun")
            if lun is None:
                errs.append(required(fld.child("lun"), "lun is required if targetWWNs is specified"))
            elif is_int(lun) and (lun < 0 or lun > 255):
                errs.append(invalid(fld.child("lun"), lun, names.inclusive_range_error(0, 255)))
        return errs
    if key == "flexVolume":
        errs = _required_fields(src, fld, "driver")
        for k in strmap(src.get("options")):
            ns = k.split("/", 1)[0] if "/" in k else k
            normalized = "." + ns.lower()
            if normalized.endswith(".kubernetes.io") or normalized.endswith(".k8s.io"):
                errs.append(invalid(fld.child("options").key(k), k, "kubernetes.io and k8s.io namespaces are reserved"))
        return errs
    if key == "azureFile":
        return _required_fields(src, fld, "secretName", "shareName")
    if key == "vsphereVolume":
        return _required_fields(src, fld, "volumePath")
    if key == "photonPersistentDisk":
        return _required_fields(src, fld, "pdID")
    if key == "portworxVolume":
        return _required_fields(src, fld, "volumeID")
    if key == "azureDisk":
        return _required_fields(src, fld, "diskName", "diskURI")
    if key == "storageos":
        errs = []
        if not s(src.get("volumeName")):
            errs.append(required(fld.child("volumeName")))
        else:
            errs += [invalid(fld.child("volumeName"), s(src["volumeName"]), m)
                     for m in names.is_dns1123_label(s(src["volumeName"]))]
        return errs
    if key == "projected":
        errs = _file_mode(src.get("defaultMode"), fld.child("defaultMode"))
        return errs + _projection_sources(src, fld, opts)
    if key == "scaleIO":
        return _required_fields(src, fld, "gateway", "system", "volumeName")
    if key == "csi":
        errs = validate_csi_driver_name(s(src.get("driver")), fld.child("driver"))
        ref = src.get("nodePublishSecretRef")
        if isinstance(ref, dict):
            if not s(ref.get("name")):
                errs.append(required(fld.child("nodePublishSecretRef", "name")))
            else:
                errs += [invalid(fld.child("name"), s(ref["name"]), m)
                         for m in names.name_is_dns_subdomain(s(ref["name"]), False)]
        return errs
    if key == "ephemeral":
        template = src.get("volumeClaimTemplate")
        if not isinstance(template, dict):
            return [required(fld.child("volumeClaimTemplate"))]
        errs = validate_template_object_meta(template.get("metadata"), fld.child("volumeClaimTemplate", "metadata"))
        errs += validate_pvc_spec(d(template.get("spec")), fld.child("volumeClaimTemplate", "spec"))
        pod_name = s(d(pod_meta).get("name")) if pod_meta is not None else ""
        if pod_name and vol_name:
            pvc_name = f"{pod_name}-{vol_name}"
            errs += [invalid(fld.child("name"), vol_name, f"PVC name {go_quote(pvc_name)}: {m}")
                     for m in names.name_is_dns_subdomain(pvc_name, False)]
        return errs
    if key == "image":
        errs = []
        if opts.resource_is_pod and not s(src.get("reference")):
            errs.append(required(fld.child("reference")))
        return errs + _pull_policy(s(src.get("pullPolicy")), fld.child("pullPolicy"))
    return []


def validate_csi_driver_name(driver: str, fld: Path) -> list:
    errs = []
    if not driver:
        errs.append(required(fld))
    if len(driver) > 63:
        errs.append(too_long(fld, 63))
    return errs + [invalid(fld, driver, m) for m in names.is_dns1123_subdomain(driver.lower())]


def _projection_sources(src: dict, fld: Path, opts: PodOptions) -> list:
    errs = []
    seen_paths: set = set()

    def note_path(p: str, shown) -> None:
        if p in seen_paths:
            errs.append(invalid(fld, shown, "conflicting duplicate paths"))
        seen_paths.add(p)

    for n, source in dicts(src.get("sources")):
        count = 0
        src_path = fld.child("sources").index(n)
        for kind in ("secret", "configMap"):
            item = source.get(kind)
            if not isinstance(item, dict):
                continue
            count += 1
            p = src_path.child(kind)
            if not s(item.get("name")):
                errs.append(required(p.child("name")))
            for k, kp in dicts(item.get("items")):
                errs += _key_to_path(kp, p.child("items").index(k))
                if s(kp.get("path")):
                    note_path(s(kp["path"]), s(item.get("name")))
        dapi = source.get("downwardAPI")
        if isinstance(dapi, dict):
            count += 1
            for _, f in dicts(dapi.get("items")):
                errs += _downward_api_file(f, src_path.child("downwardAPI"))
                if s(f.get("path")):
                    note_path(s(f["path"]), s(f["path"]))
        token = source.get("serviceAccountToken")
        if isinstance(token, dict):
            count += 1
            exp = token.get("expirationSeconds")
            tp = src_path.child("serviceAccountToken")
            if is_int(exp) and exp < 600:
                errs.append(invalid(tp.child("expirationSeconds"), exp, "may not specify a duration less than 10 minutes"))
            if is_int(exp) and exp > 1 << 32:
                errs.append(invalid(tp.child("expirationSeconds"), exp, "may not specify a duration larger than 2^32 seconds"))
            if not s(token.get("path")):
                errs.append(required(fld.child("path")))
            else:
                errs += local_non_reserved_path(s(token["path"]), fld.child("path"))
        bundle = source.get("clusterTrustBundle")
        if isinstance(bundle, dict):
            count += 1
            bp = src_path.child("clusterTrustBundle")
            if not s(bundle.get("path")):
                errs.append(required(bp.child("path")))
            errs += local_non_reserved_path(s(bundle.get("path")), bp.child("path"))
            note_path(s(bundle.get("path")), s(bundle.get("path")))
        if count > 1:
            errs.append(forbidden(src_path, "may not specify more than 1 volume type per source"))
    return errs


def _object_field_selector(fs: dict, expressions: list, fld: Path) -> list:
    if not s(fs.get("apiVersion")):
        return [required(fld.child("apiVersion"))]
    fp = s(fs.get("fieldPath"))
    if not fp:
        return [required(fld.child("fieldPath"))]
    version = s(fs.get("apiVersion"))
    base, subscript, subscripted = _split_subscript(fp)
    if version != "v1":
        err = f"unsupported pod version: {version}"
    elif subscripted and base not in ("metadata.annotations", "metadata.labels"):
        err = f"field label does not support subscript: {fp}"
    elif not subscripted and fp not in _CONVERTIBLE_FIELD_PATHS:
        err = f"field label not supported: {fp}"
    else:
        err = ""
    if err:
        return [invalid(fld.child("fieldPath"), fp, f"error converting fieldPath: {err}")]
    if subscripted:
        if base == "metadata.annotations":
            return validate_qualified_name(subscript.lower(), fld)
        return validate_qualified_name(subscript, fld)
    if fp not in expressions:
        return [not_supported(fld.child("fieldPath"), fp, expressions)]
    return []


def _split_subscript(fp: str) -> tuple[str, str, bool]:
    if fp.endswith("']") and "['" in fp:
        base, _, rest = fp.partition("['")
        return base, rest[:-2], True
    return fp, "", False


def _divisor(resource: str, divisor, fld: Path) -> list:
    if divisor is None:
        return []
    q = quantity.try_parse(divisor)
    if q is None or q.value == 0:
        return []
    text = str(q)
    mem = {"1", "1k", "1M", "1G", "1T", "1P", "1E", "1Ki", "1Mi", "1Gi", "1Ti", "1Pi", "1Ei"}
    listed = "1, 1k, 1M, 1G, 1T, 1P, 1E, 1Ki, 1Mi, 1Gi, 1Ti, 1Pi, 1Ei"
    if resource in ("limits.cpu", "requests.cpu") and text not in ("1m", "1"):
        return [invalid(fld.child("divisor"), resource, "only divisor's values 1m and 1 are supported with the cpu resource")]
    if resource in ("limits.memory", "requests.memory") and text not in mem:
        return [invalid(fld.child("divisor"), resource,
                        f"only divisor's values {listed} are supported with the memory resource")]
    if resource in ("limits.ephemeral-storage", "requests.ephemeral-storage") and text not in mem:
        return [invalid(fld.child("divisor"), resource,
                        f"only divisor's values {listed} are supported with the local ephemeral storage resource")]
    if (resource.startswith("requests.hugepages-") or resource.startswith("limits.hugepages-")) and text not in mem:
        return [invalid(fld.child("divisor"), resource,
                        f"only divisor's values {listed} are supported with the hugepages resource")]
    return []


def _resource_field_selector(fs: dict, fld: Path, volume: bool) -> list:
    errs = []
    resource = s(fs.get("resource"))
    if volume and not s(fs.get("containerName")):
        errs.append(required(fld.child("containerName")))
    elif not resource:
        errs.append(required(fld.child("resource")))
    elif resource not in RESOURCE_FIELD_PATHS and not (
            resource.startswith("requests.hugepages-") or resource.startswith("limits.hugepages-")):
        errs.append(not_supported(fld.child("resource"), resource, RESOURCE_FIELD_PATHS))
    return errs + _divisor(resource, fs.get("divisor"), fld)


def _downward_api_file(f: dict, fld: Path) -> list:
    errs = []
    if not s(f.get("path")):
        errs.append(required(fld.child("path")))
    errs += local_non_reserved_path(s(f.get("path")), fld.child("path"))
    if isinstance(f.get("fieldRef"), dict):
        errs += _object_field_selector(f["fieldRef"], VOLUME_FIELD_PATHS, fld.child("fieldRef"))
        if isinstance(f.get("resourceFieldRef"), dict):
            errs.append(invalid(fld, "resource", "fieldRef and resourceFieldRef can not be specified simultaneously"))
    elif isinstance(f.get("resourceFieldRef"), dict):
        errs += _resource_field_selector(f["resourceFieldRef"], fld.child("resourceFieldRef"), True)
    else:
        errs.append(required(fld, "one of fieldRef and resourceFieldRef is required"))
    return errs + _file_mode(f.get("mode"), fld.child("mode"))


def validate_volume_source(vol: dict, fld: Path, vol_name: str, pod_meta, opts: PodOptions) -> list:
    errs = []
    count = 0
    for key, busy_name, own_name in _VOLUME_SOURCES:
        src = vol.get(key)
        if not isinstance(src, dict):
            continue
        if count > 0:
            errs.append(forbidden(fld.child(busy_name), "may not specify more than 1 volume type"))
            continue
        count += 1
        errs += _validate_one_source(key, src, fld.child(own_name), vol_name, pod_meta, opts)
    if count == 0:
        errs.append(required(fld, "must specify a volume type"))
    return errs


def validate_volumes(volumes, pod_meta, fld: Path, opts: PodOptions) -> tuple[dict, list]:
    errs = []
    seen: set = set()
    vols: dict = {}
    pod_name = s(d(pod_meta).get("name")) if pod_meta is not None else ""
    created_pvcs = {f"{pod_name}-{s(v.get('name'))}" for _, v in dicts(volumes)
                    if isinstance(v.get("ephemeral"), dict)} if pod_name else set()
    for n, vol in enumerate(lst(volumes)):
        vol = d(vol)
        idx = fld.index(n)
        name = s(vol.get("name"))
        el = validate_volume_source(vol, idx, name, pod_meta, opts)
        if not name:
            el.append(required(idx.child("name")))
        else:
            el += [invalid(idx.child("name"), name, m) for m in names.is_dns1123_label(name)]
        if name in seen:
            el.append(duplicate(idx.child("name"), name))
        if not el:
            seen.add(name)
            vols[name] = vol
        else:
            errs += el
        pvc = vol.get("persistentVolumeClaim")
        if isinstance(pvc, dict) and s(pvc.get("claimName")) in created_pvcs:
            errs.append(invalid(idx.child("persistentVolumeClaim", "claimName"), s(pvc.get("claimName")),
                                "must not reference a PVC that gets created for an ephemeral volume"))
    return vols, errs


# ---- PVC spec (shared with PersistentVolumeClaim and ephemeral volumes) ---------------

ACCESS_MODES = ["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"]
VOLUME_MODES = ["Block", "Filesystem"]


def validate_access_modes(modes, fld: Path) -> list:
    errs = []
    rwop = other = False
    for mode in lst(modes):
        mode = s(mode)
        if mode not in ACCESS_MODES:
            errs.append(not_supported(fld, mode, ACCESS_MODES))
        if mode == "ReadWriteOncePod":
            rwop = True
        elif mode in ACCESS_MODES:
            other = True
    if rwop and other:
        errs.append(forbidden(fld, "may not use ReadWriteOncePod with other access modes"))
    return errs


def validate_pvc_spec(spec: dict, fld: Path) -> list:
    errs = []
    if not lst(spec.get("accessModes")):
        errs.append(required(fld.child("accessModes"), "at least 1 access mode is required"))
    if isinstance(spec.get("selector"), dict):
        errs += validate_label_selector(spec["selector"], fld.child("selector"))
    errs += validate_access_modes(spec.get("accessModes"), fld.child("accessModes"))
    requests = d(d(spec.get("resources")).get("requests"))
    storage_path = fld.child("resources").key("storage")
    if "storage" not in requests:
        errs.append(required(storage_path))
    else:
        positive = validate_positive_quantity(requests["storage"], storage_path)
        errs += positive if positive else validate_resource_quantity_value("storage", requests["storage"], storage_path)
    sc = spec.get("storageClassName")
    if isinstance(sc, str) and sc:
        errs += [invalid(fld.child("storageClassName"), sc, m) for m in names.name_is_dns_subdomain(sc, False)]
    mode = spec.get("volumeMode")
    if isinstance(mode, str) and mode not in VOLUME_MODES:
        errs.append(not_supported(fld.child("volumeMode"), mode, VOLUME_MODES))
    for key in ("dataSource", "dataSourceRef"):
        ref = spec.get(key)
        if not isinstance(ref, dict):
            continue
        rp = fld.child(key)
        if not s(ref.get("name")):
            errs.append(required(rp.child("name")))
        if not s(ref.get("kind")):
            errs.append(required(rp.child("kind")))
        group = s(ref.get("apiGroup"))
        if not group and s(ref.get("kind")) != "PersistentVolumeClaim":
            errs.append(invalid(rp, s(ref.get("kind")), "must be 'PersistentVolumeClaim' when referencing the default apiGroup"))
        if group:
            errs += [invalid(rp.child("apiGroup"), group, m) for m in names.is_dns1123_subdomain(group)]
    return errs


# ---- containers ---------------------------------------------------------------------

def validate_port_num_or_name(port, fld: Path) -> list:
    if is_int(port):
        return [invalid(fld, port, m) for m in names.is_valid_port_num(port)]
    if isinstance(port, str):
        return [invalid(fld, port, m) for m in names.is_valid_port_name(port)]
    return [invalid(fld, 0, m) for m in names.is_valid_port_num(0)]


def _container_ports(ports, fld: Path) -> list:
    errs = []
    seen: set = set()
    for n, port in enumerate(lst(ports)):
        port = d(port)
        idx = fld.index(n)
        name = s(port.get("name"))
        if name:
            msgs = names.is_valid_port_name(name)
            if msgs:
                errs += [invalid(idx.child("name"), name, m) for m in msgs]
            elif name in seen:
                errs.append(duplicate(idx.child("name"), name))
            else:
                seen.add(name)
        cp = i(port.get("containerPort"))
        if cp == 0:
            errs.append(required(idx.child("containerPort")))
        else:
            errs += [invalid(idx.child("containerPort"), cp, m) for m in names.is_valid_port_num(cp)]
        hp = i(port.get("hostPort"))
        if hp != 0:
            errs += [invalid(idx.child("hostPort"), hp, m) for m in names.is_valid_port_num(hp)]
        proto = s(port.get("protocol"))
        if not proto:
            errs.append(required(idx.child("protocol")))
        elif proto not in SUPPORTED_PROTOCOLS:
            errs.append(not_supported(idx.child("protocol"), proto, SUPPORTED_PROTOCOLS))
    return errs


def _env(env, fld: Path) -> list:
    errs = []
    for n, ev in enumerate(lst(env)):
        ev = d(ev)
        idx = fld.index(n)
        name = s(ev.get("name"))
        if not name:
            errs.append(required(idx.child("name")))
        else:
            errs += [invalid(idx.child("name"), name, m) for m in names.is_relaxed_env_var_name(name)]
        errs += _env_value_from(ev, idx.child("valueFrom"))
    return errs


def _key_selector(sel: dict, fld: Path) -> list:
    name = s(sel.get("name"))
    errs = [invalid(fld.child("name"), name, m) for m in names.name_is_dns_subdomain(name, False)]
    key = s(sel.get("key"))
    if not key:
        errs.append(required(fld.child("key")))
    else:
        errs += [invalid(fld.child("key"), key, m) for m in names.is_config_map_key(key)]
    return errs


def _env_value_from(ev: dict, fld: Path) -> list:
    vf = ev.get("valueFrom")
    if not isinstance(vf, dict):
        return []
    errs = []
    count = 0
    if isinstance(vf.get("fieldRef"), dict):
        count += 1
        errs += _object_field_selector(vf["fieldRef"], ENV_FIELD_PATHS, fld.child("fieldRef"))
    if isinstance(vf.get("resourceFieldRef"), dict):
        count += 1
        errs += _resource_field_selector(vf["resourceFieldRef"], fld.child("resourceFieldRef"), False)
    if isinstance(vf.get("configMapKeyRef"), dict):
        count += 1
        errs += _key_selector(vf["configMapKeyRef"], fld.child("configMapKeyRef"))
    if isinstance(vf.get("secretKeyRef"), dict):
        count += 1
        errs += _key_selector(vf["secretKeyRef"], fld.child("secretKeyRef"))
    if count == 0:
        errs.append(invalid(fld, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"))
    elif s(ev.get("value")):
        errs.append(invalid(fld, "", "may not be specified when `value` is not empty"))
    elif count > 1:
        errs.append(invalid(fld, "", "may not have more than one field specified at a time"))
    return errs


def _env_from(env_from, fld: Path) -> list:
    errs = []
    for n, ev in enumerate(lst(env_from)):
        ev = d(ev)
        idx = fld.index(n)
        prefix = s(ev.get("prefix"))
        if prefix:
            errs += [invalid(idx.child("prefix"), prefix, m) for m in names.is_relaxed_env_var_name(prefix)]
        count = 0
        for key in ("configMapRef", "secretRef"):
            ref = ev.get(key)
            if isinstance(ref, dict):
                count += 1
                name = s(ref.get("name"))
                if not name:
                    errs.append(required(idx.child(key, "name")))
                else:
                    errs += [invalid(idx.child(key, "name"), name, m) for m in names.name_is_dns_subdomain(name, True)]
        if count == 0:
            errs.append(invalid(fld, "", "must specify one of: `configMapRef` or `secretRef`"))
        elif count > 1:
            errs.append(invalid(fld, "", "may not have more than one field specified at a time"))
    return errs


def _volume_mounts(mounts, devices: dict, volumes: dict, container: dict, fld: Path) -> list:
    errs = []
    mount_points: set = set()
    for n, mnt in enumerate(lst(mounts)):
        mnt = d(mnt)
        idx = fld.index(n)
        name, mount_path = s(mnt.get("name")), s(mnt.get("mountPath"))
        if not name:
            errs.append(required(idx.child("name")))
        if name not in volumes:
            errs.append(not_found(idx.child("name"), name))
        if not mount_path:
            errs.append(required(idx.child("mountPath")))
        if mount_path in mount_points:
            errs.append(invalid(idx.child("mountPath"), mount_path, "must be unique"))
        mount_points.add(mount_path)
        if name in devices:
            errs.append(invalid(idx.child("name"), name, "must not already exist in volumeDevices"))
        if mount_path in devices.values():
            errs.append(invalid(idx.child("mountPath"), mount_path, "must not already exist as a path in volumeDevices"))
        sub_path, sub_expr = s(mnt.get("subPath")), s(mnt.get("subPathExpr"))
        if name in volumes and isinstance(volumes[name].get("image"), dict):
            if sub_path:
                errs.append(invalid(idx.child("subPath"), sub_path, "not allowed in image volume sources"))
            if sub_expr:
                errs.append(invalid(idx.child("subPathExpr"), sub_expr, "not allowed in image volume sources"))
        # upstream reports these two under the list's path, not the item's
        if sub_path:
            errs += local_descending_path(sub_path, fld.child("subPath"))
        if sub_expr:
            if sub_path:
                errs.append(invalid(idx.child("subPathExpr"), sub_expr, "subPathExpr and subPath are mutually exclusive"))
            errs += local_descending_path(sub_expr, fld.child("subPathExpr"))
        prop = mnt.get("mountPropagation")
        if isinstance(prop, str):
            supported = ["Bidirectional", "HostToContainer", "None"]
            if prop not in supported:
                errs.append(not_supported(fld.child("mountPropagation"), prop, supported))
            privileged = d(container.get("securityContext")).get("privileged") is True
            if prop == "Bidirectional" and not privileged:
                errs.append(forbidden(fld.child("mountPropagation"),
                                      "Bidirectional mount propagation is available only to privileged containers"))
        rro = mnt.get("recursiveReadOnly")
        if isinstance(rro, str) and rro != "Disabled":
            rp = fld.child("recursiveReadOnly")
            if rro in ("Enabled", "IfPossible"):
                if mnt.get("readOnly") is not True:
                    errs.append(forbidden(rp, "may only be specified when readOnly is true"))
                if isinstance(prop, str) and prop != "None":
                    errs.append(forbidden(rp, "may only be specified when mountPropagation is None or not specified"))
            else:
                errs.append(not_supported(rp, rro, ["Disabled", "Enabled", "IfPossible"]))
    return errs


def _volume_devices(devices, mounts: dict, volumes: dict, fld: Path) -> list:
    errs = []
    paths: set = set()
    dev_names: set = set()
    for n, dev in enumerate(lst(devices)):
        dev = d(dev)
        idx = fld.index(n)
        name, dev_path = s(dev.get("name")), s(dev.get("devicePath"))
        matched = name in volumes
        is_pvc = matched and (isinstance(volumes[name].get("persistentVolumeClaim"), dict)
                              or isinstance(volumes[name].get("ephemeral"), dict))
        if not name:
            errs.append(required(idx.child("name")))
        if name in dev_names:
            errs.append(invalid(idx.child("name"), name, "must be unique"))
        if matched and not is_pvc:
            errs.append(invalid(idx.child("name"), name,
                                "can only use volume source type of PersistentVolumeClaim or Ephemeral for block mode"))
        if not matched:
            errs.append(not_found(idx.child("name"), name))
        if not dev_path:
            errs.append(required(idx.child("devicePath")))
        if dev_path in paths:
            errs.append(invalid(idx.child("devicePath"), dev_path, "must be unique"))
        if dev_path and _no_backsteps(dev_path, fld.child("devicePath")):
            errs.append(invalid(idx.child("devicePath"), dev_path, "can not contain backsteps ('..')"))
        else:
            paths.add(dev_path)
        if name in mounts:
            errs.append(invalid(idx.child("name"), name, "must not already exist in volumeMounts"))
        if dev_path in mounts.values():
            errs.append(invalid(idx.child("devicePath"), dev_path, "must not already exist as a path in volumeMounts"))
        if name:
            dev_names.add(name)
    return errs


def _pull_policy(policy: str, fld: Path) -> list:
    if policy in PULL_POLICIES:
        return []
    if not policy:
        return [required(fld)]
    return [not_supported(fld, policy, PULL_POLICIES)]


def _resize_policy(policies, fld: Path, restart_policy: str) -> list:
    errs = []
    seen: set = set()
    for n, p in enumerate(lst(policies)):
        p = d(p)
        rn, rp = s(p.get("resourceName")), s(p.get("restartPolicy"))
        if rn in seen:
            errs.append(duplicate(fld.index(n), rn))
        seen.add(rn)
        if not rn:
            errs.append(required(fld))
        elif rn not in ("cpu", "memory"):
            errs.append(not_supported(fld, rn, ["cpu", "memory"]))
        if not rp:
            errs.append(required(fld))
        elif rp not in ("NotRequired", "RestartContainer"):
            errs.append(not_supported(fld, rp, ["NotRequired", "RestartContainer"]))
        if restart_policy == "Never" and rp != "NotRequired":
            errs.append(invalid(fld, rp, "must be 'NotRequired' when `restartPolicy` is 'Never'"))
    return errs


def _seccomp_profile(sp, fld: Path) -> list:
    if not isinstance(sp, dict):
        return []
    errs = []
    t = s(sp.get("type"))
    supported = ["Localhost", "RuntimeDefault", "Unconfined"]
    if not t:
        errs.append(required(fld.child("type"), "type is required when seccompProfile is set"))
    elif t not in supported:
        errs.append(not_supported(fld.child("type"), t, supported))
    if t == "Localhost":
        if not isinstance(sp.get("localhostProfile"), str):
            errs.append(required(fld.child("localhostProfile"), "must be set when seccomp type is Localhost"))
        else:
            errs += local_descending_path(sp["localhostProfile"], fld.child("localhostProfile"))
    elif sp.get("localhostProfile") is not None:
        errs.append(invalid(fld.child("localhostProfile"), GoValue(
            "core.SeccompProfile{Type:%s, LocalhostProfile:(*string)(...)}" % go_quote(t)),
            "can only be set when seccomp type is Localhost"))
    return errs


def _apparmor_profile(profile, fld: Path) -> list:
    if not isinstance(profile, dict):
        return []
    t = s(profile.get("type"))
    local = profile.get("localhostProfile")
    if t == "Localhost":
        if not isinstance(local, str):
            return [required(fld.child("localhostProfile"), "must be set when AppArmor type is Localhost")]
        errs = []
        if local.strip() != local:
            errs.append(invalid(fld.child("localhostProfile"), local, "must not be padded with whitespace"))
        elif not local:
            errs.append(required(fld.child("localhostProfile"), "must be set when AppArmor type is Localhost"))
        if len(local) > 4095:
            errs.append(too_long(fld.child("localhostProfile"), 4095))
        return errs
    if t in ("RuntimeDefault", "Unconfined"):
        if local is not None:
            return [invalid(fld.child("localhostProfile"), s(local), "can only be set when AppArmor type is Localhost")]
        return []
    if not t:
        return [required(fld.child("type"), "type is required when appArmorProfile is set")]
    return [not_supported(fld.child("type"), t, ["Localhost", "RuntimeDefault", "Unconfined"])]


def _container_security_context(sc, fld: Path, host_users: bool) -> list:
    if not isinstance(sc, dict):
        return []
    errs = []
    for key in ("runAsUser", "runAsGroup"):
        v = sc.get(key)
        if is_int(v):
            errs += [invalid(fld.child(key), v, m) for m in names.is_valid_user_id(v)]
    pm = sc.get("procMount")
    if isinstance(pm, str):
        if pm not in ("Default", "Unmasked"):
            errs.append(not_supported(fld.child("procMount"), pm, ["Default", "Unmasked"]))
        if host_users and pm == "Unmasked":
            errs.append(invalid(fld.child("procMount"), pm, "`hostUsers` must be false to use `Unmasked`"))
    errs += _seccomp_profile(sc.get("seccompProfile"), fld.child("seccompProfile"))
    if sc.get("allowPrivilegeEscalation") is False:
        shown = GoValue("core.SecurityContext{...}")
        if sc.get("privileged") is True:
            errs.append(invalid(fld, shown, "cannot set `allowPrivilegeEscalation` to false and `privileged` to true"))
        for cap in lst(d(sc.get("capabilities")).get("add")):
            if cap == "CAP_SYS_ADMIN":
                errs.append(invalid(fld, shown,
                                    "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN"))
    errs += _apparmor_profile(sc.get("appArmorProfile"), fld.child("appArmorProfile"))
    return errs


def _container_common(c: dict, volumes: dict, claim_names: set, fld: Path, restart_policy: str,
                      host_users: bool) -> list:
    errs = []
    name = s(c.get("name"))
    if not name:
        errs.append(required(fld.child("name")))
    else:
        errs += [invalid(fld.child("name"), name, m) for m in names.is_dns1123_label(name)]
    if not s(c.get("image")):
        errs.append(required(fld.child("image")))
    tmp = s(c.get("terminationMessagePolicy"))
    if not tmp:
        errs.append(required(fld.child("terminationMessagePolicy")))
    elif tmp not in ("File", "FallbackToLogsOnError"):
        errs.append(not_supported(fld.child("terminationMessagePolicy"), tmp, ["File", "FallbackToLogsOnError"]))
    mounts = {s(d(m).get("name")): s(d(m).get("mountPath")) for m in lst(c.get("volumeMounts"))}
    devices = {s(d(x).get("name")): s(d(x).get("devicePath")) for x in lst(c.get("volumeDevices"))}
    errs += _container_ports(c.get("ports"), fld.child("ports"))
    errs += _env(c.get("env"), fld.child("env"))
    errs += _env_from(c.get("envFrom"), fld.child("envFrom"))
    errs += _volume_mounts(c.get("volumeMounts"), devices, volumes, c, fld.child("volumeMounts"))
    errs += _volume_devices(c.get("volumeDevices"), mounts, volumes, fld.child("volumeDevices"))
    errs += _pull_policy(s(c.get("imagePullPolicy")), fld.child("imagePullPolicy"))
    errs += validate_resource_requirements(c.get("resources"), fld.child("resources"), claim_names)
    errs += _resize_policy(c.get("resizePolicy"), fld.child("resizePolicy"), restart_policy)
    errs += _container_security_context(c.get("securityContext"), fld.child("securityContext"), host_users)
    return errs


def _handler(h: dict, grace, fld: Path, allow_sleep: bool) -> list:
    errs = []
    count = 0
    kinds = ["exec", "httpGet", "tcpSocket", "grpc"] + (["sleep"] if allow_sleep else [])
    for kind in kinds:
        action = h.get(kind)
        if not isinstance(action, dict):
            continue
        if count > 0:
            errs.append(forbidden(fld.child(kind), "may not specify more than 1 handler type"))
            continue
        count += 1
        p = fld.child(kind)
        if kind == "exec":
            if not lst(action.get("command")):
                errs.append(required(p.child("command")))
        elif kind == "httpGet":
            if not s(action.get("path")):
                errs.append(required(p.child("path")))
            errs += validate_port_num_or_name(action.get("port"), p.child("port"))
            scheme = s(action.get("scheme"))
            if scheme not in ("HTTP", "HTTPS"):
                errs.append(not_supported(p.child("scheme"), scheme, ["HTTP", "HTTPS"]))
            for header in lst(action.get("httpHeaders")):
                hn = s(d(header).get("name"))
                errs += [invalid(p.child("httpHeaders"), hn, m) for m in names.is_http_header_name(hn)]
        elif kind == "tcpSocket":
            errs += validate_port_num_or_name(action.get("port"), p.child("port"))
        elif kind == "grpc":
            errs += validate_port_num_or_name(i(action.get("port")), p.child("port"))
        elif kind == "sleep":
            secs = i(action.get("seconds"))
            if is_int(grace) and (secs <= 0 or secs > grace):
                errs.append(invalid(p, secs, "must be greater than 0 and less than terminationGracePeriodSeconds "
                                             f"({grace}). Enable AllowPodLifecycleSleepActionZeroValue feature "
                                             "gate for zero sleep."))
    if count == 0:
        errs.append(required(fld, "must specify a handler type"))
    return errs


def _lifecycle(lc, grace, fld: Path) -> list:
    errs = []
    for hook in ("postStart", "preStop"):
        if isinstance(d(lc).get(hook), dict):
            errs += _handler(lc[hook], grace, fld.child(hook), True)
    return errs


def _probe(probe, grace, fld: Path, kind: str) -> list:
    if not isinstance(probe, dict):
        return []
    errs = _handler(probe, grace, fld, False)
    for key in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"):
        errs += validate_nonnegative(probe.get(key), fld.child(key))
    tgp = probe.get("terminationGracePeriodSeconds")
    if is_int(tgp) and tgp <= 0:
        errs.append(invalid(fld.child("terminationGracePeriodSeconds"), tgp, "must be greater than 0"))
    if kind in ("liveness", "startup") and i(probe.get("successThreshold")) != 1:
        errs.append(invalid(fld.child("successThreshold"), i(probe.get("successThreshold")), "must be 1"))
    if kind == "readiness" and tgp is not None:
        errs.append(invalid(fld.child("terminationGracePeriodSeconds"), tgp, "must not be set for readinessProbes"))
    return errs


def _host_port_conflicts(containers: list, fld: Path, seen: set | None = None) -> list:
    errs = []
    seen = set() if seen is None else seen
    for ci, c in enumerate(containers):
        for pi, port in enumerate(lst(d(c).get("ports"))):
            port = d(port)
            hp = i(port.get("hostPort"))
            if hp == 0:
                continue
            key = f"{s(port.get('protocol'))}/{s(port.get('hostIP'))}/{hp}"
            if key in seen:
                errs.append(duplicate(fld.index(ci).child("ports").index(pi).child("hostPort"), key))
            else:
                seen.add(key)
    return errs


def _containers(containers, volumes, claim_names, grace, fld: Path, restart_policy: str, host_users: bool) -> list:
    items = [d(c) for c in lst(containers)]
    if not items:
        return [required(fld)]
    errs = []
    seen: set = set()
    for n, c in enumerate(items):
        p = fld.index(n)
        errs += _container_common(c, volumes, claim_names, p, restart_policy, host_users)
        name = s(c.get("name"))
        if name in seen:
            errs.append(duplicate(p.child("name"), name))
        else:
            seen.add(name)
        if isinstance(c.get("lifecycle"), dict):
            errs += _lifecycle(c["lifecycle"], grace, p.child("lifecycle"))
        errs += _probe(c.get("livenessProbe"), grace, p.child("livenessProbe"), "liveness")
        errs += _probe(c.get("readinessProbe"), grace, p.child("readinessProbe"), "readiness")
        errs += _probe(c.get("startupProbe"), grace, p.child("startupProbe"), "startup")
        if c.get("restartPolicy") is not None:
            errs.append(forbidden(p.child("restartPolicy"), "may not be set for non-init containers"))
    return errs + _host_port_conflicts(items, fld)


def _init_containers(inits, regular, volumes, claim_names, grace, fld: Path, restart_policy: str,
                     host_users: bool) -> list:
    errs = []
    all_names = {s(d(c).get("name")) for c in lst(regular)}
    for n, c in enumerate(lst(inits)):
        c = d(c)
        p = fld.index(n)
        errs += _container_common(c, volumes, claim_names, p, restart_policy, host_users)
        restart_always = False
        crp = c.get("restartPolicy")
        if crp is not None:
            if crp != "Always":
                errs.append(not_supported(p.child("restartPolicy"), s(crp), ["Always"]))
            restart_always = crp == "Always"
        name = s(c.get("name"))
        if name in all_names:
            errs.append(duplicate(p.child("name"), name))
        elif name:
            all_names.add(name)
        errs += _host_port_conflicts([c], fld)
        if restart_always:
            if isinstance(c.get("lifecycle"), dict):
                errs += _lifecycle(c["lifecycle"], grace, p.child("lifecycle"))
            errs += _probe(c.get("livenessProbe"), grace, p.child("livenessProbe"), "liveness")
            errs += _probe(c.get("readinessProbe"), grace, p.child("readinessProbe"), "readiness")
            errs += _probe(c.get("startupProbe"), grace, p.child("startupProbe"), "startup")
        else:
            for key in ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe"):
                if c.get(key) is not None:
                    errs.append(forbidden(p.child(key), "may not be set for init containers without restartPolicy=Always"))
        if lst(c.get("resizePolicy")):
            errs.append(invalid(p.child("resizePolicy"), GoValue("[]core.ContainerResizePolicy{...}"),
                                "must not be set for init containers"))
    return errs


_EPHEMERAL_FORBIDDEN = ("ports", "resources", "livenessProbe", "readinessProbe", "startupProbe", "lifecycle",
                        "resizePolicy", "restartPolicy")


def _ephemeral_containers(ephemerals, containers, inits, volumes, claim_names, fld: Path, restart_policy: str,
                          host_users: bool) -> list:
    errs = []
    other = {s(d(c).get("name")) for c in lst(containers) + lst(inits)}
    all_names = set(other)
    for n, ec in enumerate(lst(ephemerals)):
        ec = d(ec)
        p = fld.index(n)
        errs += _container_common(ec, volumes, claim_names, p, restart_policy, host_users)
        errs += _image_whitespace(ec, p)
        name = s(ec.get("name"))
        if name in all_names:
            errs.append(duplicate(p.child("name"), name))
        else:
            all_names.add(name)
        target = s(ec.get("targetContainerName"))
        if target and target not in other:
            errs.append(not_found(p.child("targetContainerName"), target))
        for key in _EPHEMERAL_FORBIDDEN:
            if ec.get(key) not in (None, {}, [], ""):
                errs.append(forbidden(p.child(key), "cannot be set for an Ephemeral Container"))
        for m, vm in enumerate(lst(ec.get("volumeMounts"))):
            for key in ("subPath", "subPathExpr"):
                if s(d(vm).get(key)):
                    errs.append(forbidden(p.child("volumeMounts").index(m).child(key),
                                          "cannot be set for an Ephemeral Container"))
    return errs


def _image_whitespace(c: dict, fld: Path) -> list:
    image = s(c.get("image"))
    if image != image.strip():
        return [invalid(fld.child("image"), image, "must not have leading or trailing whitespace")]
    return []


# ---- pod spec -------------------------------------------------------------------------

def _node_selector_requirement(rq: dict, fld: Path, allow_invalid_values: bool) -> list:
    errs = []
    op = s(rq.get("operator"))
    values = lst(rq.get("values"))
    if op in ("In", "NotIn"):
        if not values:
            errs.append(required(fld.child("values"), "must be specified when `operator` is 'In' or 'NotIn'"))
    elif op in ("Exists", "DoesNotExist"):
        if values:
            errs.append(forbidden(fld.child("values"),
                                  "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
    elif op in ("Gt", "Lt"):
        if len(values) != 1:
            errs.append(required(fld.child("values"), "must be specified single value when `operator` is 'Lt' or 'Gt'"))
    else:
        errs.append(invalid(fld.child("operator"), op, "not a valid selector operator"))
    errs += validate_label_name(s(rq.get("key")), fld.child("key"))
    if not allow_invalid_values:
        for n, v in enumerate(values):
            errs += [invalid(fld.child("values").index(n), s(v), m) for m in names.is_valid_label_value(s(v))]
    return errs


def _node_selector_term(term: dict, fld: Path, allow_invalid_values: bool) -> list:
    errs = []
    for n, rq in dicts(term.get("matchExpressions")):
        errs += _node_selector_requirement(rq, fld.child("matchExpressions").index(n), allow_invalid_values)
    for n, rq in dicts(term.get("matchFields")):
        p = fld.child("matchFields").index(n)
        op = s(rq.get("operator"))
        values = lst(rq.get("values"))
        if op in ("In", "NotIn"):
            if len(values) != 1:
                errs.append(required(p.child("values"),
                                     "must be only one value when `operator` is 'In' or 'NotIn' for node field selector"))
        else:
            errs.append(invalid(p.child("operator"), op, "not a valid selector operator"))
        if s(rq.get("key")) != "metadata.name":
            errs.append(invalid(p.child("key"), s(rq.get("key")), "not a valid field selector key"))
        else:
            for k, v in enumerate(values):
                errs += [invalid(p.child("values").index(k), s(v), m)
                         for m in names.name_is_dns_subdomain(s(v), False)]
    return errs


def validate_node_selector(sel: dict, fld: Path, allow_invalid_values: bool = False) -> list:
    terms = lst(sel.get("nodeSelectorTerms"))
    if not terms:
        return [required(fld.child("nodeSelectorTerms"), "must have at least one node selector term")]
    errs = []
    for n, term in enumerate(terms):
        errs += _node_selector_term(d(term), fld.child("nodeSelectorTerms").index(n), allow_invalid_values)
    return errs


def _pod_affinity_term(term: dict, fld: Path) -> list:
    errs = validate_label_selector(term.get("labelSelector"), fld.child("labelSelector"))
    errs += validate_label_selector(term.get("namespaceSelector"), fld.child("namespaceSelector"))
    for ns in lst(term.get("namespaces")):
        errs += [invalid(fld.child("namespace"), s(ns), m) for m in names.name_is_dns_label(s(ns), False)]
    selector = term.get("labelSelector")
    for key in ("matchLabelKeys", "mismatchLabelKeys"):
        keys = lst(term.get(key))
        if keys and not isinstance(selector, dict):
            errs.append(forbidden(fld.child(key), "must not be specified when labelSelector is not set"))
        elif keys:
            for n, k in enumerate(keys):
                errs += validate_label_name(s(k), fld.child(key).index(n))
    topology = s(term.get("topologyKey"))
    if not topology:
        errs.append(required(fld.child("topologyKey"), "can not be empty"))
    return errs + validate_label_name(topology, fld.child("topologyKey"))


def _affinity(aff, fld: Path) -> list:
    aff = d(aff)
    errs = []
    na = aff.get("nodeAffinity")
    if isinstance(na, dict):
        p = fld.child("nodeAffinity")
        req = na.get("requiredDuringSchedulingIgnoredDuringExecution")
        if isinstance(req, dict):
            errs += validate_node_selector(req, p.child("requiredDuringSchedulingIgnoredDuringExecution"))
        for n, term in dicts(na.get("preferredDuringSchedulingIgnoredDuringExecution")):
            tp = p.child("preferredDuringSchedulingIgnoredDuringExecution").index(n)
            weight = i(term.get("weight"))
            if weight <= 0 or weight > 100:
                errs.append(invalid(tp.child("weight"), weight, "must be in the range 1-100"))
            errs += _node_selector_term(d(term.get("preference")), tp.child("preference"), True)
    for kind in ("podAffinity", "podAntiAffinity"):
        pa = aff.get(kind)
        if not isinstance(pa, dict):
            continue
        p = fld.child(kind)
        for n, term in dicts(pa.get("requiredDuringSchedulingIgnoredDuringExecution")):
            errs += _pod_affinity_term(term, p.child("requiredDuringSchedulingIgnoredDuringExecution").index(n))
        for n, term in dicts(pa.get("preferredDuringSchedulingIgnoredDuringExecution")):
            tp = p.child("preferredDuringSchedulingIgnoredDuringExecution").index(n)
            weight = i(term.get("weight"))
            if weight <= 0 or weight > 100:
                errs.append(invalid(tp.child("weight"), weight, "must be in the range 1-100"))
            errs += _pod_affinity_term(d(term.get("podAffinityTerm")), tp.child("podAffinityTerm"))
    return errs


def validate_tolerations(tolerations, fld: Path) -> list:
    errs = []
    for n, t in enumerate(lst(tolerations)):
        t = d(t)
        p = fld.index(n)
        key, op, value, effect = s(t.get("key")), s(t.get("operator")), s(t.get("value")), s(t.get("effect"))
        if key:
            errs += validate_label_name(key, p.child("key"))
        if not key and op != "Exists":
            errs.append(invalid(p.child("operator"), op,
                                'operator must be Exists when `key` is empty, which means "match all values and all keys"'))
        if t.get("tolerationSeconds") is not None and effect != "NoExecute":
            errs.append(invalid(p.child("effect"), effect, "effect must be 'NoExecute' when `tolerationSeconds` is set"))
        if op in ("Equal", ""):
            msgs = names.is_valid_label_value(value)
            if msgs:
                errs.append(invalid(p.child("operator"), value, ";".join(msgs)))
        elif op == "Exists":
            if value:
                errs.append(invalid(p.child("operator"), value, "value must be empty when `operator` is 'Exists'"))
        else:
            errs.append(not_supported(p.child("operator"), op, ["Equal", "Exists"]))
        if effect and effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            errs.append(not_supported(p.child("effect"), effect, ["NoSchedule", "PreferNoSchedule", "NoExecute"]))
    return errs


def _dns_config(cfg, policy: str, fld: Path) -> list:
    errs = []
    if policy == "None":
        if not isinstance(cfg, dict):
            return [required(fld, "must provide `dnsConfig` when `dnsPolicy` is None")]
        if not lst(cfg.get("nameservers")):
            return [required(fld.child("nameservers"),
                             "must provide at least one DNS nameserver when `dnsPolicy` is None")]
    if not isinstance(cfg, dict):
        return errs
    servers = lst(cfg.get("nameservers"))
    if len(servers) > 3:
        errs.append(invalid(fld.child("nameservers"), [s(x) for x in servers], "must not have more than 3 nameservers"))
    for n, ns in enumerate(servers):
        if names.parse_ip(s(ns)) is None:
            errs.append(invalid(fld.child("nameservers").index(n), s(ns),
                                "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"))
    searches = [s(x) for x in lst(cfg.get("searches"))]
    if len(searches) > 32:
        errs.append(invalid(fld.child("searches"), searches, "must not have more than 32 search paths"))
    if len(" ".join(searches)) > 2048:
        errs.append(invalid(fld.child("searches"), searches,
                            "must not have more than 2048 characters (including spaces) in the search list"))
    for n, search in enumerate(searches):
        search = search[:-1] if search.endswith(".") else search
        errs += [invalid(fld.child("searches").index(n), search, m) for m in names.is_dns1123_subdomain(search)]
    for n, opt in enumerate(lst(cfg.get("options"))):
        if not s(d(opt).get("name")):
            errs.append(required(fld.child("options").index(n), "must not be empty"))
    return errs


_SYSCTL_SEGMENT = "[a-z0-9]([-_a-z0-9]*[a-z0-9])?"
_SYSCTL_NAME = re.compile(f"^({_SYSCTL_SEGMENT}[\\./])*{_SYSCTL_SEGMENT}$")


def _pod_security_context(sc, fld: Path) -> list:
    if not isinstance(sc, dict):
        return []
    errs = []
    for key in ("fsGroup", "runAsUser", "runAsGroup"):
        v = sc.get(key)
        if is_int(v):
            errs += [invalid(fld.child(key), v, m) for m in names.is_valid_user_id(v)]
    for n, gid in enumerate(lst(sc.get("supplementalGroups"))):
        if is_int(gid):
            errs += [invalid(fld.child("supplementalGroups").index(n), gid, m) for m in names.is_valid_group_id(gid)]
    seen: set = set()
    for n, sysctl in enumerate(lst(sc.get("sysctls"))):
        name = s(d(sysctl).get("name"))
        p = fld.child("sysctls").index(n).child("name")
        if not name:
            errs.append(required(p))
        elif len(name) > 253 or not _SYSCTL_NAME.match(name):
            errs.append(invalid(p, name, f"must have at most 253 characters and match regex {_SYSCTL_NAME.pattern}"))
        elif name in seen:
            errs.append(duplicate(p, name))
        seen.add(name)
    policy = sc.get("fsGroupChangePolicy")
    if isinstance(policy, str) and policy not in ("Always", "OnRootMismatch"):
        errs.append(not_supported(fld.child("fsGroupChangePolicy"), policy, ["Always", "OnRootMismatch"]))
    errs += _seccomp_profile(sc.get("seccompProfile"), fld.child("seccompProfile"))
    errs += _apparmor_profile(sc.get("appArmorProfile"), fld.child("appArmorProfile"))
    return errs


def _topology_spread(constraints, fld: Path) -> list:
    errs = []
    items = [d(c) for c in lst(constraints)]
    for n, c in enumerate(items):
        p = fld.index(n)
        skew = i(c.get("maxSkew"))
        if skew <= 0:
            errs.append(invalid(p.child("maxSkew"), skew, "must be greater than zero"))
        if not s(c.get("topologyKey")):
            errs.append(required(p.child("topologyKey"), "can not be empty"))
        action = s(c.get("whenUnsatisfiable"))
        if action not in ("DoNotSchedule", "ScheduleAnyway"):
            errs.append(not_supported(p.child("whenUnsatisfiable"), action, ["DoNotSchedule", "ScheduleAnyway"]))
        for rest in items[n + 1:]:
            if s(rest.get("topologyKey")) == s(c.get("topologyKey")) and s(rest.get("whenUnsatisfiable")) == action:
                errs.append(duplicate(p.child("{topologyKey, whenUnsatisfiable}"),
                                      f"{{{s(c.get('topologyKey'))}, {action}}}"))
                break
        md = c.get("minDomains")
        if md is not None:
            if i(md) <= 0:
                errs.append(invalid(p.child("minDomains"), i(md), "must be greater than zero"))
            if action != "DoNotSchedule":
                errs.append(invalid(p.child("minDomains"), i(md),
                                    f"can only use minDomains if whenUnsatisfiable=DoNotSchedule, not {action}"))
        for key in ("nodeAffinityPolicy", "nodeTaintsPolicy"):
            v = c.get(key)
            if isinstance(v, str) and v not in ("Honor", "Ignore"):
                errs.append(not_supported(p.child(key), v, ["Honor", "Ignore"]))
        errs += validate_label_selector(c.get("labelSelector"), p.child("labelSelector"))
    return errs


def validate_pod_spec(spec: dict, pod_meta, fld: Path, opts: PodOptions) -> list:
    errs = []
    grace = spec.get("terminationGracePeriodSeconds")
    if grace is None:
        errs.append(required(fld.child("terminationGracePeriodSeconds")))
    grace = grace if is_int(grace) else None
    sc = d(spec.get("securityContext"))
    host_users = sc.get("hostUsers") is not False
    restart_policy = s(spec.get("restartPolicy"))
    volumes, verrs = validate_volumes(spec.get("volumes"), pod_meta, fld.child("volumes"), opts)
    errs += verrs
    claim_names = {s(d(c).get("name")) for c in lst(spec.get("resourceClaims")) if s(d(c).get("name"))}
    seen_claims: set = set()
    for n, claim in dicts(spec.get("resourceClaims")):
        p = fld.child("resourceClaims").index(n)
        name = s(claim.get("name"))
        if not name:
            errs.append(required(p.child("name")))
        elif name in seen_claims:
            errs.append(duplicate(p.child("name"), name))
        else:
            errs += [invalid(p.child("name"), name, m) for m in names.is_dns1123_label(name)]
            seen_claims.add(name)
    errs += _containers(spec.get("containers"), volumes, claim_names, grace, fld.child("containers"),
                        restart_policy, host_users)
    errs += _init_containers(spec.get("initContainers"), spec.get("containers"), volumes, claim_names, grace,
                             fld.child("initContainers"), restart_policy, host_users)
    errs += _ephemeral_containers(spec.get("ephemeralContainers"), spec.get("containers"),
                                  spec.get("initContainers"), volumes, claim_names,
                                  fld.child("ephemeralContainers"), restart_policy, host_users)
    if spec.get("hostNetwork") is True:
        for n, c in dicts(spec.get("containers")):
            for k, port in dicts(c.get("ports")):
                hp, cp = i(port.get("hostPort")), i(port.get("containerPort"))
                if (opts.resource_is_pod or hp != 0) and hp != cp:
                    errs.append(invalid(fld.child("containers").index(n).child("ports").index(k).child("hostPort"),
                                        hp, "must match `containerPort` when `hostNetwork` is true"))
    if restart_policy not in ("Always", "OnFailure", "Never"):
        errs.append(required(fld.child("restartPolicy")) if not restart_policy else
                    not_supported(fld.child("restartPolicy"), restart_policy, ["Always", "OnFailure", "Never"]))
    dns_policy = s(spec.get("dnsPolicy"))
    dns_policies = ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"]
    if dns_policy not in dns_policies:
        errs.append(required(fld.child("dnsPolicy")) if not dns_policy else
                    not_supported(fld.child("dnsPolicy"), dns_policy, dns_policies))
    errs += validate_labels(spec.get("nodeSelector"), fld.child("nodeSelector"))
    errs += _pod_security_context(spec.get("securityContext"), fld.child("securityContext"))
    for n, ref in enumerate(lst(spec.get("imagePullSecrets"))):
        if isinstance(ref, dict) and set(ref) - {"name"}:
            errs.append(invalid(fld.child("imagePullSecrets").index(n),
                                GoValue("core.LocalObjectReference{Name:%s}" % go_quote(s(ref.get("name")))),
                                "only name may be set"))
    errs += _affinity(spec.get("affinity"), fld.child("affinity"))
    errs += _dns_config(spec.get("dnsConfig"), dns_policy, fld.child("dnsConfig"))
    for n, gate in enumerate(lst(spec.get("readinessGates"))):
        errs += validate_qualified_name(s(d(gate).get("conditionType")),
                                        fld.child("readinessGates").index(n).child("conditionType"))
    seen_gates: set = set()
    for n, gate in enumerate(lst(spec.get("schedulingGates"))):
        name = s(d(gate).get("name"))
        errs += validate_qualified_name(name, fld.child("schedulingGates").index(n))
        if name in seen_gates:
            errs.append(duplicate(fld.child("schedulingGates").index(n), name))
        seen_gates.add(name)
    errs += _topology_spread(spec.get("topologySpreadConstraints"), fld.child("topologySpreadConstraints"))
    if sc.get("hostUsers") is False:
        for key, shown in (("hostNetwork", "hostNetwork"), ("hostPID", "HostPID"), ("hostIPC", "HostIPC")):
            if spec.get(key) is True:
                errs.append(forbidden(fld.child(shown), "when `pod.Spec.HostUsers` is false"))
    for key, fn in (("serviceAccountName", names.name_is_dns_subdomain), ("nodeName", names.name_is_dns_subdomain)):
        value = s(spec.get(key))
        if value:
            errs += [invalid(fld.child(key), value, m) for m in fn(value, False)]
    ads = spec.get("activeDeadlineSeconds")
    if is_int(ads) and (ads < 1 or ads > MAX_INT32):
        errs.append(invalid(fld.child("activeDeadlineSeconds"), ads, names.inclusive_range_error(1, MAX_INT32)))
    for key in ("hostname", "subdomain"):
        value = s(spec.get(key))
        if value:
            errs += [invalid(fld.child(key), value, m) for m in names.is_dns1123_label(value)]
    errs += validate_tolerations(spec.get("tolerations"), fld.child("tolerations"))
    for n, alias in dicts(spec.get("hostAliases")):
        p = fld.child("hostAliases").index(n)
        if names.parse_ip(s(alias.get("ip"))) is None:
            errs.append(invalid(p.child("ip"), s(alias.get("ip")),
                                "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"))
        for k, host in enumerate(lst(alias.get("hostnames"))):
            errs += [invalid(p.child("hostnames").index(k), s(host), m) for m in names.is_dns1123_subdomain(s(host))]
    pcn = s(spec.get("priorityClassName"))
    if pcn:
        errs += [invalid(fld.child("priorityClassName"), pcn, m) for m in names.name_is_dns_subdomain(pcn, False)]
    rcn = spec.get("runtimeClassName")
    if isinstance(rcn, str):
        errs += [invalid(fld.child("runtimeClassName"), rcn, m) for m in names.name_is_dns_subdomain(rcn, False)]
    pp = spec.get("preemptionPolicy")
    if isinstance(pp, str):
        errs += validate_preemption_policy(pp, fld.child("preemptionPolicy"))
    if isinstance(spec.get("overhead"), dict):
        errs += validate_resource_requirements({"limits": spec["overhead"]}, fld.child("overhead"), claim_names)
    os_ = spec.get("os")
    if isinstance(os_, dict):
        name = s(os_.get("name"))
        if not name:
            errs.append(required(fld.child("os", "name"), "cannot be empty"))
        elif name not in ("linux", "windows"):
            errs.append(not_supported(fld.child("os"), name, ["linux", "windows"]))
    return errs


def validate_preemption_policy(policy: str, fld: Path) -> list:
    if policy in ("PreemptLowerPriority", "Never"):
        return []
    if not policy:
        return [required(fld)]
    return [not_supported(fld, policy, ["PreemptLowerPriority", "Never"])]


def _seccomp_annotation(value: str, fld: Path) -> list:
    if value in ("runtime/default", "docker/default", "unconfined"):
        return []
    if value.startswith("localhost/"):
        return local_descending_path(value[len("localhost/"):], fld)
    return [invalid(fld, value, "must be a valid seccomp profile")]


def _container_names(spec: dict) -> set:
    return {s(d(c).get("name")) for key in ("initContainers", "containers", "ephemeralContainers")
            for c in lst(spec.get(key))}


def validate_pod_specific_annotations(annotations, spec: dict, fld: Path, resource_is_pod: bool) -> list:
    ann = strmap(annotations)
    errs = []
    if MIRROR_ANNOTATION in ann and not s(spec.get("nodeName")):
        errs.append(invalid(fld.key(MIRROR_ANNOTATION), ann[MIRROR_ANNOTATION],
                            "must set spec.nodeName if mirror pod annotation is set"))
    if DELETION_COST_ANNOTATION in ann:
        value = ann[DELETION_COST_ANNOTATION]
        try:
            ok = -(2 ** 31) <= int(value, 10) < 2 ** 31 and value.strip() == value
        except ValueError:
            ok = False
        if not ok:
            errs.append(invalid(fld.key(DELETION_COST_ANNOTATION), value, "must be a 32bit integer"))
    if SECCOMP_POD_ANNOTATION in ann:
        errs += _seccomp_annotation(ann[SECCOMP_POD_ANNOTATION], fld.child(SECCOMP_POD_ANNOTATION))
    for k, v in ann.items():
        if k.startswith(SECCOMP_CONTAINER_PREFIX):
            errs += _seccomp_annotation(v, fld.child(k))
    containers = _container_names(spec)
    for k, v in ann.items():
        if not k.startswith(APPARMOR_PREFIX):
            continue
        cname = k[len(APPARMOR_PREFIX):]
        if cname not in containers:
            errs.append(invalid(fld.key(k), cname, "container not found"))
        if v not in ("", "runtime/default", "unconfined") and not v.startswith("localhost/"):
            errs.append(invalid(fld.key(k), v, f"invalid AppArmor profile name: {go_quote(v)}"))
    return errs


def validate_pod_template_spec(template, fld: Path, opts: PodOptions | None = None) -> list:
    """ValidatePodTemplateSpec: labels, annotations and the pod spec of a template."""
    opts = opts or PodOptions()
    template = d(template)
    meta = d(template.get("metadata"))
    spec = d(template.get("spec"))
    errs = validate_labels(meta.get("labels"), fld.child("labels"))
    errs += validate_annotations(meta.get("annotations"), fld.child("annotations"))
    errs += validate_pod_specific_annotations(meta.get("annotations"), spec, fld.child("annotations"), False)
    errs += validate_pod_spec(spec, None, fld.child("spec"), opts)
    if lst(spec.get("ephemeralContainers")):
        errs.append(forbidden(fld.child("spec", "ephemeralContainers"), "ephemeral containers not allowed in pod template"))
    return errs


def validate_pod_create(pod: dict) -> list:
    spec = d(pod.get("spec"))
    errs = validate_pod_create_like(pod)
    if lst(spec.get("ephemeralContainers")):
        errs.append(forbidden(path("spec", "ephemeralContainers"), "cannot be set on create"))
    if s(spec.get("nodeName")) and lst(spec.get("schedulingGates")):
        errs.append(forbidden(path("spec", "nodeName"), "cannot be set until all schedulingGates have been cleared"))
    return errs


_UPDATABLE = ",".join([
    "`spec.containers[*].image`",
    "`spec.initContainers[*].image`",
    "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
])


def _only_added_tolerations(new, old, fld: Path) -> list:
    new_items = [d(t) for t in lst(new)]
    for t in lst(old):
        t = d(t)
        base = {k: v for k, v in t.items() if k != "tolerationSeconds"}
        if not any({k: v for k, v in n.items() if k != "tolerationSeconds"} == base for n in new_items):
            return [forbidden(fld, "existing toleration can not be modified except its tolerationSeconds")]
    return validate_tolerations(new, fld)


def _spec_diff(old: dict, new: dict) -> str:
    """What changed, one field per line (upstream prints a cmp.Diff here)."""
    lines = ["  core.PodSpec{"]
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            lines.append(f"-\t{key}: {old.get(key)!r},")
            lines.append(f"+\t{key}: {new.get(key)!r},")
    lines.append("  }")
    return "\n".join(lines)


def validate_pod_update(new: dict, old: dict) -> list:
    from k8py.api.validation.meta import validate_object_meta_update
    errs = validate_object_meta_update(new, old)
    errs += validate_pod_create_like(new)
    ns, os_ = d(new.get("spec")), d(old.get("spec"))
    errs += _pod_annotation_updates(new, old)
    sp = path("spec")
    for key in ("containers", "initContainers"):
        nc, oc = lst(ns.get(key)), lst(os_.get(key))
        if len(nc) != len(oc):
            errs.append(forbidden(sp.child(key), "pod updates may not add or remove containers"))
            return errs
        for n, c in enumerate(nc):
            image = s(d(c).get("image"))
            if not image:
                errs.append(required(sp.child(key).index(n).child("image")))
            if image.strip() != image:
                errs.append(invalid(sp.child(key).index(n).child("image"), image,
                                    "must not have leading or trailing whitespace"))
    nads, oads = ns.get("activeDeadlineSeconds"), os_.get("activeDeadlineSeconds")
    if nads is not None:
        if not is_int(nads) or nads < 0 or nads > MAX_INT32:
            errs.append(invalid(sp.child("activeDeadlineSeconds"), nads, names.inclusive_range_error(0, MAX_INT32)))
            return errs
        if is_int(oads) and oads < nads:
            errs.append(invalid(sp.child("activeDeadlineSeconds"), nads, "must be less than or equal to previous value"))
            return errs
    elif oads is not None:
        errs.append(invalid(sp.child("activeDeadlineSeconds"), None, "must not update from a positive integer to nil value"))
    errs += _only_added_tolerations(ns.get("tolerations"), os_.get("tolerations"), sp.child("tolerations"))
    old_gates = {s(d(g).get("name")) for g in lst(os_.get("schedulingGates"))}
    if lst(ns.get("schedulingGates")):
        for n, g in enumerate(lst(ns.get("schedulingGates"))):
            name = s(d(g).get("name"))
            if name not in old_gates:
                errs.append(forbidden(sp.child("schedulingGates").index(n).child("name"),
                                      f"only deletion is allowed, but found new scheduling gate '{name}'"))
    if ns == os_:
        return errs
    munged = dict(ns)
    for key in ("containers", "initContainers"):
        if key not in ns:
            continue
        olds = lst(os_.get(key))
        merged = []
        for n, c in enumerate(lst(ns.get(key))):
            c = dict(d(c))
            old_c = d(olds[n]) if n < len(olds) else {}
            if "image" in old_c:
                c["image"] = old_c["image"]
            else:
                c.pop("image", None)
            merged.append(c)
        munged[key] = merged
    for key in ("activeDeadlineSeconds", "schedulingGates", "tolerations"):
        if key in os_:
            munged[key] = os_[key]
        else:
            munged.pop(key, None)
    otgp, ntgp = os_.get("terminationGracePeriodSeconds"), munged.get("terminationGracePeriodSeconds")
    if is_int(otgp) and otgp < 0 and ntgp == 1:
        munged["terminationGracePeriodSeconds"] = otgp
    if lst(os_.get("schedulingGates")):
        # gated pods may gain node selectors and node affinity terms
        if d(munged.get("nodeSelector")) != d(os_.get("nodeSelector")):
            for k, v in strmap(os_.get("nodeSelector")).items():
                if strmap(munged.get("nodeSelector")).get(k) != v:
                    errs.append(invalid(sp.child("nodeSelector"), strmap(munged.get("nodeSelector")),
                                        "only additions to spec.nodeSelector are allowed (no mutations or deletions)"))
                    break
            if "nodeSelector" in os_:
                munged["nodeSelector"] = os_["nodeSelector"]
            else:
                munged.pop("nodeSelector", None)
    if _normalize(munged) != _normalize(os_):
        errs.append(forbidden(sp, f"pod updates may not change fields other than {_UPDATABLE}\n"
                                  + _spec_diff(_normalize(os_), _normalize(munged))))
    return errs


def _normalize(spec: dict) -> dict:
    """Empty lists and maps equal absent ones, as in Go's semantic DeepEqual of nil vs empty."""
    return {k: v for k, v in spec.items() if v not in (None, [], {})}


def validate_pod_create_like(pod: dict) -> list:
    """validatePodMetadataAndSpec (without the create-only checks)."""
    from k8py.api.validation.meta import validate_object_meta
    meta = d(pod.get("metadata"))
    spec = d(pod.get("spec"))
    opts = PodOptions(resource_is_pod=True)
    errs = validate_object_meta(pod, True, names.name_is_dns_subdomain)
    errs += validate_pod_specific_annotations(meta.get("annotations"), spec, path("metadata", "annotations"), True)
    errs += validate_pod_spec(spec, meta, path("spec"), opts)
    for key in ("containers", "initContainers"):
        for n, c in dicts(spec.get(key)):
            errs += _image_whitespace(c, path("spec", key).index(n))
    return errs


def _pod_annotation_updates(new: dict, old: dict) -> list:
    na, oa = strmap(d(new.get("metadata")).get("annotations")), strmap(d(old.get("metadata")).get("annotations"))
    fld = path("metadata", "annotations")
    errs = []
    for k, v in oa.items():
        if na.get(k) == v and k in na:
            continue
        if k.startswith(APPARMOR_PREFIX):
            errs.append(forbidden(fld.key(k), "may not remove or update AppArmor annotations"))
        if k == MIRROR_ANNOTATION:
            errs.append(forbidden(fld.key(k), "may not remove or update mirror pod annotation"))
    for k in na:
        if k in oa:
            continue
        if k.startswith(APPARMOR_PREFIX):
            errs.append(forbidden(fld.key(k), "may not add AppArmor annotations"))
        if k == MIRROR_ANNOTATION:
            errs.append(forbidden(fld.key(k), "may not add mirror pod annotation"))
    return errs


def validate_pod_status_update(new: dict, old: dict) -> list:
    from k8py.api.validation.meta import validate_object_meta_update
    errs = validate_object_meta_update(new, old)
    errs += _pod_annotation_updates(new, old)
    ns, os_ = d(new.get("spec")), d(old.get("spec"))
    nst, ost = d(new.get("status")), d(old.get("status"))
    for n, cond in dicts(nst.get("conditions")):
        t = s(cond.get("type"))
        if t not in ("PodScheduled", "Ready", "Initialized"):
            errs += validate_qualified_name(t, path("metadata", "conditions").index(n).child("Type"))
    if s(ns.get("nodeName")) != s(os_.get("nodeName")):
        errs.append(forbidden(path("status", "nodeName"), "may not be changed directly"))
    nominated = s(nst.get("nominatedNodeName"))
    if nominated and nominated != s(ost.get("nominatedNodeName")):
        errs += [invalid(path("status", "nominatedNodeName"), nominated, m)
                 for m in names.name_is_dns_subdomain(nominated, False)]
    if s(nst.get("qosClass")) != s(ost.get("qosClass")):
        errs.append(invalid(path("status", "qosClass"), s(nst.get("qosClass")), "field is immutable"))
    for n, ip in dicts(nst.get("podIPs")):
        if names.parse_ip(s(ip.get("ip"))) is None:
            errs.append(invalid(path("status", "podIPs").index(n), s(ip.get("ip")),
                                "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"))
    return errs




def validate_ephemeral_containers_update(new: dict, old: dict) -> list:
    """The pods/ephemeralcontainers subresource: ephemeral containers may only be added."""
    from k8py.api.validation.meta import validate_object_meta_update
    errs = validate_object_meta_update(new, old)
    errs += validate_pod_create_like(new)
    errs += _pod_annotation_updates(new, old)
    if MIRROR_ANNOTATION in strmap(d(old.get("metadata")).get("annotations")):
        return [forbidden(path(""), "static pods do not support ephemeral containers")]
    fld = path("spec", "ephemeralContainers")
    current = {s(d(c).get("name")): d(c) for c in lst(d(new.get("spec")).get("ephemeralContainers"))}
    for c in lst(d(old.get("spec")).get("ephemeralContainers")):
        c = d(c)
        name = s(c.get("name"))
        if name not in current:
            errs.append(forbidden(fld, f"existing ephemeral containers {go_quote(name)} may not be removed\n"))
        elif current[name] != c:
            errs.append(forbidden(fld, f"existing ephemeral containers {go_quote(name)} may not be changed\n"
                                       + _spec_diff(c, current[name])))
    return errs
