"""kube-proxy: Services programmed into iptables (ipvs is asked for but this kernel has none).

`run(client, cfg)` follows Services and EndpointSlices and keeps the node's
tables in step; `cleanup()` removes every chain and rule it made (what
`k8py agent --cleanup` and `k8py proxy --cleanup` call).
"""

from __future__ import annotations

import logging
import os
import socket
from pathlib import Path

from k8py.client import Client, Informer
from k8py.proxy.iptables import Iptables
from k8py.proxy.proxier import Proxier
from k8py.proxy.proxier import cleanup as _cleanup_iptables
from k8py.proxy.rules import ProxyConfig

log = logging.getLogger("k8py.proxy")

__all__ = ["ProxyConfig", "Proxier", "Iptables", "run", "run_in_agent", "run_in_server", "cleanup",
           "ipvs_available", "choose_mode"]


def default_node_name() -> str:
    return os.environ.get("K8PY_NODE_NAME") or socket.gethostname().lower()


def ipvs_available() -> bool:
    return Path("/proc/net/ip_vs").exists() or Path("/sys/module/ip_vs").exists()


def choose_mode(requested: str) -> str:
    """The mode to run: ipvs only when the kernel has it, else iptables, said plainly."""
    if requested == "ipvs":
        if ipvs_available():
            log.warning("ipvs mode: the kernel has ip_vs, but k8py's ipvs proxier is not written yet; "
                        "using iptables mode")
        else:
            log.warning("ipvs mode requested but this kernel has no ip_vs module (/proc/net/ip_vs missing); "
                        "falling back to iptables mode")
        return "iptables"
    if requested not in ("", "iptables"):
        log.warning("unknown proxy mode %r; using iptables mode", requested)
    return "iptables"


async def run(client: Client, cfg: ProxyConfig, iptables: Iptables | None = None, mode: str = "iptables",
              min_sync_period: float = 0.05, health_address: str | None = None) -> None:
    """Follow Services and EndpointSlices into iptables until cancelled.

    `health_address` ("127.0.0.1:10256") serves /healthz, /livez and /metrics there.
    """
    from k8py.proxy import health
    choose_mode(mode)
    proxier = Proxier(cfg, iptables or Iptables(), min_sync_period=min_sync_period)
    runner = None
    if health_address:
        host, _, port = health_address.rpartition(":")
        runner = await health.serve(proxier, host, int(port))
    services = Informer(client, "v1", "services")
    slices = Informer(client, "discovery.k8s.io/v1", "endpointslices")
    services.add_handler(proxier.on_service, lambda old, new: proxier.on_service(new), proxier.on_service_deleted)
    slices.add_handler(proxier.on_slice, lambda old, new: proxier.on_slice(new), proxier.on_slice_deleted)
    try:
        await services.start()
        await slices.start()
        log.info("kube-proxy (iptables) for node %s: %d Services", cfg.node_name, len(services.list()))
        await proxier.run()
    finally:
        await services.stop()
        await slices.stop()
        if runner is not None:
            await runner.cleanup()


async def cleanup(netns: str | None = None) -> None:
    """Remove every kube-proxy chain and rule from this node's (or a namespace's) tables."""
    await _cleanup_iptables(Iptables(netns))


async def run_in_server(args, client: Client) -> None:
    """kube-proxy for the server's own node (only when the server runs an agent, as root).

    `k8py agent` can run it the same way (its args carry node_name and cluster_cidr too).
    """
    if getattr(args, "disable_agent", False) or os.geteuid() != 0:
        return
    cfg = ProxyConfig(node_name=(getattr(args, "node_name", None) or default_node_name()).lower(),
                      cluster_cidr=getattr(args, "cluster_cidr", "10.42.0.0/16"))
    await run(client, cfg, health_address="127.0.0.1:10256")


run_in_agent = run_in_server
