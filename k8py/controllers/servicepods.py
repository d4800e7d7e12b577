"""Which pods back a Service, and how: the rules both endpoint controllers share.

Pure functions over plain dict objects, so the Endpoints and EndpointSlice
controllers agree on readiness, named target ports, hostnames and terminating
pods, and so the rules can be tested without a cluster.
"""

from __future__ import annotations

import datetime
import ipaddress

HEADLESS_LABEL = "service.kubernetes.io/headless"
TRIGGER_TIME_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"


def now_rfc3339() -> str:
    # Go's RFC3339Nano as the upstream controllers write it (UTC, trailing zeros dropped).
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0").rstrip(".")
    return stamp + "Z"


def selects_pods(service: dict) -> bool:
    """True when the controllers manage this Service's endpoints (it has a selector, and is not ExternalName)."""
    spec = service.get("spec") or {}
    return bool(spec.get("selector")) and spec.get("type") != "ExternalName"


def is_headless(service: dict) -> bool:
    return (service.get("spec") or {}).get("clusterIP") == "None"


def selector_matches(selector: dict | None, labels: dict | None) -> bool:
    if not selector:
        return False
    labels = labels or {}
    return all(labels.get(k) == v for k, v in selector.items())


def is_pod_ready(pod: dict) -> bool:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return condition.get("status") == "True"
    return False


def pod_ips(pod: dict) -> list[str]:
    status = pod.get("status") or {}
    ips = [entry["ip"] for entry in status.get("podIPs") or [] if entry.get("ip")]
    if not ips and status.get("podIP"):
        ips = [status["podIP"]]
    return ips


def address_type(ip: str) -> str:
    return "IPv6" if ipaddress.ip_address(ip).version == 6 else "IPv4"


def should_be_endpoint(pod: dict, include_terminating: bool) -> bool:
    """Pods without an IP or that have finished never back a Service; terminating ones only when asked."""
    if not pod_ips(pod):
        return False
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return False
    if pod["metadata"].get("deletionTimestamp") and not include_terminating:
        return False
    return True


def endpoint_hostname(pod: dict, service: dict) -> str | None:
    """A pod gets a DNS hostname under a Service when its spec.subdomain names that Service."""
    spec = pod.get("spec") or {}
    if spec.get("hostname") and spec.get("subdomain") == service["metadata"]["name"] \
            and pod["metadata"].get("namespace") == service["metadata"].get("namespace"):
        return spec["hostname"]
    return None


def resolve_target_port(service_port: dict, pod: dict) -> int | None:
    """The container port a Service port reaches on this pod; None when a named port is missing."""
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    protocol = service_port.get("protocol", "TCP")
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == target and port.get("protocol", "TCP") == protocol:
                return port.get("containerPort")
    return None


def endpoint_ports(service: dict, pod: dict) -> list[dict]:
    """EndpointPorts of one pod for the Service's ports (ports whose named target the pod lacks are left out)."""
    ports = []
    for sp in (service.get("spec") or {}).get("ports") or []:
        number = resolve_target_port(sp, pod)
        if number is None:
            continue
        port = {"port": number, "protocol": sp.get("protocol", "TCP")}
        if sp.get("name"):
            port["name"] = sp["name"]
        if sp.get("appProtocol"):
            port["appProtocol"] = sp["appProtocol"]
        ports.append(port)
    return sorted(ports, key=lambda p: (p.get("name", ""), p["port"], p["protocol"]))


def target_ref(pod: dict) -> dict:
    meta = pod["metadata"]
    return {"kind": "Pod", "namespace": meta.get("namespace", ""), "name": meta["name"], "uid": meta.get("uid", "")}


def service_labels(service: dict) -> dict:
    """Labels endpoint objects carry: the Service's own, plus the headless marker."""
    labels = dict(service["metadata"].get("labels") or {})
    labels.pop(HEADLESS_LABEL, None)
    if is_headless(service):
        labels[HEADLESS_LABEL] = ""
    return labels


def selected_pods(service: dict, pods: list[dict]) -> list[dict]:
    selector = (service.get("spec") or {}).get("selector")
    namespace = service["metadata"].get("namespace")
    return [p for p in pods if p["metadata"].get("namespace") == namespace
            and selector_matches(selector, p["metadata"].get("labels"))]
