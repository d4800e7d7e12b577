"""Service address allocation: cluster IPs and node ports.

Runs inside the Service write path: allocate on create, carry allocated
values over on update (a PUT that omits them keeps them, as upstream), and
release what a deleted or changed Service no longer uses.
"""

from __future__ import annotations

from k8py.apimachinery import errors
from k8py.apiserver.allocators import AllocationError, ClusterIPAllocator, NodePortAllocator

NODE_PORT_TYPES = ("NodePort", "LoadBalancer")


def _go_strings(values: list[str]) -> str:
    return "[]string{" + ", ".join(f'"{v}"' for v in values) + "}"


class ServiceAllocations:
    def __init__(self, service_cidr: str):
        self.ips = ClusterIPAllocator(service_cidr)
        self.ports = NodePortAllocator()

    # ---- bookkeeping ------------------------------------------------------

    def restore(self, service: dict) -> None:
        """Mark a stored Service's values as taken (at start-up)."""
        spec = service.get("spec") or {}
        for ip in spec.get("clusterIPs") or [spec.get("clusterIP")]:
            if ip and ip != "None" and self.ips.contains(ip):
                self.ips.allocated.add(ip)
        for port in self._node_ports(spec):
            self.ports.allocated.add(port)

    @staticmethod
    def _node_ports(spec: dict) -> list[int]:
        ports = [p.get("nodePort") for p in spec.get("ports") or [] if isinstance(p, dict)]
        if spec.get("healthCheckNodePort"):
            ports.append(spec["healthCheckNodePort"])
        return [p for p in ports if isinstance(p, int) and p]

    @staticmethod
    def _cluster_ips(spec: dict) -> list[str]:
        ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
        return [ip for ip in ips if ip and ip != "None"]

    def release(self, service: dict) -> None:
        spec = service.get("spec") or {}
        for ip in self._cluster_ips(spec):
            self.ips.release(ip)
        for port in self._node_ports(spec):
            self.ports.release(port)

    # ---- create -----------------------------------------------------------

    def allocate(self, service: dict, name: str) -> None:
        """Fill in clusterIP(s) and nodePorts, or raise 422 Invalid with nothing held."""
        spec = service.setdefault("spec", {})
        taken_ips: list[str] = []
        taken_ports: list[int] = []
        try:
            self._allocate_ip(spec, taken_ips, name)
            self._allocate_node_ports(spec, taken_ports, name)
        except errors.StatusError:
            for ip in taken_ips:
                self.ips.release(ip)
            for port in taken_ports:
                self.ports.release(port)
            raise

    def _allocate_ip(self, spec: dict, taken: list[str], name: str) -> None:
        if spec.get("type") == "ExternalName":
            return
        wanted = spec.get("clusterIP") or (spec.get("clusterIPs") or [None])[0]
        if wanted == "None":
            spec["clusterIP"], spec["clusterIPs"] = "None", ["None"]
            return
        try:
            ip = self.ips.allocate(wanted or None)
        except AllocationError as err:
            shown = spec.get("clusterIPs") or ([wanted] if wanted else [])
            raise errors.invalid("Service", name, [errors.Cause(
                "spec.clusterIPs", f"Invalid value: {_go_strings(shown)}: {err}")]) from None
        taken.append(ip)
        spec["clusterIP"], spec["clusterIPs"] = ip, [ip]

    def _allocate_node_ports(self, spec: dict, taken: list[int], name: str) -> None:
        if spec.get("type") not in NODE_PORT_TYPES:
            return
        if spec.get("type") == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is False:
            return
        for i, port in enumerate(spec.get("ports") or []):
            if not isinstance(port, dict):
                continue
            try:
                port["nodePort"] = self.ports.allocate(port.get("nodePort") or None)
            except AllocationError as err:
                raise errors.invalid("Service", name, [errors.Cause(
                    f"spec.ports[{i}].nodePort", f"Invalid value: {port.get('nodePort')}: {err}")]) from None
            taken.append(port["nodePort"])

    # ---- update -----------------------------------------------------------

    def carry_over(self, new: dict, old: dict) -> None:
        """A PUT that leaves allocated values out keeps them (patchAllocatedValues)."""
        ns, os_ = new.setdefault("spec", {}), old.get("spec") or {}
        if ns.get("type") != "ExternalName" and os_.get("type") != "ExternalName":
            if not ns.get("clusterIP") and os_.get("clusterIP"):
                ns["clusterIP"] = os_["clusterIP"]
            if not ns.get("clusterIPs") and os_.get("clusterIPs"):
                ns["clusterIPs"] = list(os_["clusterIPs"])
        if ns.get("type") in NODE_PORT_TYPES and os_.get("type") in NODE_PORT_TYPES:
            old_ports = {(p.get("port"), p.get("protocol", "TCP")): p.get("nodePort")
                         for p in os_.get("ports") or [] if isinstance(p, dict)}
            for port in ns.get("ports") or []:
                if isinstance(port, dict) and not port.get("nodePort"):
                    prev = old_ports.get((port.get("port"), port.get("protocol", "TCP")))
                    if prev:
                        port["nodePort"] = prev

    def reallocate(self, new: dict, old: dict, name: str) -> None:
        """Allocate what the updated Service newly needs; release what it dropped."""
        ns, os_ = new.setdefault("spec", {}), old.get("spec") or {}
        old_ips, old_ports = set(self._cluster_ips(os_)), set(self._node_ports(os_))
        # Values kept from the old object are already ours: set them aside so
        # allocate() doesn't see them as taken by someone else.
        for ip in old_ips:
            self.ips.release(ip)
        for port in old_ports:
            self.ports.release(port)
        try:
            if ns.get("type") == "ExternalName":
                ns.pop("clusterIP", None)
                ns.pop("clusterIPs", None)
            else:
                self._allocate_ip(ns, [], name)
            if ns.get("type") in NODE_PORT_TYPES:
                self._allocate_node_ports(ns, [], name)
            else:
                for port in ns.get("ports") or []:
                    if isinstance(port, dict):
                        port.pop("nodePort", None)
        except errors.StatusError:
            self.release(new)
            self.restore(old)
            raise

    def undo_reallocate(self, new: dict, old: dict) -> None:
        self.release(new)
        self.restore(old)
