"""ClusterIP and NodePort allocation for Services.

The allocated sets live in memory and are rebuilt from the stored Services at
start-up, so they can't drift from what is stored. Allocation happens on the
event loop without awaiting, so two creates can never take the same value.
"""

from __future__ import annotations

import ipaddress
import random

NODE_PORT_RANGE = (30000, 32767)


class AllocationError(Exception):
    pass


class ClusterIPAllocator:
    def __init__(self, cidr: str):
        self.network = ipaddress.ip_network(cidr, strict=False)
        self.allocated: set[str] = set()
        # Network and broadcast addresses are never handed out.
        self._first = int(self.network.network_address) + 1
        self._last = int(self.network.broadcast_address) - 1

    @property
    def first_ip(self) -> str:
        """The `kubernetes` Service's address, as upstream reserves it."""
        return str(ipaddress.ip_address(self._first))

    def contains(self, ip: str) -> bool:
        try:
            return ipaddress.ip_address(ip) in self.network
        except ValueError:
            return False

    def allocate(self, ip: str | None = None) -> str:
        if ip:
            if not self.contains(ip) or not (self._first <= int(ipaddress.ip_address(ip)) <= self._last):
                raise AllocationError(f"failed to allocate IP {ip}: the provided IP ({ip}) is not in the "
                                      f"valid range. The range of valid IPs is {self.network}")
            if ip in self.allocated:
                raise AllocationError(f"failed to allocate IP {ip}: provided IP is already allocated")
            self.allocated.add(ip)
            return ip
        size = self._last - self._first + 1
        if len(self.allocated) >= size:
            raise AllocationError("failed to allocate a serviceIP: range is full")
        # Random probing, skipping the low addresses kept for static choices
        # (the kubernetes Service, cluster DNS) as upstream's dynamic band does.
        low = self._first + min(size // 16, 255) if size > 64 else self._first
        while True:
            candidate = str(ipaddress.ip_address(random.randint(low, self._last)))
            if candidate not in self.allocated:
                self.allocated.add(candidate)
                return candidate

    def release(self, ip: str | None) -> None:
        if ip:
            self.allocated.discard(ip)


class NodePortAllocator:
    def __init__(self, port_range: tuple[int, int] = NODE_PORT_RANGE):
        self.low, self.high = port_range
        self.allocated: set[int] = set()

    def allocate(self, port: int | None = None) -> int:
        if port:
            if not self.low <= port <= self.high:
                raise AllocationError(f"provided port is not in the valid range. The range of valid "
                                      f"ports is {self.low}-{self.high}")
            if port in self.allocated:
                raise AllocationError("provided port is already allocated")
            self.allocated.add(port)
            return port
        if len(self.allocated) > self.high - self.low:
            raise AllocationError("range is full")
        while True:
            candidate = random.randint(self.low, self.high)
            if candidate not in self.allocated:
                self.allocated.add(candidate)
                return candidate

    def release(self, port: int | None) -> None:
        if port:
            self.allocated.discard(port)
