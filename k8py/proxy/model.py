"""What kube-proxy needs to know about a Service port, built from Service and EndpointSlice objects.

One ServicePort per (Service, port): its addresses (cluster IPs, external IPs,
load-balancer ingress, node port), policies, and the endpoints the slices
list for the port's name and protocol. Endpoints are de-duplicated across
slices by ip:port, as a pod may briefly appear in two slices while they are
being rebalanced.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
from dataclasses import dataclass, field

DEFAULT_AFFINITY_TIMEOUT = 10800


@dataclass(frozen=True)
class Endpoint:
    ip: str
    port: int
    ready: bool = True
    serving: bool = True
    terminating: bool = False
    node_name: str = ""

    @property
    def address(self) -> str:
        return f"[{self.ip}]:{self.port}" if ":" in self.ip else f"{self.ip}:{self.port}"


@dataclass
class ServicePort:
    namespace: str
    name: str
    port_name: str
    protocol: str
    port: int
    cluster_ips: list[str] = field(default_factory=list)
    node_port: int = 0
    external_ips: list[str] = field(default_factory=list)
    load_balancer_ips: list[str] = field(default_factory=list)
    affinity_timeout: int = 0  # 0: no ClientIP affinity
    external_local: bool = False
    internal_local: bool = False
    endpoints: list[Endpoint] = field(default_factory=list)

    @property
    def service_port_name(self) -> str:
        """`ns/name:port` as upstream prints it (no `:port` for an unnamed port)."""
        return f"{self.namespace}/{self.name}" + (f":{self.port_name}" if self.port_name else "")

    @property
    def protocol_lower(self) -> str:
        return self.protocol.lower()

    @property
    def has_external(self) -> bool:
        return bool(self.node_port or self.external_ips or self.load_balancer_ips)


def port_proto_hash(service_port_name: str, protocol: str) -> str:
    digest = hashlib.sha256((service_port_name + protocol.lower()).encode()).digest()
    return base64.b32encode(digest).decode()[:16]


def service_chain(sp: ServicePort, prefix: str = "KUBE-SVC-") -> str:
    return prefix + port_proto_hash(sp.service_port_name, sp.protocol)


def endpoint_chain(sp: ServicePort, endpoint: Endpoint) -> str:
    digest = hashlib.sha256((sp.service_port_name + sp.protocol_lower + endpoint.address).encode()).digest()
    return "KUBE-SEP-" + base64.b32encode(digest).decode()[:16]


def _ipv4(ips: list[str]) -> list[str]:
    out = []
    for ip in ips:
        try:
            if ipaddress.ip_address(ip).version == 4:
                out.append(ip)
        except ValueError:
            continue
    return out


def service_ports(service: dict, slices: list[dict]) -> list[ServicePort]:
    """The ServicePorts kube-proxy programs for one Service (none for ExternalName or headless)."""
    spec = service.get("spec") or {}
    meta = service["metadata"]
    if spec.get("type") == "ExternalName" or spec.get("clusterIP") in (None, "", "None"):
        return []
    cluster_ips = _ipv4(spec.get("clusterIPs") or [spec["clusterIP"]])
    ingress = [i["ip"] for i in ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
               if i.get("ip")] if spec.get("type") == "LoadBalancer" else []
    affinity = 0
    if spec.get("sessionAffinity") == "ClientIP":
        config = ((spec.get("sessionAffinityConfig") or {}).get("clientIP") or {})
        affinity = int(config.get("timeoutSeconds") or DEFAULT_AFFINITY_TIMEOUT)
    external_local = spec.get("externalTrafficPolicy") == "Local" and spec.get("type") in ("NodePort", "LoadBalancer")
    out = []
    for port in spec.get("ports") or []:
        sp = ServicePort(meta.get("namespace", ""), meta["name"], port.get("name", ""), port.get("protocol", "TCP"),
                         int(port["port"]), cluster_ips,
                         int(port.get("nodePort") or 0) if spec.get("type") in ("NodePort", "LoadBalancer") else 0,
                         _ipv4(spec.get("externalIPs") or []), _ipv4(ingress), affinity, external_local,
                         spec.get("internalTrafficPolicy") == "Local")
        sp.endpoints = slice_endpoints(slices, sp.port_name, sp.protocol)
        out.append(sp)
    return out


def slice_endpoints(slices: list[dict], port_name: str, protocol: str) -> list[Endpoint]:
    seen: dict[str, Endpoint] = {}
    for s in slices:
        if s.get("addressType", "IPv4") != "IPv4":
            continue
        number = next((p.get("port") for p in s.get("ports") or []
                       if p.get("name", "") == port_name and p.get("protocol", "TCP") == protocol), None)
        if not number:
            continue
        for e in s.get("endpoints") or []:
            conditions = e.get("conditions") or {}
            ready = conditions.get("ready") is not False
            endpoint = Endpoint(e["addresses"][0], int(number), ready,
                                conditions.get("serving", ready) is not False, bool(conditions.get("terminating")),
                                e.get("nodeName", ""))
            seen.setdefault(endpoint.address, endpoint)
    return sorted(seen.values(), key=lambda e: (ipaddress.ip_address(e.ip), e.port))


def usable(endpoints: list[Endpoint]) -> list[Endpoint]:
    """Ready endpoints; when none is, the serving ones that are terminating (so connections drain)."""
    ready = [e for e in endpoints if e.ready]
    return ready or [e for e in endpoints if e.serving and e.terminating]
