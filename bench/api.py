"""API server benchmark: prints one JSON document of figures.

Starts a fresh `k8py server` pinned to one core (taskset -c 0) in a temporary
data dir, then measures from a client process pinned to the other core:
cold start to /readyz, idle RSS, creates/s with 32 concurrent clients,
RSS with 10,000 ConfigMaps, gets/s, one list of 10,000 objects, and watch
delivery latency with 100 watchers. The issue's targets are printed beside
the figures as the baseline they are compared against.

    python bench/api.py [--objects 10000] [--watchers 100] [--datastore sqlite|etcd|both]

`--datastore etcd` runs the server on a fresh local etcd (Debian's etcd-server,
pinned to the server's core); `both` runs SQLite then etcd and adds the ratio
etcd/SQLite of each figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import free_port, rss_mb, start_server  # noqa: E402

TOKEN = "bench-token"
TARGETS = {"start_s": ("<", 1.5), "idle_rss_mb": ("<", 120), "creates_per_s": (">=", 1000),
           "gets_per_s": (">=", 3000), "list_10k_s": ("<", 1.0), "watch_p99_ms": ("<", 100)}


def configmap(i: int) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{i:05d}", "labels": {"bench": "1"}},
            "data": {"key": "value-%d" % i}}


async def run_clients(count: int, concurrency: int, work) -> float:
    queue = list(range(count))
    started = time.monotonic()

    async def worker():
        while queue:
            await work(queue.pop())
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.monotonic() - started


async def measure(base: str, objects: int, watchers: int, pid: int) -> dict:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(ssl=False, limit=0)
    results: dict = {}
    async with aiohttp.ClientSession(base, headers=headers, connector=connector) as http:
        ns = "/api/v1/namespaces/default/configmaps"

        async def create(i):
            async with http.post(ns, data=json.dumps(configmap(i))) as r:
                assert r.status == 201, await r.text()
        elapsed = await run_clients(objects, 32, create)
        results["creates_per_s"] = round(objects / elapsed)
        results["rss_10k_mb"] = round(rss_mb(pid), 1)

        async def get(i):
            async with http.get(f"{ns}/cm-{i % objects:05d}") as r:
                assert r.status == 200
                await r.read()
        gets = min(objects, 10000)
        elapsed = await run_clients(gets, 32, get)
        results["gets_per_s"] = round(gets / elapsed)

        started = time.monotonic()
        async with http.get(ns) as r:
            body = await r.json()
        results["list_10k_s"] = round(time.monotonic() - started, 3)
        results["list_items"] = len(body["items"])

        results.update(await watch_latency(http, watchers))
    return results


async def watch_latency(http, watchers: int, updates: int = 100) -> dict:
    path = "/api/v1/namespaces/default/configmaps"
    async with http.post(path, data=json.dumps(configmap(99999) | {"metadata": {"name": "watched"}})) as r:
        created = await r.json()
    rv = created["metadata"]["resourceVersion"]
    sent: dict[str, float] = {}
    latencies: list[float] = []
    ready = asyncio.Event()
    connected = 0

    async def watcher():
        nonlocal connected
        url = f"{path}?watch=true&resourceVersion={rv}&fieldSelector=metadata.name%3Dwatched&timeoutSeconds=60"
        async with http.get(url) as resp:
            connected += 1
            if connected == watchers:
                ready.set()
            seen = 0
            async for line in resp.content:
                event = json.loads(line)
                stamp = event["object"].get("data", {}).get("seq")
                if stamp in sent:
                    latencies.append(time.monotonic() - sent[stamp])
                    seen += 1
                    if seen == updates:
                        return
    tasks = [asyncio.create_task(watcher()) for _ in range(watchers)]
    await asyncio.wait_for(ready.wait(), 30)
    for i in range(updates):
        seq = str(i)
        sent[seq] = time.monotonic()
        patch = json.dumps({"data": {"seq": seq}})
        async with http.patch(f"{path}/watched", data=patch,
                              headers={"Content-Type": "application/merge-patch+json"}) as r:
            assert r.status == 200
        await asyncio.sleep(0.01)
    await asyncio.wait_for(asyncio.gather(*tasks), 60)
    latencies.sort()
    return {"watch_p50_ms": round(statistics.median(latencies) * 1000, 2),
            "watch_p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 2),
            "watch_events": len(latencies)}


def bench_once(objects: int, watchers: int, datastore: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="k8py-bench-") as tmp:
        etcd, extra = None, ()
        if datastore == "etcd":
            from tests.etcd_server import start_etcd
            etcd = start_etcd(Path(tmp) / "etcd")
            if (os.cpu_count() or 1) > 1:
                os.sched_setaffinity(etcd.process.pid, {0})  # the server's side of the machine
            extra = ("--datastore-endpoint", etcd.endpoint)
        port = free_port()
        try:
            proc, start_s = start_server(Path(tmp) / "server", port, TOKEN, extra=extra, wait_for_kubeconfig=False)
            try:
                time.sleep(1.0)  # let start-up garbage settle before reading idle RSS
                figures = {"start_s": round(start_s, 3), "idle_rss_mb": round(rss_mb(proc.pid), 1)}
                figures.update(asyncio.run(measure(f"https://127.0.0.1:{port}", objects, watchers, proc.pid)))
            finally:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:  # a loaded machine: don't leave it behind
                    proc.kill()
                    proc.wait()
        finally:
            if etcd is not None:
                etcd.stop()
    return figures


def verdicts(figures: dict) -> dict:
    out = {}
    for key, (op, target) in TARGETS.items():
        value = figures.get(key)
        ok = value is not None and (value < target if op == "<" else value >= target)
        out[key] = {"value": value, "target": f"{op} {target}", "met": ok}
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--objects", type=int, default=10000)
    parser.add_argument("--watchers", type=int, default=100)
    parser.add_argument("--datastore", choices=("sqlite", "etcd", "both"), default="sqlite")
    args = parser.parse_args()
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})
    load = os.getloadavg()
    if args.datastore != "both":
        figures = bench_once(args.objects, args.watchers, args.datastore)
        print(json.dumps({"datastore": args.datastore, "loadavg": load, "figures": figures,
                          "baseline_targets": verdicts(figures)}, indent=2))
        return 0
    runs = {name: bench_once(args.objects, args.watchers, name) for name in ("sqlite", "etcd")}
    ratio = {key: round(runs["etcd"][key] / runs["sqlite"][key], 2)
             for key in runs["sqlite"] if isinstance(runs["sqlite"][key], (int, float)) and runs["sqlite"][key]
             and isinstance(runs["etcd"].get(key), (int, float))}
    print(json.dumps({"loadavg": load, "loadavg_after": os.getloadavg(), **runs, "etcd_over_sqlite": ratio},
                     indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
