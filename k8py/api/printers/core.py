"""Printers for the core group (Pods and Events have their own modules).

Objects reach printers after defaulting upstream, so where v1.32 always
defaults a spec field (Service type, port protocol, replicas, volume mode,
reclaim policy, Secret type) a missing value reads as that default.
"""

from __future__ import annotations

from k8py.api.printers import quantity
from k8py.api.printers.columns import AGE, CONTAINERS, IMAGES, NAME, Column, Printer, age
from k8py.api.printers.formatting import (NONE, UNKNOWN, UNSET, container_cells, format_labels,
                                          join_host_port, template_containers)
from k8py.api.printers.values import as_dict, as_list, dig, integer, name_of, text

# --- Node ---------------------------------------------------------------------

ROLE_LABEL_PREFIX = "node-role.kubernetes.io/"
LEGACY_ROLE_LABEL = "kubernetes.io/role"


def node_roles(node: dict) -> list[str]:
    """Roles from `node-role.kubernetes.io/<role>` keys and the legacy `kubernetes.io/role` value."""
    roles = set()
    for key, value in as_dict(dig(node, "metadata", "labels")).items():
        if key.startswith(ROLE_LABEL_PREFIX) and key[len(ROLE_LABEL_PREFIX):]:
            roles.add(key[len(ROLE_LABEL_PREFIX):])
        elif key == LEGACY_ROLE_LABEL and text(value):
            roles.add(text(value))
    return sorted(roles)


def node_status(node: dict) -> str:
    """`Ready`/`NotReady`/`Unknown` from the Ready condition, plus `SchedulingDisabled` when cordoned."""
    ready = None
    for cond in map(as_dict, as_list(dig(node, "status", "conditions"))):
        if cond.get("type") == "Ready":
            ready = cond  # the last one wins, as in upstream's map
    words = ["Unknown"] if ready is None else ["Ready" if ready.get("status") == "True" else "NotReady"]
    if dig(node, "spec", "unschedulable") is True:
        words.append("SchedulingDisabled")
    return ",".join(words)


def _node_address(node: dict, kind: str) -> str:
    for address in map(as_dict, as_list(dig(node, "status", "addresses"))):
        if address.get("type") == kind:
            return text(address.get("address"))
    return NONE


def _node_cells(node, now):
    info = as_dict(dig(node, "status", "nodeInfo"))
    return [
        name_of(node), node_status(node), ",".join(node_roles(node)) or NONE, age(node, now),
        text(info.get("kubeletVersion")),
        _node_address(node, "InternalIP"), _node_address(node, "ExternalIP"),
        text(info.get("osImage")) or UNKNOWN, text(info.get("kernelVersion")) or UNKNOWN,
        text(info.get("containerRuntimeVersion")) or UNKNOWN,
    ]


NODE = Printer((
    NAME,
    Column("Status", description="The status of the node"),
    Column("Roles", description="The roles of the node"),
    AGE,
    Column("Version", doc="core.v1.NodeSystemInfo.kubeletVersion"),
    Column("Internal-IP", priority=1, doc="core.v1.NodeStatus.addresses"),
    Column("External-IP", priority=1, doc="core.v1.NodeStatus.addresses"),
    Column("OS-Image", priority=1, doc="core.v1.NodeSystemInfo.osImage"),
    Column("Kernel-Version", priority=1, doc="core.v1.NodeSystemInfo.kernelVersion"),
    Column("Container-Runtime", priority=1, doc="core.v1.NodeSystemInfo.containerRuntimeVersion"),
), _node_cells)

# --- Namespace ----------------------------------------------------------------

NAMESPACE = Printer(
    (NAME, Column("Status", description="The status of the namespace"), AGE),
    lambda ns, now: [name_of(ns), text(dig(ns, "status", "phase")), age(ns, now)],
)

# --- Service ------------------------------------------------------------------


def _load_balancer_ips(status) -> str:
    """Ingress points of a load balancer: IPs, else hostnames, sorted and de-duplicated."""
    points = set()
    for point in map(as_dict, as_list(dig(status, "loadBalancer", "ingress"))):
        if text(point.get("ip")):
            points.add(text(point.get("ip")))
        elif text(point.get("hostname")):
            points.add(text(point.get("hostname")))
    # Server-side tables are always built wide, so the list is never clipped.
    return ",".join(sorted(points))


def service_external_ip(service: dict) -> str:
    spec = as_dict(service.get("spec"))
    external = [text(ip) for ip in as_list(spec.get("externalIPs"))]
    kind = text(spec.get("type")) or "ClusterIP"
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) or NONE
    if kind == "LoadBalancer":
        balancer = _load_balancer_ips(service.get("status"))
        if external:
            return ",".join(([balancer] if balancer else []) + external)
        return balancer or "<pending>"
    if kind == "ExternalName":
        return text(spec.get("externalName"))
    return UNKNOWN


def service_ports(ports) -> str:
    pieces = []
    for port in map(as_dict, as_list(ports)):
        protocol = text(port.get("protocol")) or "TCP"
        node_port = integer(port.get("nodePort"))
        middle = f":{node_port}" if node_port > 0 else ""
        pieces.append(f"{integer(port.get('port'))}{middle}/{protocol}")
    return ",".join(pieces)


def _cluster_ip(spec: dict) -> str:
    # clusterIP is authoritative over clusterIPs[0], as in upstream's conversion.
    ips = as_list(spec.get("clusterIPs"))
    return text(spec.get("clusterIP")) or (text(ips[0]) if ips else "") or NONE


def _service_cells(service, now):
    spec = as_dict(service.get("spec"))
    return [
        name_of(service), text(spec.get("type")) or "ClusterIP", _cluster_ip(spec),
        service_external_ip(service), service_ports(spec.get("ports")) or NONE, age(service, now),
        format_labels(spec.get("selector")),
    ]


SERVICE = Printer((
    NAME,
    Column("Type", doc="core.v1.ServiceSpec.type"),
    Column("Cluster-IP", doc="core.v1.ServiceSpec.clusterIP"),
    Column("External-IP", doc="core.v1.ServiceSpec.externalIPs"),
    Column("Port(s)", doc="core.v1.ServiceSpec.ports"),
    AGE,
    Column("Selector", priority=1, doc="core.v1.ServiceSpec.selector"),
), _service_cells)

# --- Endpoints ----------------------------------------------------------------

MAX_LISTED = 3


def format_endpoints(endpoints: dict) -> str:
    """Up to three `ip:port` pairs (bare IPs for port-less subsets), then `+ N more...`."""
    subsets = [as_dict(s) for s in as_list(endpoints.get("subsets"))]
    if not subsets:
        return NONE
    listed, total = [], 0
    for subset in subsets:
        ips = [text(as_dict(a).get("ip")) for a in as_list(subset.get("addresses"))]
        ports = [integer(as_dict(p).get("port")) for p in as_list(subset.get("ports"))]
        # Headless services may have no ports: list the addresses alone.
        groups = [ips] if not ports else [[join_host_port(ip, port) for ip in ips] for port in ports]
        for group in groups:
            total += len(group)
            listed.extend(group[:max(0, MAX_LISTED - len(listed))])
    shown = ",".join(listed)
    return f"{shown} + {total - MAX_LISTED} more..." if total > MAX_LISTED else shown


ENDPOINTS = Printer(
    (NAME, Column("Endpoints", doc="core.v1.Endpoints.subsets"), AGE),
    lambda ep, now: [name_of(ep), format_endpoints(ep), age(ep, now)],
)

# --- ConfigMap, Secret, ServiceAccount --------------------------------------------

CONFIG_MAP = Printer(
    (NAME, Column("Data", doc="core.v1.ConfigMap.data"), AGE),
    lambda cm, now: [name_of(cm), len(as_dict(cm.get("data"))) + len(as_dict(cm.get("binaryData"))),
                     age(cm, now)],
)


def _secret_keys(secret: dict) -> int:
    # stringData is merged into data on the way in; count each key once.
    return len(set(as_dict(secret.get("data"))) | set(as_dict(secret.get("stringData"))))


SECRET = Printer(
    (NAME, Column("Type", doc="core.v1.Secret.type"), Column("Data", doc="core.v1.Secret.data"), AGE),
    lambda s, now: [name_of(s), text(s.get("type")) or "Opaque", _secret_keys(s), age(s, now)],
)

SERVICE_ACCOUNT = Printer(
    (NAME, Column("Secrets", doc="core.v1.ServiceAccount.secrets"), AGE),
    lambda sa, now: [name_of(sa), len(as_list(sa.get("secrets"))), age(sa, now)],
)

# --- PersistentVolume, PersistentVolumeClaim --------------------------------------

_ACCESS_MODE_SHORT = (("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"),
                      ("ReadWriteMany", "RWX"), ("ReadWriteOncePod", "RWOP"))
STORAGE_CLASS_ANNOTATION = "volume.beta.kubernetes.io/storage-class"


def access_modes(modes) -> str:
    present = set(as_list(modes))
    return ",".join(short for mode, short in _ACCESS_MODE_SHORT if mode in present)


def storage_class(obj: dict) -> str:
    """The legacy annotation wins over spec.storageClassName, as upstream reads it."""
    annotations = as_dict(dig(obj, "metadata", "annotations"))
    if STORAGE_CLASS_ANNOTATION in annotations:
        return text(annotations[STORAGE_CLASS_ANNOTATION])
    return text(dig(obj, "spec", "storageClassName"))


def _phase(obj: dict) -> str:
    if dig(obj, "metadata", "deletionTimestamp"):
        return "Terminating"
    return text(dig(obj, "status", "phase"))


def _volume_attributes_class(spec: dict) -> str:
    value = spec.get("volumeAttributesClassName")
    return UNSET if value is None else text(value)


def _pv_cells(pv, now):
    spec = as_dict(pv.get("spec"))
    claim = as_dict(spec.get("claimRef"))
    claim_text = f"{text(claim.get('namespace'))}/{text(claim.get('name'))}" if spec.get("claimRef") else ""
    return [
        name_of(pv), quantity.canonical(dig(spec, "capacity", "storage")),
        access_modes(spec.get("accessModes")),
        text(spec.get("persistentVolumeReclaimPolicy")) or "Retain",
        _phase(pv), claim_text, storage_class(pv), _volume_attributes_class(spec),
        text(dig(pv, "status", "reason")), age(pv, now), text(spec.get("volumeMode")) or "Filesystem",
    ]


PERSISTENT_VOLUME = Printer((
    NAME,
    Column("Capacity", doc="core.v1.PersistentVolumeSpec.capacity"),
    Column("Access Modes", doc="core.v1.PersistentVolumeSpec.accessModes"),
    Column("Reclaim Policy", doc="core.v1.PersistentVolumeSpec.persistentVolumeReclaimPolicy"),
    Column("Status", doc="core.v1.PersistentVolumeStatus.phase"),
    Column("Claim", doc="core.v1.PersistentVolumeSpec.claimRef"),
    Column("StorageClass", description="StorageClass of the pv"),
    Column("VolumeAttributesClass", description="VolumeAttributesClass of the pv"),
    Column("Reason", doc="core.v1.PersistentVolumeStatus.reason"),
    AGE,
    Column("VolumeMode", priority=1, doc="core.v1.PersistentVolumeSpec.volumeMode"),
), _pv_cells)


def _pvc_cells(pvc, now):
    spec, status = as_dict(pvc.get("spec")), as_dict(pvc.get("status"))
    volume = text(spec.get("volumeName"))
    # Capacity and access modes are only shown once the claim is bound to a volume.
    capacity = quantity.canonical(dig(status, "capacity", "storage")) if volume else ""
    modes = access_modes(status.get("accessModes")) if volume else ""
    return [
        name_of(pvc), _phase(pvc), volume, capacity, modes, storage_class(pvc),
        _volume_attributes_class(spec), age(pvc, now), text(spec.get("volumeMode")) or "Filesystem",
    ]


PERSISTENT_VOLUME_CLAIM = Printer((
    NAME,
    Column("Status", doc="core.v1.PersistentVolumeClaimStatus.phase"),
    Column("Volume", doc="core.v1.PersistentVolumeClaimSpec.volumeName"),
    Column("Capacity", doc="core.v1.PersistentVolumeClaimStatus.capacity"),
    Column("Access Modes", doc="core.v1.PersistentVolumeClaimStatus.accessModes"),
    Column("StorageClass", description="StorageClass of the pvc"),
    Column("VolumeAttributesClass", description="VolumeAttributesClass of the pvc"),
    AGE,
    Column("VolumeMode", priority=1, doc="core.v1.PersistentVolumeClaimSpec.volumeMode"),
), _pvc_cells)

# --- ResourceQuota ------------------------------------------------------------------


def _quota_columns(quota: dict) -> tuple[str, str]:
    """`name: used/hard` for each resource, limits.* in their own column."""
    hard, used = as_dict(dig(quota, "status", "hard")), as_dict(dig(quota, "status", "used"))
    requests, limits = [], []
    for resource in sorted(hard):
        entry = f"{resource}: {quantity.canonical(used.get(resource))}/{quantity.canonical(hard[resource])}"
        pieces = resource.split(".")
        (limits if len(pieces) > 1 and pieces[0] == "limits" else requests).append(entry)
    return ", ".join(requests), ", ".join(limits)


def _quota_cells(quota, now):
    requests, limits = _quota_columns(quota)
    return [name_of(quota), requests, limits, age(quota, now)]


RESOURCE_QUOTA = Printer((
    NAME,
    Column("Request", description="Request represents a minimum amount of cpu/memory that a "
                                  "container may consume."),
    Column("Limit", description="Limits control the maximum amount of cpu/memory that a container "
                                "may use independent of contention on the node."),
    AGE,
), _quota_cells)

# --- ReplicationController, PodTemplate, ComponentStatus -----------------------------


def _rc_cells(rc, now):
    spec, status = as_dict(rc.get("spec")), as_dict(rc.get("status"))
    names, images = container_cells(template_containers(rc))
    return [
        name_of(rc), integer(spec.get("replicas"), default=1), integer(status.get("replicas")),
        integer(status.get("readyReplicas")), age(rc, now), names, images,
        format_labels(spec.get("selector")),
    ]


REPLICATION_CONTROLLER = Printer((
    NAME,
    Column("Desired", type="integer", doc="core.v1.ReplicationControllerSpec.replicas"),
    Column("Current", type="integer", doc="core.v1.ReplicationControllerStatus.replicas"),
    Column("Ready", type="integer", doc="core.v1.ReplicationControllerStatus.readyReplicas"),
    AGE, CONTAINERS, IMAGES,
    Column("Selector", priority=1, doc="core.v1.ReplicationControllerSpec.selector"),
), _rc_cells)


def _pod_template_cells(obj, now):
    template = as_dict(obj.get("template"))
    names, images = container_cells(dig(template, "spec", "containers"))
    return [name_of(obj), names, images, format_labels(dig(template, "metadata", "labels"))]


POD_TEMPLATE = Printer((
    NAME,
    Column("Containers", description="Names of each container in the template."),
    Column("Images", description="Images referenced by each container in the template."),
    Column("Pod Labels", description="The labels for the pod template."),
), _pod_template_cells)


def _component_status_cells(obj, now):
    status, message, error = "Unknown", "", ""
    for cond in map(as_dict, as_list(obj.get("conditions"))):
        if cond.get("type") == "Healthy":
            status = "Healthy" if cond.get("status") == "True" else "Unhealthy"
            message, error = text(cond.get("message")), text(cond.get("error"))
            break
    return [name_of(obj), status, message, error]


COMPONENT_STATUS = Printer((
    NAME,
    Column("Status", description="Status of the component conditions"),
    Column("Message", description="Message of the component conditions"),
    Column("Error", description="Error of the component conditions"),
), _component_status_cells)


PRINTERS = {
    ("", "Node"): NODE,
    ("", "Namespace"): NAMESPACE,
    ("", "Service"): SERVICE,
    ("", "Endpoints"): ENDPOINTS,
    ("", "ConfigMap"): CONFIG_MAP,
    ("", "Secret"): SECRET,
    ("", "ServiceAccount"): SERVICE_ACCOUNT,
    ("", "PersistentVolume"): PERSISTENT_VOLUME,
    ("", "PersistentVolumeClaim"): PERSISTENT_VOLUME_CLAIM,
    ("", "ResourceQuota"): RESOURCE_QUOTA,
    ("", "ReplicationController"): REPLICATION_CONTROLLER,
    ("", "PodTemplate"): POD_TEMPLATE,
    ("", "ComponentStatus"): COMPONENT_STATUS,
}
