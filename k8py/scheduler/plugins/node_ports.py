"""NodePorts: two pods can't hold the same host port (and protocol) on one address."""

from __future__ import annotations

from k8py.scheduler.framework import SKIPPED, unschedulable

ERR_REASON = "node(s) didn't have free ports for the requested pod ports"
ANY_IP = "0.0.0.0"


def conflicts(wanted: list[tuple[str, str, int]], used: dict) -> bool:
    for ip, proto, port in wanted:
        holders = used.get((proto, port))
        if not holders:
            continue
        # 0.0.0.0 on either side takes the port on every address.
        if ip == ANY_IP or ANY_IP in holders or ip in holders:
            return True
    return False


class NodePorts:
    name = "NodePorts"

    def pre_filter(self, state, pod, snapshot):
        return None if pod.ports else SKIPPED

    def filter(self, state, pod, node):
        if conflicts(pod.ports, node.used_ports):
            return unschedulable(ERR_REASON)
        return None
