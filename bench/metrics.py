"""Metrics benchmark: what a metrics-server scrape of 1,000 pods costs. Prints one JSON document.

A fresh `k8py server` (core 0, scraping every --resolution seconds) and `k8py agent
--runtime simulated --count 10 --simulated-usage ...` (core 1); 1,000 pods bound
round-robin to the 10 hollow nodes. Then:

- scrape_cpu_s: CPU seconds of one scrape round (10 kubelets' /metrics/resource
  fetched, parsed and stored) plus serving the 1,000-pod PodMetricsList, measured
  with time.process_time around the same code the server runs (k8py.metricsserver),
  here in the benchmark's own process (target < 0.5 s);
- server_cpu_s_per_interval: the server process's whole CPU time per scrape
  interval while it scrapes (its own scrapes plus heartbeats, leases and watches
  of 10 nodes and 1,000 pods: an upper bound of the scrape's share);
- the load average, since the machine may be shared.

    python bench/metrics.py [--pods 1000] [--nodes 10] [--resolution 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.api import TOKEN  # noqa: E402
from bench.common import cpu_seconds, free_port, pinned, start_server  # noqa: E402
from bench.pods import create_and_wait, pod  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TARGETS = {"scrape_cpu_s": ("<", 0.5)}


async def measure_in_process(url: str, tls_dir: Path, pods: int, rounds: int = 5) -> dict:
    import orjson

    from k8py.client import Client
    from k8py.metricsserver import MetricsServer
    from k8py.metricsserver.api import MetricsAPI, _time
    client = Client(url, token=TOKEN, insecure=True)
    scraper = MetricsServer(client, tls_dir, 15.0)
    await asyncio.gather(scraper.nodes.start(), scraper.pods.start())
    api = MetricsAPI(scraper.storage, scraper.nodes, scraper.pods)
    try:
        costs, listed = [], 0
        for _ in range(rounds):
            began = time.process_time()
            await scraper.scrape_all()
            now = _time(time.time())
            items = [m for m in (api.pod_metrics(p, now) for p in scraper.pods.list()) if m is not None]
            orjson.dumps({"kind": "PodMetricsList", "items": items})
            costs.append(time.process_time() - began)
            listed = len(items)
            await asyncio.sleep(1.0)         # the next readings are new ones
        costs.sort()
        return {"scrape_cpu_s": round(costs[len(costs) // 2], 3), "scrape_cpu_s_max": round(costs[-1], 3),
                "pods_with_metrics": listed, "scrape_rounds": rounds}
    finally:
        await scraper.stop()
        await client.close()


def run(pods: int, nodes: int, resolution: float) -> dict:
    work = Path(tempfile.mkdtemp(prefix="k8py-bench-metrics-"))
    port = free_port()
    server, _ = start_server(work / "server", port, TOKEN, extra=("--metric-resolution", f"{resolution}s",
                                                                   "--disable", "dns", "--disable", "local-storage"))
    agent = None
    try:
        cmd = [sys.executable, "-m", "k8py", "agent", "--server", f"https://127.0.0.1:{port}", "--token", TOKEN,
               "--runtime", "simulated", "--count", str(nodes), "--node-name", "hollow",
               "--simulated-usage", "cpu=20m,memory=24Mi", "--data-dir", str(work / "hollow")]
        agent = subprocess.Popen(pinned(cmd, 1), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=REPO)
        if b"registered" not in agent.stdout.readline():
            return {"error": "agent did not register its nodes"}
        objs = [pod(f"hollow-{i:04d}", f"hollow-{i % nodes}") for i in range(pods)]
        total, latencies = asyncio.run(create_and_wait(f"https://127.0.0.1:{port}", objs, 180))
        # the server's own scrapes: its CPU over three intervals once every pod is in them
        time.sleep(2 * resolution)
        before, began = cpu_seconds(server.pid), time.monotonic()
        time.sleep(3 * resolution)
        per_interval = (cpu_seconds(server.pid) - before) / ((time.monotonic() - began) / resolution)
        figures = asyncio.run(measure_in_process(f"https://127.0.0.1:{port}", work / "server" / "server" / "tls",
                                                 pods))
        figures.update({"pods": pods, "nodes": nodes, "pods_running": len(latencies),
                        "resolution_s": resolution, "server_cpu_s_per_interval": round(per_interval, 3),
                        "loadavg_1m": round(os.getloadavg()[0], 2), "cpus": os.cpu_count()})
        return figures
    finally:
        if agent is not None:
            agent.terminate()
            agent.wait(10)
        server.terminate()
        server.wait(10)
        shutil.rmtree(work, ignore_errors=True)      # the server's data, its pods with it


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pods", type=int, default=1000)
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--resolution", type=float, default=5.0)
    args = parser.parse_args()
    figures = run(args.pods, args.nodes, args.resolution)
    figures["targets"] = {k: f"{op} {v}" for k, (op, v) in TARGETS.items()}
    figures["met"] = {k: (figures.get(k) is not None and (figures[k] < v if op == "<" else figures[k] > v))
                      for k, (op, v) in TARGETS.items()}
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
