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


def build_records(services: int):
    from k8py.dns.records import ClusterRecords
    records = ClusterRecords("cluster.local")
    for i in range(services):
        ip = f"10.43.{100 + i // 250}.{i % 250 + 1}"
        records.set_service({"metadata": {"name": f"svc-{i}", "namespace": "bench"},
                             "spec": {"clusterIP": ip, "clusterIPs": [ip],
                                      "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}})
        records.set_service({"metadata": {"name": f"hl-{i}", "namespace": "bench"},
                             "spec": {"clusterIP": "None", "ports": [{"name": "http", "port": 80}]}})
        records.set_slice({"metadata": {"name": f"hl-{i}-x", "namespace": "bench",
                                        "labels": {"kubernetes.io/service-name": f"hl-{i}"}},
                           "addressType": "IPv4", "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
                           "endpoints": [{"addresses": [f"10.42.{i % 200}.{k + 1}"], "conditions": {"ready": True}}
                                         for k in range(3)]})
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


def client(port: int, services: int, seconds: float, window: int) -> dict:
    wire = questions(services)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(("127.0.0.1", port))
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
    args = ap.parse_args()
    if args.serve is not None:
        asyncio.run(serve(args.serve, args.services, args.uncached))
        return
    figures = run_once(args, uncached=False)
    figures["uncached_qps"] = run_once(args, uncached=True)["qps"]
    print(json.dumps({"figures": figures,
                      "baseline_targets": {k: {"value": figures.get(k), "target": f"{op} {v}"}
                                           for k, (op, v) in TARGETS.items()}}, indent=2))


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
