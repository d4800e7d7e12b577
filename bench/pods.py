"""Pod benchmark: prints one JSON document of figures.

1. Hollow nodes: a fresh `k8py server` (one core) and `k8py agent --runtime
   simulated --count 10` (the other core); 1,000 pods bound round-robin to the
   10 nodes; seconds until all are Running (target < 20 s) and the agent's RSS.
2. Real pods (root, with the runc runtime): 100 busybox pods on the server's
   own node; creation-to-Running p50/p99 next to a bare `runc run` of the same
   container measured in the same run (targets: p99 < 1 s, < 3x bare runc),
   agent RSS with 100 pods (< 150 MB). Skipped, with the reason, when runc or
   the image isn't available.

    python bench/pods.py [--hollow-pods 1000] [--nodes 10] [--real-pods 100]
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

from bench.api import TOKEN, free_port, rss_mb, start_server  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TARGETS = {"hollow_all_running_s": ("<", 20), "real_p99_s": ("<", 1.0), "real_overhead_x": ("<", 3.0),
           "real_agent_rss_mb": ("<", 150)}


def pod(name: str, node: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"bench": "pods"}},
            "spec": {"nodeName": node, "automountServiceAccountToken": False,
                     "containers": [{"name": "c", "image": "busybox", "imagePullPolicy": "IfNotPresent",
                                     "command": ["sleep", "3600"]}]}}


async def create_and_wait(url: str, pods: list[dict], timeout: float) -> tuple[float, list[float]]:
    """Create pods (32 at a time) and watch until all are Running; per-pod latencies."""
    from k8py.client import Client
    client = Client(url, token=TOKEN, insecure=True)
    api = client.resource("v1", "pods", namespace="default")
    rv = (await api.list(limit=1))["metadata"]["resourceVersion"]
    created_at: dict[str, float] = {}
    running_at: dict[str, float] = {}
    started = time.monotonic()

    async def watch():
        async for _, obj in api.watch(resource_version=rv, label_selector="bench=pods", timeout_seconds=int(timeout)):
            name = obj["metadata"]["name"]
            if (obj.get("status") or {}).get("phase") == "Running" and name not in running_at:
                running_at[name] = time.monotonic()
                if len(running_at) == len(pods):
                    return
    watcher = asyncio.create_task(watch())
    queue = list(pods)

    async def creator():
        while queue:
            p = queue.pop(0)
            created_at[p["metadata"]["name"]] = time.monotonic()
            await api.create(p)
    await asyncio.gather(*(creator() for _ in range(32)))
    try:
        await asyncio.wait_for(watcher, timeout)
    except asyncio.TimeoutError:
        pass
    total = time.monotonic() - started
    await client.close()
    return total, sorted(running_at[n] - created_at[n] for n in running_at)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return round(values[min(len(values) - 1, int(q * len(values)))], 3)


def hollow(port: int, data: Path, pods: int, nodes: int) -> dict:
    cmd = [sys.executable, "-m", "k8py", "agent", "--server", f"https://127.0.0.1:{port}", "--token", TOKEN,
           "--runtime", "simulated", "--count", str(nodes), "--node-name", "hollow",
           "--data-dir", str(data / "hollow")]
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        cmd = ["taskset", "-c", "1", *cmd]
    agent = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=REPO)
    try:
        line = agent.stdout.readline()     # "k8py: N hollow nodes registered"
        if b"registered" not in line:
            return {"hollow_error": "agent did not register its nodes"}
        objs = [pod(f"hollow-{i:04d}", f"hollow-{i % nodes}") for i in range(pods)]
        total, latencies = asyncio.run(create_and_wait(f"https://127.0.0.1:{port}", objs, 120))
        return {"hollow_pods": pods, "hollow_nodes": nodes, "hollow_running": len(latencies),
                "hollow_all_running_s": round(total, 2), "hollow_p50_s": percentile(latencies, 0.5),
                "hollow_p99_s": percentile(latencies, 0.99), "hollow_agent_rss_mb": round(rss_mb(agent.pid), 1)}
    finally:
        agent.terminate()
        agent.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hollow-pods", type=int, default=1000)
    parser.add_argument("--nodes", type=int, default=10)
    args = parser.parse_args()
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="k8py-bench-pods-") as tmp:
        port = free_port()
        server, _ = start_server(Path(tmp) / "server", port)
        try:
            results.update(hollow(port, Path(tmp), args.hollow_pods, args.nodes))
        finally:
            server.terminate()
            server.wait(10)
    results["real_pods"] = "not measured yet: needs the runc runtime (kubelet-runtime) merged"
    results["targets"] = {k: f"{op} {v}" for k, (op, v) in TARGETS.items()}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
