"""Cluster DNS benchmark: prints JSON. Only cluster names are asked (nothing is forwarded).

The server (k8py.dns: records for --services Services, each with a headless
twin of 3 endpoints) runs in its own process pinned to core 0 on
127.0.0.1; a client on core 1 keeps --window UDP queries in flight over a
mix of A (ClusterIP), A (headless), SRV and NXDOMAIN names and counts
answers per second. Forwarding is switched off in the server, so no query
can reach the host's resolvers.

    python bench/dns.py [--services 1000] [--seconds 5] [--window 64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dnslib import RCODE, DNSRecord  # noqa: E402

TARGETS = {"qps": (">=", 5000)}


def objects(services: int) -> dict:
    out = {"services": [], "slices": []}
    for i in range(services):
        ip = f"10.43.{100 + i // 250}.{i % 250 + 1}"
        out["services"].append({"metadata": {"name": f"svc-{i}", "namespace": "bench"},
                                "spec": {"clusterIP": ip, "clusterIPs": [ip],
                                         "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}})
        out["services"].append({"metadata": {"name": f"hl-{i}", "namespace": "bench"},
                                "spec": {"clusterIP": "None", "ports": [{"name": "http", "port": 80}]}})
        out["slices"].append({"metadata": {"name": f"hl-{i}-x", "namespace": "bench",
                                           "labels": {"kubernetes.io/service-name": f"hl-{i}"}},
                              "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                              "endpoints": [{"addresses": [f"10.42.{i % 200}.{k + 1}"],
                                             "conditions": {"ready": True}} for k in range(3)]})
    return out


def build_records(services: int):
    from k8py.dns.records import ClusterRecords
    records = ClusterRecords("cluster.local")
    data = objects(services)
    for svc in data["services"]:
        records.set_service(svc)
    for s in data["slices"]:
        records.set_slice(s)
    return records


class NoCache(dict):
    def __setitem__(self, key, value):
        pass  # every query computed from the records: the uncached figure


async def serve(port: int, services: int, uncached: bool) -> None:
    from k8py.dns.server import DNSHandler, DNSServer
    handler = DNSHandler(build_records(services), forwarder=None)
    if uncached:
        handler._wire_cache = NoCache()
    server = DNSServer(handler)
    await server.listen("127.0.0.1", port)
    print("ready", flush=True)
    await asyncio.Event().wait()


def questions(services: int) -> list[bytes]:
    out = []
    for i in range(services):
        out.append(DNSRecord.question(f"svc-{i}.bench.svc.cluster.local", "A").pack())
        out.append(DNSRecord.question(f"hl-{i}.bench.svc.cluster.local", "A").pack())
        out.append(DNSRecord.question(f"_http._tcp.svc-{i}.bench.svc.cluster.local", "SRV").pack())
        out.append(DNSRecord.question(f"missing-{i}.bench.svc.cluster.local", "A").pack())
    random.Random(1).shuffle(out)
    return out


def client(port: int, services: int, seconds: float, window: int, host: str = "127.0.0.1") -> dict:
    wire = questions(services)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect((host, port))
    sock.settimeout(1.0)
    answered = nx = lost = 0
    sent = 0
    deadline = time.monotonic() + seconds
    started = time.monotonic()
    for _ in range(window):
        sock.send(wire[sent % len(wire)])
        sent += 1
    while time.monotonic() < deadline:
        try:
            data = sock.recv(4096)
        except socket.timeout:
            lost += window  # refill the window after a stall
            for _ in range(window):
                sock.send(wire[sent % len(wire)])
                sent += 1
            continue
        answered += 1
        if data[3] & 0x0F == RCODE.NXDOMAIN:
            nx += 1
        sock.send(wire[sent % len(wire)])
        sent += 1
    elapsed = time.monotonic() - started
    return {"qps": round(answered / elapsed), "answered": answered, "nxdomain": nx, "lost_or_late": lost,
            "seconds": round(elapsed, 2), "distinct_names": len(wire), "window": window}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--services", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--window", type=int, default=64)
    ap.add_argument("--serve", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--uncached", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--client", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--skip-pod", action="store_true", help="leave out the pod-through-ClusterIP figure")
    args = ap.parse_args()
    if args.serve is not None:
        asyncio.run(serve(args.serve, args.services, args.uncached))
        return
    if args.client:
        host, _, port = args.client.rpartition(":")
        print(json.dumps(client(int(port), args.services, args.seconds, args.window, host)))
        return
    figures = run_once(args, uncached=False)
    figures["uncached_qps"] = run_once(args, uncached=True)["qps"]
    if os.geteuid() == 0 and not args.skip_pod:
        figures["pod_via_cluster_ip_qps"] = from_pod(args)["qps"]
    print(json.dumps({"figures": figures,
                      "baseline_targets": {k: {"value": figures.get(k), "target": f"{op} {v}"}
                                           for k, (op, v) in TARGETS.items()}}, indent=2))


def from_pod(args) -> dict:
    """The same client inside a pod namespace, asking 10.43.0.10 (kube-dns), DNATed to the node's bridge address."""
    import tempfile

    from k8py.dns.service import kube_dns_service
    from k8py.proxy.iptables import Iptables
    from k8py.proxy.proxier import Proxier, cleanup
    from k8py.proxy.rules import ProxyConfig
    from tests.netns import NetnsNode
    node = NetnsNode(pods=1, tag="svcd").up()
    proxier = Proxier(ProxyConfig(node_name="n1", cluster_cidr="10.42.0.0/16"), Iptables(node.node))
    with tempfile.NamedTemporaryFile("w", suffix=".json") as records:
        json.dump(objects(args.services), records)
        records.flush()
        server = subprocess.Popen(["ip", "netns", "exec", node.node, "taskset", "-c", "0", sys.executable,
                                   str(Path(__file__).resolve().parents[1] / "tests" / "dnsserve.py"),
                                   "10.42.0.1:53", records.name], stdout=subprocess.PIPE, text=True)
        try:
            assert server.stdout.readline().strip() == "ready"
            kube_dns = kube_dns_service("10.43.0.10")
            kube_dns["metadata"]["namespace"] = "kube-system"
            proxier.on_service(kube_dns)
            proxier.on_slice({"metadata": {"name": "kube-dns-x", "namespace": "kube-system",
                                           "labels": {"kubernetes.io/service-name": "kube-dns"}},
                              "addressType": "IPv4", "ports": [{"name": "dns", "port": 53, "protocol": "UDP"}],
                              "endpoints": [{"addresses": ["10.42.0.1"], "conditions": {"ready": True}}]})
            asyncio.run(proxier.sync())
            out = node.exec(node.pod_names[0], "taskset", "-c", "1", sys.executable, __file__, "--client",
                            "10.43.0.10:53", "--services", str(args.services), "--seconds", str(args.seconds),
                            "--window", str(args.window))
            return json.loads(out)
        finally:
            server.terminate()
            server.wait(timeout=10)
            asyncio.run(cleanup(proxier.iptables))
            node.down()


def run_once(args, uncached: bool) -> dict:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pin = ["taskset", "-c", "0"] if os.cpu_count() and os.cpu_count() > 1 else []
    server = subprocess.Popen([*pin, sys.executable, __file__, "--serve", str(port), "--services",
                               str(args.services), *(["--uncached"] if uncached else [])],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().strip() == "ready"
        if pin:
            os.sched_setaffinity(0, {1})
        return client(port, args.services, args.seconds, args.window)
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
