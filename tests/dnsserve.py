"""Serve cluster DNS from a JSON file of Services and EndpointSlices (no API server, no forwarding).

Used by tests and benchmarks that need the DNS server inside a network
namespace: `ip netns exec <ns> python tests/dnsserve.py HOST:PORT records.json`.
Prints "ready" once listening.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from k8py.dns.records import ClusterRecords  # noqa: E402
from k8py.dns.server import DNSHandler, DNSServer  # noqa: E402


async def main(listen: str, path: str) -> None:
    data = json.loads(Path(path).read_text())
    records = ClusterRecords("cluster.local")
    for svc in data.get("services", []):
        records.set_service(svc)
    for s in data.get("slices", []):
        records.set_slice(s)
    host, _, port = listen.rpartition(":")
    server = DNSServer(DNSHandler(records, forwarder=None))
    await server.listen(host, int(port))
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
