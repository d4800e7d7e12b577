"""Defaults for the core ("") group (pkg/apis/core/v1/defaults.go and the
declarative `+default` markers of k8s.io/api/core/v1), in wire form.

Besides defaults proper, a few fields that Go always serialises even when
empty are filled in (`resources: {}` on containers, `creationTimestamp: null`
in templates, zero status counters), because `kubectl get -o yaml` shows
them on a real cluster.
"""

from __future__ import annotations

import re

from k8py.apimachinery import quantity

DEFAULT_MODE = 0o644  # 420: secret, configMap, downwardAPI and projected volumes
TERMINATION_MESSAGE_PATH = "/dev/termination-log"
METADATA_NAME_LABEL = "kubernetes.io/metadata.name"
CLIENT_IP_AFFINITY_SECONDS = 10800
_VOLUME_SOURCES = (
    "hostPath", "emptyDir", "gcePersistentDisk", "awsElasticBlockStore", "gitRepo", "secret", "nfs", "iscsi",
    "glusterfs", "persistentVolumeClaim", "rbd", "flexVolume", "cinder", "cephfs", "flocker", "downwardAPI", "fc",
    "azureFile", "configMap", "vsphereVolume", "quobyte", "azureDisk", "photonPersistentDisk", "projected",
    "portworxVolume", "scaleIO", "storageos", "csi", "ephemeral", "image")


def _dict(obj: dict, key: str) -> dict | None:
    value = obj.get(key)
    return value if isinstance(value, dict) else None


def _dicts(value) -> list[dict]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _ensure(obj: dict, key: str) -> dict | None:
    """obj[key] as a dict, created when missing; None when it holds something else."""
    if obj.get(key) is None:
        obj[key] = {}
    value = obj[key]
    return value if isinstance(value, dict) else None


# ---- quantities ---------------------------------------------------------------------

def canonical_resource_list(rl) -> None:
    """SetDefaults_ResourceList: round up to milli units; print canonically."""
    if not isinstance(rl, dict):
        return
    for name, raw in list(rl.items()):
        q = quantity.try_parse(raw)
        if q is not None:
            rl[name] = quantity.canonical(quantity.round_up(q, -3))


def canonical_quantity(obj: dict, key: str) -> None:
    if key in obj and obj[key] is not None:
        obj[key] = quantity.canonical_text(obj[key])


# ---- pod specs ------------------------------------------------------------------------

def _http_get(action) -> None:
    if isinstance(action, dict):
        if not action.get("path"):
            action["path"] = "/"
        if not action.get("scheme"):
            action["scheme"] = "HTTP"


def _handler(handler) -> None:
    if not isinstance(handler, dict):
        return
    _http_get(handler.get("httpGet"))
    grpc = handler.get("grpc")
    if isinstance(grpc, dict) and grpc.get("service") is None:
        grpc["service"] = ""


def _probe(probe) -> None:
    if not isinstance(probe, dict):
        return
    for key, value in (("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1),
                       ("failureThreshold", 3)):
        if not probe.get(key):
            probe[key] = value
    _handler(probe)


# Docker's grammar writes the dash separator as `[-]*`; an empty separator
# adds nothing to the language but makes Python's backtracking matcher take
# exponential time on a near-miss like "aaaa...a-" (Go's RE2 does not
# backtrack). `-+` matches the same names, in linear time.
_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_DOMAIN = re.compile(r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*"
                     r"(?::[0-9]+)?|\[[0-9a-fA-F:]+\](?::[0-9]+)?")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")


def _image_tag(image: str) -> str | None:
    """The tag a docker reference names ("latest" when none and no digest); None if it does not parse."""
    name, at, digest = image.partition("@")
    if at and not _DIGEST.fullmatch(digest):
        return None
    tag = ""
    last_slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > last_slash:
        name, tag = name[:colon], name[colon + 1:]
        if not _TAG.fullmatch(tag):
            return None
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"
                           or parts[0].startswith("[") or parts[0] != parts[0].lower()):
        if not _DOMAIN.fullmatch(parts[0]):
            return None
        parts = parts[1:]
    if not parts or not all(_PATH_COMPONENT.fullmatch(p) for p in parts):
        return None
    if not tag and not at:
        tag = "latest"
    return tag


def image_pull_policy(image: str) -> str:
    """Always for `:latest` or an untagged name without a digest, else IfNotPresent."""
    return "Always" if _image_tag(image) == "latest" else "IfNotPresent"


def _field_ref(ref) -> None:
    if isinstance(ref, dict) and not ref.get("apiVersion"):
        ref["apiVersion"] = "v1"


def _resource_field_ref(ref) -> None:
    if isinstance(ref, dict):
        canonical_quantity(ref, "divisor")


def default_container(c: dict) -> None:
    if not c.get("imagePullPolicy"):
        c["imagePullPolicy"] = image_pull_policy(c.get("image") if isinstance(c.get("image"), str) else "")
    if not c.get("terminationMessagePath"):
        c["terminationMessagePath"] = TERMINATION_MESSAGE_PATH
    if not c.get("terminationMessagePolicy"):
        c["terminationMessagePolicy"] = "File"
    for port in _dicts(c.get("ports")):
        if not port.get("protocol"):
            port["protocol"] = "TCP"
    for env in _dicts(c.get("env")):
        value_from = _dict(env, "valueFrom")
        if value_from is not None:
            _field_ref(value_from.get("fieldRef"))
            _resource_field_ref(value_from.get("resourceFieldRef"))
    resources = _ensure(c, "resources")
    if resources is not None:
        canonical_resource_list(resources.get("limits"))
        canonical_resource_list(resources.get("requests"))
    for key in ("livenessProbe", "readinessProbe", "startupProbe"):
        _probe(c.get(key))
    lifecycle = c.get("lifecycle")
    if isinstance(lifecycle, dict):
        _handler(lifecycle.get("postStart"))
        _handler(lifecycle.get("preStop"))


def _downward_api_items(items) -> None:
    for item in _dicts(items):
        _field_ref(item.get("fieldRef"))
        _resource_field_ref(item.get("resourceFieldRef"))


def default_pvc_spec(spec) -> None:
    if not isinstance(spec, dict):
        return
    if spec.get("volumeMode") is None:
        spec["volumeMode"] = "Filesystem"
    resources = spec.get("resources")
    if isinstance(resources, dict):
        canonical_resource_list(resources.get("requests"))
        canonical_resource_list(resources.get("limits"))


def empty_template_metadata(template) -> None:
    """Go prints an unset metadata.creationTimestamp of an embedded template as null."""
    if not isinstance(template, dict):
        return
    meta = _ensure(template, "metadata")
    if meta is not None and "creationTimestamp" not in meta:
        meta["creationTimestamp"] = None


def default_volume(vol: dict) -> None:
    if not any(vol.get(key) is not None for key in _VOLUME_SOURCES):
        vol["emptyDir"] = {}
    for key in ("secret", "configMap", "downwardAPI", "projected"):
        src = _dict(vol, key)
        if src is not None and src.get("defaultMode") is None:
            src["defaultMode"] = DEFAULT_MODE
    empty_dir = _dict(vol, "emptyDir")
    if empty_dir is not None:
        canonical_quantity(empty_dir, "sizeLimit")
    host_path = _dict(vol, "hostPath")
    if host_path is not None and host_path.get("type") is None:
        host_path["type"] = ""
    downward = _dict(vol, "downwardAPI")
    if downward is not None:
        _downward_api_items(downward.get("items"))
    projected = _dict(vol, "projected")
    if projected is not None:
        for source in _dicts(projected.get("sources")):
            token = _dict(source, "serviceAccountToken")
            if token is not None and token.get("expirationSeconds") is None:
                token["expirationSeconds"] = 3600
            downward = _dict(source, "downwardAPI")
            if downward is not None:
                _downward_api_items(downward.get("items"))
    iscsi = _dict(vol, "iscsi")
    if iscsi is not None and not iscsi.get("iscsiInterface"):
        iscsi["iscsiInterface"] = "default"
    rbd = _dict(vol, "rbd")
    if rbd is not None:
        for key, value in (("pool", "rbd"), ("user", "admin"), ("keyring", "/etc/ceph/keyring")):
            if not rbd.get(key):
                rbd[key] = value
    azure = _dict(vol, "azureDisk")
    if azure is not None:
        for key, value in (("cachingMode", "ReadWrite"), ("kind", "Shared"), ("fsType", "ext4"), ("readOnly", False)):
            if azure.get(key) is None:
                azure[key] = value
    scale_io = _dict(vol, "scaleIO")
    if scale_io is not None:
        for key, value in (("storageMode", "ThinProvisioned"), ("fsType", "xfs")):
            if not scale_io.get(key):
                scale_io[key] = value
    ephemeral = _dict(vol, "ephemeral")
    if ephemeral is not None:
        template = _dict(ephemeral, "volumeClaimTemplate")
        if template is not None:
            empty_template_metadata(template)
            default_pvc_spec(template.get("spec"))


def default_pod_spec(spec: dict) -> None:
    """SetDefaults_PodSpec and everything nested in a PodSpec (pods and templates alike)."""
    if not spec.get("dnsPolicy"):
        spec["dnsPolicy"] = "ClusterFirst"
    if not spec.get("restartPolicy"):
        spec["restartPolicy"] = "Always"
    if spec.get("securityContext") is None:
        spec["securityContext"] = {}
    if spec.get("terminationGracePeriodSeconds") is None:
        spec["terminationGracePeriodSeconds"] = 30
    if not spec.get("schedulerName"):
        spec["schedulerName"] = "default-scheduler"
    for vol in _dicts(spec.get("volumes")):
        default_volume(vol)
    for key in ("initContainers", "containers", "ephemeralContainers"):
        for c in _dicts(spec.get(key)):
            default_container(c)
    canonical_resource_list(spec.get("overhead"))


def default_pod_template(template) -> None:
    if not isinstance(template, dict):
        return
    empty_template_metadata(template)
    spec = _ensure(template, "spec")
    if spec is not None:
        default_pod_spec(spec)


def default_pod(pod: dict) -> None:
    spec = _ensure(pod, "spec")
    if spec is None:
        return
    default_pod_spec(spec)
    # SetDefaults_Pod: only real pods, not templates
    for key in ("containers", "initContainers"):
        for c in _dicts(spec.get(key)):
            resources = _dict(c, "resources")
            limits = _dict(resources, "limits") if resources is not None else None
            if limits is None:
                continue
            requests = _ensure(resources, "requests")
            if requests is None:
                continue
            for name, value in limits.items():
                requests.setdefault(name, value)
    if spec.get("enableServiceLinks") is None:
        spec["enableServiceLinks"] = True
    if spec.get("hostNetwork") is True:
        for key in ("containers", "initContainers"):
            for c in _dicts(spec.get(key)):
                for port in _dicts(c.get("ports")):
                    if not port.get("hostPort"):
                        port["hostPort"] = port.get("containerPort")


# ---- other kinds -----------------------------------------------------------------------

def externally_accessible(spec: dict) -> bool:
    t = spec.get("type")
    return t in ("LoadBalancer", "NodePort") or (t == "ClusterIP" and bool(spec.get("externalIPs")))


def default_service(svc: dict) -> None:
    spec = _ensure(svc, "spec")
    if spec is None:
        return
    if not spec.get("sessionAffinity"):
        spec["sessionAffinity"] = "None"
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        cfg = spec.get("sessionAffinityConfig")
        client_ip = cfg.get("clientIP") if isinstance(cfg, dict) else None
        if not isinstance(client_ip, dict) or client_ip.get("timeoutSeconds") is None:
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": CLIENT_IP_AFFINITY_SECONDS}}
    if not spec.get("type"):
        spec["type"] = "ClusterIP"
    for port in _dicts(spec.get("ports")):
        if not port.get("protocol"):
            port["protocol"] = "TCP"
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port")
    if externally_accessible(spec) and not spec.get("externalTrafficPolicy"):
        spec["externalTrafficPolicy"] = "Cluster"
    if spec.get("internalTrafficPolicy") is None and spec.get("type") in ("NodePort", "LoadBalancer", "ClusterIP"):
        spec["internalTrafficPolicy"] = "Cluster"
    if spec.get("type") == "LoadBalancer":
        if spec.get("allocateLoadBalancerNodePorts") is None:
            spec["allocateLoadBalancerNodePorts"] = True
        lb = _dict(_dict(svc, "status") or {}, "loadBalancer")
        for ing in _dicts((lb or {}).get("ingress")):
            if ing.get("ip") and ing.get("ipMode") is None:
                ing["ipMode"] = "VIP"


def default_replication_controller(rc: dict) -> None:
    spec = _ensure(rc, "spec")
    if spec is None:
        return
    template = _dict(spec, "template")
    labels = _dict(_dict(template, "metadata") or {}, "labels") if template is not None else None
    if labels is not None:
        if not spec.get("selector"):
            spec["selector"] = dict(labels)
        meta = _ensure(rc, "metadata")
        if meta is not None and not meta.get("labels"):
            meta["labels"] = dict(labels)
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    if template is not None:
        default_pod_template(template)


def default_pv(pv: dict) -> None:
    spec = _ensure(pv, "spec")
    status = _ensure(pv, "status")
    if status is not None and not status.get("phase"):
        status["phase"] = "Pending"
    if spec is None:
        return
    if not spec.get("persistentVolumeReclaimPolicy"):
        spec["persistentVolumeReclaimPolicy"] = "Retain"
    if spec.get("volumeMode") is None:
        spec["volumeMode"] = "Filesystem"
    canonical_resource_list(spec.get("capacity"))
    for key in ("iscsi",):
        src = _dict(spec, key)
        if src is not None and not src.get("iscsiInterface"):
            src["iscsiInterface"] = "default"
    host_path = _dict(spec, "hostPath")
    if host_path is not None and host_path.get("type") is None:
        host_path["type"] = ""
    rbd = _dict(spec, "rbd")
    if rbd is not None:
        for key, value in (("pool", "rbd"), ("user", "admin"), ("keyring", "/etc/ceph/keyring")):
            if not rbd.get(key):
                rbd[key] = value


def default_pvc(pvc: dict) -> None:
    default_pvc_spec(_ensure(pvc, "spec"))
    status = _ensure(pvc, "status")
    if status is not None:
        if not status.get("phase"):
            status["phase"] = "Pending"
        canonical_resource_list(status.get("capacity"))


def default_secret(secret: dict) -> None:
    if not secret.get("type"):
        secret["type"] = "Opaque"


def default_namespace(ns: dict) -> None:
    meta = _ensure(ns, "metadata")
    name = meta.get("name") if meta is not None else None
    if isinstance(name, str) and name:
        labels = _ensure(meta, "labels")
        if labels is not None:
            # also what the namespace strategy's Canonicalize enforces on every write
            labels[METADATA_NAME_LABEL] = name
    status = _ensure(ns, "status")
    if status is not None and not status.get("phase"):
        status["phase"] = "Active"


def default_node(node: dict) -> None:
    status = _ensure(node, "status")
    if status is None:
        return
    if status.get("allocatable") is None and isinstance(status.get("capacity"), dict):
        status["allocatable"] = dict(status["capacity"])
    canonical_resource_list(status.get("capacity"))
    canonical_resource_list(status.get("allocatable"))
    # Go serialises these two structs even when empty
    endpoints = _ensure(status, "daemonEndpoints")
    if endpoints is not None:
        kubelet = _ensure(endpoints, "kubeletEndpoint")
        if kubelet is not None:
            kubelet.setdefault("Port", 0)
    info = _ensure(status, "nodeInfo")
    if info is not None:
        for key in ("machineID", "systemUUID", "bootID", "kernelVersion", "osImage", "containerRuntimeVersion",
                    "kubeletVersion", "kubeProxyVersion", "operatingSystem", "architecture"):
            info.setdefault(key, "")


def default_endpoints(ep: dict) -> None:
    for subset in _dicts(ep.get("subsets")):
        for port in _dicts(subset.get("ports")):
            if not port.get("protocol"):
                port["protocol"] = "TCP"


def default_limit_range(lr: dict) -> None:
    spec = _dict(lr, "spec")
    if spec is None:
        return
    for item in _dicts(spec.get("limits")):
        for key in ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio"):
            canonical_resource_list(item.get(key))
        if item.get("type") != "Container":
            continue
        default = _ensure(item, "default")
        default_request = _ensure(item, "defaultRequest")
        if default is None or default_request is None:
            continue
        for name, value in (_dict(item, "max") or {}).items():
            default.setdefault(name, value)
        for name, value in default.items():
            default_request.setdefault(name, value)
        for name, value in (_dict(item, "min") or {}).items():
            default_request.setdefault(name, value)
        if not default:
            item.pop("default")
        if not default_request:
            item.pop("defaultRequest")


def default_resource_quota(rq: dict) -> None:
    canonical_resource_list((_dict(rq, "spec") or {}).get("hard"))
    status = _dict(rq, "status") or {}
    canonical_resource_list(status.get("hard"))
    canonical_resource_list(status.get("used"))


def default_pod_template_kind(pt: dict) -> None:
    template = _ensure(pt, "template")
    if template is not None:
        default_pod_template(template)


def default_event(ev: dict) -> None:
    """Fields a core/v1 Event always carries on the wire, empty or not."""
    if ev.get("source") is None:
        ev["source"] = {}
    for key in ("firstTimestamp", "lastTimestamp", "eventTime"):
        ev.setdefault(key, None)
    for key in ("reportingComponent", "reportingInstance"):
        if ev.get(key) is None:
            ev[key] = ""
    if ev.get("involvedObject") is None:
        ev["involvedObject"] = {}


DEFAULTERS = {
    "Pod": default_pod,
    "Service": default_service,
    "ReplicationController": default_replication_controller,
    "PersistentVolume": default_pv,
    "PersistentVolumeClaim": default_pvc,
    "Secret": default_secret,
    "Namespace": default_namespace,
    "Node": default_node,
    "Endpoints": default_endpoints,
    "LimitRange": default_limit_range,
    "ResourceQuota": default_resource_quota,
    "PodTemplate": default_pod_template_kind,
    "Event": default_event,
}
