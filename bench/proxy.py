"""kube-proxy benchmark (root; everything inside network namespaces it creates): prints JSON.

1. Rule sync with 1,000 Services and 10,000 endpoints: the full sync at start,
   then the time from one Service's endpoints changing to its rules being in
   the kernel (one incremental iptables-restore batch), median of --repeats;
   and the same for a Service being added (KUBE-SERVICES rewritten as well).
2. Connection rate through a ClusterIP next to the same client hitting the pod
   IP directly, in the same run (new TCP connection + HTTP GET each).

    python bench/proxy.py [--services 1000] [--endpoints-per-service 10] [--repeats 9] [--connections 600]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from k8py.proxy.iptables import Iptables  # noqa: E402
from k8py.proxy.proxier import Proxier, cleanup  # noqa: E402
from k8py.proxy.rules import ProxyConfig  # noqa: E402
from tests.netns import NetnsNode  # noqa: E402

TARGETS = {"incremental_sync_ms_p50": ("<", 200), "service_added_sync_ms_p50": ("<", 200),
           "clusterip_vs_direct_ratio": (">=", 0.9)}


def service(i: int) -> dict:
    ip = f"10.43.{100 + i // 250}.{i % 250 + 1}"
    return {"metadata": {"name": f"svc-{i}", "namespace": "bench"},
            "spec": {"clusterIP": ip, "clusterIPs": [ip], "type": "NodePort" if i % 10 == 0 else "ClusterIP",
                     "ports": [{"name": "http", "port": 80, "protocol": "TCP",
                                **({"nodePort": 30000 + i // 10} if i % 10 == 0 else {})}]}}


def eslice(i: int, per: int, generation: int = 0) -> dict:
    base = i * per + generation
    return {"metadata": {"name": f"svc-{i}-x", "namespace": "bench", "labels": {"kubernetes.io/service-name": f"svc-{i}"}},
            "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": [f"10.42.{100 + (base + k) // 250}.{(base + k) % 250 + 1}"],
                           "conditions": {"ready": True}, "nodeName": "n1"} for k in range(per)]}


async def sync_figures(netns: str, services: int, per: int, repeats: int) -> dict:
    proxier = Proxier(ProxyConfig(node_name="n1", cluster_cidr="10.42.0.0/16"), Iptables(netns))
    try:
        for i in range(services):
            proxier.on_service(service(i))
            proxier.on_slice(eslice(i, per))
        started = time.monotonic()
        await proxier.sync()
        full = time.monotonic() - started
        nat = await proxier.iptables.save("nat")
        rules = sum(1 for line in nat.splitlines() if line.startswith("-A "))
        times = []
        for r in range(repeats):
            target = (r * 97) % services
            proxier.on_slice(eslice(target, per, generation=r + 1))  # one endpoint replaced
            started = time.monotonic()
            await proxier.sync()
            times.append(time.monotonic() - started)
        added = []
        for r in range(repeats):  # a new Service: KUBE-SERVICES itself must be rewritten too
            proxier.on_service(service(services + r))
            proxier.on_slice(eslice(services + r, per))
            started = time.monotonic()
            await proxier.sync()
            added.append(time.monotonic() - started)
        return {"services": services, "endpoints": services * per, "nat_rules": rules,
                "full_sync_s": round(full, 3),
                "incremental_sync_ms_p50": round(statistics.median(times) * 1000, 1),
                "incremental_sync_ms_max": round(max(times) * 1000, 1),
                "service_added_sync_ms_p50": round(statistics.median(added) * 1000, 1),
                "service_added_sync_ms_max": round(max(added) * 1000, 1)}
    finally:
        await cleanup(proxier.iptables)


def connection_figures(node: NetnsNode, connections: int) -> dict:
    proxier = Proxier(ProxyConfig(node_name="n1", cluster_cidr="10.42.0.0/16"), Iptables(node.node))
    svc = {"metadata": {"name": "one", "namespace": "bench"},
           "spec": {"clusterIP": "10.43.0.77", "clusterIPs": ["10.43.0.77"],
                    "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}}
    proxier.on_service(svc)
    proxier.on_slice({"metadata": {"name": "one-x", "namespace": "bench",
                                   "labels": {"kubernetes.io/service-name": "one"}},
                      "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                      "endpoints": [{"addresses": [node.pod_ips[0]], "conditions": {"ready": True}}]})
    asyncio.run(proxier.sync())
    try:
        rates = {"direct": [], "clusterip": []}
        for _ in range(3):  # interleaved rounds, so both paths see the same machine load
            for path, host, port in (("direct", node.pod_ips[0], 8080), ("clusterip", "10.43.0.77", 80)):
                out = node.requests(node.pod_names[1], host, port, connections)
                assert out["error_count"] == 0, out
                rates[path].append(connections / out["seconds"])
        direct, cluster = statistics.median(rates["direct"]), statistics.median(rates["clusterip"])
        return {"direct_conn_per_s": round(direct), "clusterip_conn_per_s": round(cluster),
                "clusterip_vs_direct_ratio": round(cluster / direct, 3)}
    finally:
        asyncio.run(cleanup(proxier.iptables))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--endpoints-per-service", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--connections", type=int, default=600)
    args = ap.parse_args()
    node = NetnsNode(pods=2, tag="svcb").up()
    try:
        figures = asyncio.run(sync_figures(node.node, args.services, args.endpoints_per_service, args.repeats))
        figures.update(connection_figures(node, args.connections))
    finally:
        node.down()
    print(json.dumps({"figures": figures,
                      "baseline_targets": {k: {"value": figures.get(k), "target": f"{op} {v}"}
                                           for k, (op, v) in TARGETS.items()},
                      "iptables": subprocess.run(["iptables", "--version"], capture_output=True,
                                                 text=True).stdout.strip()}, indent=2))


if __name__ == "__main__":
    main()
