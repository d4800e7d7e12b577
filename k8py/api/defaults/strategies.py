"""What the registry strategies do before validation (PrepareForCreate,
PrepareForUpdate and the status strategies' PrepareForUpdate in
pkg/registry/*/*/strategy.go).

Status belongs to controllers: a create starts from the empty status Go
would serialise for the kind (zero counters included) plus what the strategy
sets (Pod phase and QoS class, Namespace phase, ...); an update of the main
resource keeps the stored status; a status update keeps the stored spec.
Kinds that track `metadata.generation` start at 1 and count spec changes.
"""

from __future__ import annotations

import copy

from k8py.apimachinery import meta as meta_util
from k8py.apimachinery import quantity

# (group, kind) -> the status an object starts with
ZERO_STATUS = {
    ("", "Pod"): {},
    ("", "Service"): {"loadBalancer": {}},
    ("", "Namespace"): {},
    ("", "PersistentVolume"): {},
    ("", "PersistentVolumeClaim"): {},
    ("", "ResourceQuota"): {},
    ("", "ReplicationController"): {"replicas": 0},
    ("apps", "Deployment"): {},
    ("apps", "ReplicaSet"): {"replicas": 0},
    ("apps", "StatefulSet"): {"replicas": 0, "availableReplicas": 0},
    ("apps", "DaemonSet"): {"currentNumberScheduled": 0, "numberMisscheduled": 0, "desiredNumberScheduled": 0,
                            "numberReady": 0},
    ("batch", "Job"): {},
    ("batch", "CronJob"): {},
    ("autoscaling", "HorizontalPodAutoscaler"): {"currentMetrics": None, "desiredReplicas": 0},
    ("policy", "PodDisruptionBudget"): {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0,
                                        "expectedPods": 0},
    ("networking.k8s.io", "Ingress"): {"loadBalancer": {}},
    ("storage.k8s.io", "VolumeAttachment"): {"attached": False},
}

# Kinds whose strategy sets generation 1 on create and bumps it when the spec changes.
GENERATION_KINDS = {
    ("apps", "Deployment"), ("apps", "ReplicaSet"), ("apps", "StatefulSet"), ("apps", "DaemonSet"),
    ("", "ReplicationController"), ("batch", "Job"), ("batch", "CronJob"), ("policy", "PodDisruptionBudget"),
    ("networking.k8s.io", "Ingress"), ("networking.k8s.io", "NetworkPolicy"),
}

# Kinds whose status is written only through /status (main updates keep it).
STATUS_KINDS = set(ZERO_STATUS) | {("", "Node")}

LEGACY_JOB_NAME = "job-name"
JOB_NAME = "batch.kubernetes.io/job-name"
LEGACY_CONTROLLER_UID = "controller-uid"
CONTROLLER_UID = "batch.kubernetes.io/controller-uid"


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def _meta(obj: dict) -> dict:
    m = obj.get("metadata")
    if not isinstance(m, dict):
        m = obj["metadata"] = {}
    return m


# ---- Pod QoS ------------------------------------------------------------------------

def pod_qos_class(pod: dict) -> str:
    """ComputePodQOS over the (defaulted) containers and init containers."""
    spec = _dict(pod.get("spec"))
    requests: dict = {}
    limits: dict = {}
    guaranteed = True
    containers = [c for key in ("containers", "initContainers")
                  for c in (spec.get(key) if isinstance(spec.get(key), list) else [])
                  if isinstance(c, dict)]
    for c in containers:
        resources = _dict(c.get("resources"))
        for name, raw in _dict(resources.get("requests")).items():
            q = quantity.try_parse(raw)
            if name in ("cpu", "memory") and q is not None and q.value > 0:
                requests[name] = requests.get(name, 0) + q.value
        found = set()
        for name, raw in _dict(resources.get("limits")).items():
            q = quantity.try_parse(raw)
            if name in ("cpu", "memory") and q is not None and q.value > 0:
                found.add(name)
                limits[name] = limits.get(name, 0) + q.value
        if not {"cpu", "memory"} <= found:
            guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    if guaranteed and all(name in limits and limits[name] == value for name, value in requests.items()) \
            and len(requests) == len(limits):
        return "Guaranteed"
    return "Burstable"


# ---- create ---------------------------------------------------------------------------

def _prepare_pod(pod: dict) -> None:
    status = pod["status"]
    status["phase"] = "Pending"
    status["qosClass"] = pod_qos_class(pod)
    if _dict(pod.get("spec")).get("schedulingGates"):
        status["conditions"] = [{
            "type": "PodScheduled", "status": "False", "lastProbeTime": None, "lastTransitionTime": None,
            "reason": "SchedulingGated", "message": "Scheduling is blocked due to non-empty scheduling gates"}]


def _prepare_namespace(ns: dict) -> None:
    ns["status"] = {"phase": "Active"}
    spec = ns.get("spec")
    if not isinstance(spec, dict):
        spec = ns["spec"] = {}
    finalizers = spec.get("finalizers")
    if not isinstance(finalizers, list):
        finalizers = []
    if "kubernetes" not in finalizers:
        finalizers = finalizers + ["kubernetes"]
    spec["finalizers"] = finalizers


def _prepare_pv(pv: dict) -> None:
    pv["status"] = {"phase": "Pending", "lastPhaseTransitionTime": meta_util.rfc3339()}


def _generate_job_selector(job: dict) -> None:
    spec = job.get("spec")
    if not isinstance(spec, dict) or spec.get("manualSelector") is True:
        return
    m = _meta(job)
    name, uid = str(m.get("name") or ""), str(m.get("uid") or "")
    template = spec.get("template")
    if not isinstance(template, dict):
        template = spec["template"] = {}
    tmeta = template.get("metadata")
    if not isinstance(tmeta, dict):
        tmeta = template["metadata"] = {}
    labels = tmeta.get("labels")
    if not isinstance(labels, dict):
        labels = tmeta["labels"] = {}
    for key in (LEGACY_JOB_NAME, JOB_NAME):
        labels.setdefault(key, name)
    for key in (LEGACY_CONTROLLER_UID, CONTROLLER_UID):
        labels.setdefault(key, uid)
    selector = spec.get("selector")
    if not isinstance(selector, dict):
        selector = spec["selector"] = {}
    match_labels = selector.get("matchLabels")
    if not isinstance(match_labels, dict):
        match_labels = selector["matchLabels"] = {}
    match_labels.setdefault(CONTROLLER_UID, uid)


def normalize_cluster_ips(new: dict, old: dict | None) -> None:
    """NormalizeClusterIPs: keep spec.clusterIP and spec.clusterIPs in step."""
    spec = new.get("spec")
    if not isinstance(spec, dict):
        return
    ip, ips = spec.get("clusterIP") or "", spec.get("clusterIPs") or []
    if old is None:
        if ip and not ips:
            spec["clusterIPs"] = [ip]
        return
    ospec = _dict(old.get("spec"))
    oip, oips = ospec.get("clusterIP") or "", ospec.get("clusterIPs") or []
    if oips and not ips and oip == ip:
        spec["clusterIPs"] = list(oips)
        ips = spec["clusterIPs"]
    if oip != ip:
        same = list(ips) == list(oips)
        if oip and not ip and same:
            spec.pop("clusterIPs", None)
        if ip and same:
            spec["clusterIPs"] = [ip]


def _default_ip_families(spec: dict, old_spec: dict | None = None) -> None:
    """The fields the service allocator fills for a single-stack cluster."""
    if spec.get("type") == "ExternalName":
        return
    if old_spec is not None and old_spec.get("type") != "ExternalName":
        for key in ("ipFamilyPolicy", "ipFamilies"):
            if spec.get(key) is None and old_spec.get(key) is not None:
                spec[key] = copy.deepcopy(old_spec[key])
    if spec.get("ipFamilyPolicy") is None:
        spec["ipFamilyPolicy"] = "SingleStack"
    if not spec.get("ipFamilies"):
        ips = [ip for ip in (spec.get("clusterIPs") or []) if isinstance(ip, str) and ip != "None"]
        spec["ipFamilies"] = ["IPv6" if ips and ":" in ips[0] else "IPv4"]


def _externally_accessible(spec: dict) -> bool:
    t = spec.get("type")
    return t in ("LoadBalancer", "NodePort") or (t == "ClusterIP" and bool(spec.get("externalIPs")))


def _drop_type_dependent_fields(spec: dict, old: dict) -> None:
    """dropTypeDependentFields: a type change wipes what only the old type needed,
    unless the client changed it too (then validation judges it)."""
    def same(key):
        return spec.get(key) == old.get(key)

    if old.get("type") != "ExternalName" and spec.get("type") == "ExternalName":
        if same("clusterIP") and same("clusterIPs"):
            spec.pop("clusterIP", None)
            spec.pop("clusterIPs", None)
        for key in ("ipFamilies", "ipFamilyPolicy"):
            if same(key):
                spec.pop(key, None)
    ports = [p for p in (spec.get("ports") or []) if isinstance(p, dict)] if isinstance(spec.get("ports"), list) else []
    old_ports = [p for p in (old.get("ports") or []) if isinstance(p, dict)] if isinstance(old.get("ports"), list) else []
    node_port_types = ("NodePort", "LoadBalancer")
    if old.get("type") in node_port_types and spec.get("type") not in node_port_types:
        if [p.get("nodePort") for p in ports] == [p.get("nodePort") for p in old_ports][:len(ports)]:
            for p in ports:
                p.pop("nodePort", None)
    old_hc = old.get("type") == "LoadBalancer" and old.get("externalTrafficPolicy") == "Local"
    new_hc = spec.get("type") == "LoadBalancer" and spec.get("externalTrafficPolicy") == "Local"
    if old_hc and not new_hc and same("healthCheckNodePort"):
        spec.pop("healthCheckNodePort", None)
    if old.get("type") == "LoadBalancer" and spec.get("type") != "LoadBalancer":
        for key in ("allocateLoadBalancerNodePorts", "loadBalancerClass"):
            if same(key):
                spec.pop(key, None)
    if _externally_accessible(old) and not _externally_accessible(spec) and same("externalTrafficPolicy"):
        spec.pop("externalTrafficPolicy", None)


def _prepare_service(svc: dict) -> None:
    normalize_cluster_ips(svc, None)
    spec = svc.get("spec")
    if isinstance(spec, dict):
        _default_ip_families(spec)


def prepare_create(resource, obj: dict) -> None:
    key = (resource.group, resource.kind)
    m = _meta(obj)
    if key in ZERO_STATUS:
        obj["status"] = copy.deepcopy(ZERO_STATUS[key])
    if key in GENERATION_KINDS:
        m["generation"] = 1
    if key == ("", "Pod"):
        _prepare_pod(obj)
    elif key == ("", "Namespace"):
        _prepare_namespace(obj)
    elif key == ("", "PersistentVolume"):
        _prepare_pv(obj)
    elif key == ("", "Service"):
        _prepare_service(obj)
    elif key == ("batch", "Job"):
        _generate_job_selector(obj)


# ---- update ---------------------------------------------------------------------------

def _spec_changed(new: dict, old: dict, key: tuple) -> bool:
    if new.get("spec") != old.get("spec"):
        return True
    if key == ("apps", "Deployment"):
        # annotations are copied to ReplicaSets, so they count as a change too
        return _dict(new.get("metadata")).get("annotations") != _dict(old.get("metadata")).get("annotations")
    return False


def prepare_update(resource, new: dict, old: dict) -> None:
    key = (resource.group, resource.kind)
    if key in STATUS_KINDS:
        if "status" in old:
            new["status"] = copy.deepcopy(old["status"])
        else:
            new.pop("status", None)
    if key == ("", "Namespace"):
        spec = new.get("spec")
        if not isinstance(spec, dict):
            spec = new["spec"] = {}
        ospec = _dict(old.get("spec"))
        if "finalizers" in ospec:
            spec["finalizers"] = copy.deepcopy(ospec["finalizers"])
        else:
            spec.pop("finalizers", None)
    elif key == ("", "Service"):
        normalize_cluster_ips(new, old)
        spec = new.get("spec")
        if isinstance(spec, dict):
            _drop_type_dependent_fields(spec, _dict(old.get("spec")))
            _default_ip_families(spec, _dict(old.get("spec")))
            if spec.get("type") != "LoadBalancer" and isinstance(new.get("status"), dict):
                new["status"]["loadBalancer"] = {}
    if key in GENERATION_KINDS:
        nm, om = _meta(new), _dict(old.get("metadata"))
        generation = om.get("generation") if isinstance(om.get("generation"), int) else 0
        nm["generation"] = generation + 1 if _spec_changed(new, old, key) else generation


def prepare_status_update(resource, new: dict, old: dict) -> None:
    key = (resource.group, resource.kind)
    if "spec" in old:
        new["spec"] = copy.deepcopy(old["spec"])
    else:
        new.pop("spec", None)
    nm, om = _meta(new), _dict(old.get("metadata"))
    if key == ("", "Pod"):
        if "ownerReferences" in om:
            nm["ownerReferences"] = copy.deepcopy(om["ownerReferences"])
        else:
            nm.pop("ownerReferences", None)
        status = new.get("status")
        if isinstance(status, dict):
            old_qos = _dict(old.get("status")).get("qosClass")
            if old_qos is not None:
                status["qosClass"] = old_qos
            else:
                status.pop("qosClass", None)
    elif key == ("", "PersistentVolume"):
        status, ostatus = new.get("status"), _dict(old.get("status"))
        if isinstance(status, dict):
            if status.get("phase") == ostatus.get("phase") and status.get("lastPhaseTransitionTime") is None:
                if ostatus.get("lastPhaseTransitionTime") is not None:
                    status["lastPhaseTransitionTime"] = ostatus["lastPhaseTransitionTime"]
            elif status.get("phase") != ostatus.get("phase") and status.get("lastPhaseTransitionTime") in (
                    None, ostatus.get("lastPhaseTransitionTime")):
                status["lastPhaseTransitionTime"] = meta_util.rfc3339()
    elif key == ("apps", "Deployment"):
        if "labels" in om:
            nm["labels"] = copy.deepcopy(om["labels"])
        else:
            nm.pop("labels", None)
