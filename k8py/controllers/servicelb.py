"""LoadBalancer Services without a cloud, the way k3s's ServiceLB does it.

Each LoadBalancer Service gets the nodes' InternalIPs as
status.loadBalancer.ingress (ExternalIPs when a node has them, as k3s does),
and kube-proxy answers the Service's ports on those addresses. A
`spec.loadBalancerIP` that is one of the node addresses narrows the ingress
to that address; one that is not leaves the Service pending with an event,
as there is nobody else to hand it out. Services with a loadBalancerClass
belong to another implementation and are left alone.
"""

from __future__ import annotations

import logging

from k8py.controllers.base import Controller

log = logging.getLogger("k8py.proxy.servicelb")


def node_addresses(nodes: list[dict]) -> list[str]:
    """InternalIPs (ExternalIPs where present) of nodes that are Ready or have not reported yet."""
    out = []
    for node in nodes:
        conditions = {c.get("type"): c.get("status") for c in (node.get("status") or {}).get("conditions") or []}
        if conditions.get("Ready", "True") != "True" or (node.get("spec") or {}).get("unschedulable"):
            continue
        addresses = (node.get("status") or {}).get("addresses") or []
        external = [a["address"] for a in addresses if a.get("type") == "ExternalIP"]
        internal = [a["address"] for a in addresses if a.get("type") == "InternalIP"]
        out += external or internal
    return sorted(set(out), key=lambda ip: tuple(int(p) for p in ip.split(".")) if "." in ip else (999, ip))


def wanted_ingress(service: dict, nodes: list[dict]) -> list[dict] | None:
    """The ingress list to publish, or None when loadBalancerIP names no node address."""
    addresses = node_addresses(nodes)
    requested = (service.get("spec") or {}).get("loadBalancerIP")
    if requested:
        if requested not in addresses:
            return None
        addresses = [requested]
    return [{"ip": ip, "ipMode": "VIP"} for ip in addresses]


def is_ours(service: dict) -> bool:
    spec = service.get("spec") or {}
    return spec.get("type") == "LoadBalancer" and not spec.get("loadBalancerClass")


class ServiceLBController(Controller):
    name = "service-lb"
    workers = 1

    async def setup(self) -> None:
        self.services = self.ctx.informer("v1", "services")
        self.nodes = self.ctx.informer("v1", "nodes")
        self.services.add_handler(self.enqueue, lambda old, new: self.enqueue(new))
        self.nodes.add_handler(self._nodes_changed, lambda old, new: self._nodes_changed(new), self._nodes_changed)

    def _nodes_changed(self, _node: dict) -> None:
        for service in self.services.list():
            if is_ours(service):
                self.enqueue(service)

    async def sync(self, key: str) -> None:
        service = self.services.get(key)
        if service is None:
            return
        status = service.get("status") or {}
        current = (status.get("loadBalancer") or {}).get("ingress") or []
        if not is_ours(service):
            if current and (service.get("spec") or {}).get("type") != "LoadBalancer":
                await self._write(service, [])  # no longer a LoadBalancer: withdraw the ingress
            return
        wanted = wanted_ingress(service, self.nodes.list())
        if wanted is None:
            self.recorder.event(service, "Warning", "LoadBalancerIPNotAvailable",
                                f"loadBalancerIP {service['spec']['loadBalancerIP']} is not a node address")
            wanted = []
        if wanted != current:
            await self._write(service, wanted)
            if wanted:
                self.recorder.event(service, "Normal", "UpdatedIngressIP",
                                    "LoadBalancer Ingress IP addresses updated: " + ", ".join(i["ip"] for i in wanted))

    async def _write(self, service: dict, ingress: list[dict]) -> None:
        body = dict(service)
        body["status"] = {**(service.get("status") or {}), "loadBalancer": {"ingress": ingress} if ingress else {}}
        await self.client.resource("v1", "services", service["metadata"]["namespace"]).update_status(body)

