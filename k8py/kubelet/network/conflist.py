"""The CNI network configuration k8py writes: an ordinary conflist, so any
other CNI plugin chain can replace it."""

from __future__ import annotations

import ipaddress

CNI_VERSION = "1.0.0"


def gateway_of(pod_cidr: str) -> str:
    return str(next(ipaddress.ip_network(pod_cidr, strict=False).hosts()))


def build_conflist(name: str, bridge: str, pod_cidr: str, ipam_data_dir: str, mtu: int | None = None) -> dict:
    bridge_conf = {
        "type": "bridge",
        "bridge": bridge,
        "isGateway": True,
        "isDefaultGateway": True,
        # kube-proxy owns masquerading (it knows service and hairpin traffic),
        # and the host setup masquerades pod traffic leaving the cluster range.
        "ipMasq": False,
        # a pod reaching itself through its Service goes out and back the same port
        "hairpinMode": True,
        "ipam": {
            "type": "host-local",
            "ranges": [[{"subnet": pod_cidr, "gateway": gateway_of(pod_cidr)}]],
            "dataDir": ipam_data_dir,
        },
    }
    if mtu:
        bridge_conf["mtu"] = mtu
    return {
        "cniVersion": CNI_VERSION,
        "name": name,
        "plugins": [
            bridge_conf,
            {"type": "portmap", "capabilities": {"portMappings": True}, "snat": True},
        ],
    }


def loopback_conf() -> dict:
    return {"cniVersion": CNI_VERSION, "name": "k8py-loopback", "type": "loopback"}


def port_mappings(pod: dict) -> list[dict]:
    """hostPort entries of every container, in the portmap plugin's runtimeConfig shape."""
    mappings = []
    spec = pod.get("spec") or {}
    for container in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        for port in container.get("ports") or []:
            host_port = port.get("hostPort")
            if not host_port:
                continue
            mappings.append({"hostPort": int(host_port), "containerPort": int(port.get("containerPort") or host_port),
                             "protocol": (port.get("protocol") or "TCP").lower(),
                             "hostIP": port.get("hostIP") or ""})
    return mappings
