"""Storage benchmark: prints one JSON document of figures.

1. Static binding: a fresh `k8py server` (one core, its PersistentVolume
   controller in the same process) with N pre-made volumes (default 1,000,
   capacities 1..N Gi, all Available before the clock starts); N claims asking
   for 1..N Gi are created at once; seconds until every claim is Bound
   (target < 10 s), and how many got the volume of exactly their size (the
   smallest that fits, as upstream chooses).
2. Provisioning: `k8py agent --runtime simulated --count 10` (hollow
   kubelets, no containers: the local-path directories are made by the
   server's provisioner, the pods "run" without mounting) on the other core;
   P pods (default 200) with one emptyDir each, all Running: the baseline;
   then P pods each with its own `local-path` claim (WaitForFirstConsumer:
   scheduler picks a node, provisioner makes the PV, binder binds, scheduler
   binds the pod), all Running; target: local-path < 3x the emptyDir time.

The load average is printed at the start and end: other work on the machine
slows every figure, so compare figures of the same run.

    python bench/storage.py [--claims 1000] [--pods 200] [--nodes 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import cpu_seconds, free_port, pinned, start_server, wait_nodes_ready  # noqa: E402
from k8py.client import Client  # noqa: E402

TOKEN = "bench-storage-token"
NAMESPACE = "default"
TARGETS = {"bind_all_s": ("<", 10), "local_path_over_empty_dir_x": ("<", 3)}


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def volume(i: int) -> dict:
    return {"apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": f"bench-pv-{i:04d}", "labels": {"bench": "storage"}},
            "spec": {"capacity": {"storage": f"{i}Gi"}, "accessModes": ["ReadWriteOnce"],
                     "storageClassName": "bench", "persistentVolumeReclaimPolicy": "Retain",
                     "hostPath": {"path": f"/tmp/k8py-bench-pv-{i:04d}"}}}


def claim(name: str, size: str, storage_class: str) -> dict:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "labels": {"bench": "storage"}},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": storage_class,
                     "resources": {"requests": {"storage": size}}}}


def pod(name: str, volume_source: dict) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"bench": "storage"}},
            "spec": {"automountServiceAccountToken": False,
                     "containers": [{"name": "c", "image": "busybox", "imagePullPolicy": "IfNotPresent",
                                     "command": ["sleep", "3600"],
                                     "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                     "volumes": [dict(name="data", **volume_source)]}}


async def create_all(api, objs: list[dict], concurrency: int = 32) -> None:
    queue = list(objs)

    async def creator():
        while queue:
            await api.create(queue.pop(0))
    await asyncio.gather(*(creator() for _ in range(concurrency)))


async def wait_until(api, done, label: str, timeout: float) -> float:
    """Watch `api` until `done(objects by name)` is true; the monotonic time it became so."""
    seen: dict[str, dict] = {}
    listed = await api.list(label_selector=label)
    for obj in listed.get("items") or []:
        seen[obj["metadata"]["name"]] = obj
    if done(seen):
        return time.monotonic()
    async for kind, obj in api.watch(resource_version=listed["metadata"]["resourceVersion"],
                                     label_selector=label, timeout_seconds=int(timeout)):
        if kind == "BOOKMARK":
            continue
        if kind == "DELETED":
            seen.pop(obj["metadata"]["name"], None)
        else:
            seen[obj["metadata"]["name"]] = obj
        if done(seen):
            return time.monotonic()
    raise SystemExit(f"timed out waiting ({label})")


def phase_count(objs: dict, prefix: str, phase: str) -> int:
    return sum(1 for name, o in objs.items() if name.startswith(prefix)
               and (o.get("status") or {}).get("phase") == phase)


async def static_binding(url: str, count: int, server_pid: int) -> dict:
    client = Client(url, token=TOKEN, insecure=True)
    try:
        pvs = client.resource("v1", "persistentvolumes")
        claims = client.resource("v1", "persistentvolumeclaims", namespace=NAMESPACE)
        await create_all(pvs, [volume(i) for i in range(1, count + 1)])
        await wait_until(pvs, lambda seen: phase_count(seen, "bench-pv-", "Available") == count,
                         "bench=storage", 120)
        cpu_before = cpu_seconds(server_pid)
        started = time.monotonic()
        waiter = asyncio.create_task(wait_until(
            claims, lambda seen: phase_count(seen, "bench-pvc-", "Bound") == count, "bench=storage", 300))
        await create_all(claims, [claim(f"bench-pvc-{i:04d}", f"{i}Gi", "bench") for i in range(1, count + 1)])
        created = time.monotonic() - started
        finished = await waiter
        bound = (await claims.list(label_selector="bench=storage"))["items"]
        exact = sum(1 for c in bound if c["spec"].get("volumeName") == "bench-pv-" + c["metadata"]["name"][-4:])
        events = (await client.resource("v1", "events", namespace=NAMESPACE).list())["items"]
        reasons: dict[str, int] = {}
        for event in events:
            reasons[event.get("reason", "")] = reasons.get(event.get("reason", ""), 0) + event.get("count", 1)
        result = {"claim_events": reasons, "claims": count, "create_s": round(created, 2), "bind_all_s": round(finished - started, 2),
                  "bound_to_exact_size": exact, "server_cpu_s": round(cpu_seconds(server_pid) - cpu_before, 2)}
        return result
    finally:
        await client.close()


async def pods_running(url: str, prefix: str, pods: list[dict], claims: list[dict]) -> float:
    client = Client(url, token=TOKEN, insecure=True)
    try:
        pod_api = client.resource("v1", "pods", namespace=NAMESPACE)
        claim_api = client.resource("v1", "persistentvolumeclaims", namespace=NAMESPACE)
        started = time.monotonic()
        waiter = asyncio.create_task(wait_until(
            pod_api, lambda seen: phase_count(seen, prefix, "Running") == len(pods), "bench=storage", 300))
        await create_all(claim_api, claims)
        await create_all(pod_api, pods)
        return await waiter - started
    finally:
        await client.close()


def provisioning(port: int, work: Path, count: int, nodes: int) -> dict:
    url = f"https://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "k8py", "agent", "--server", url, "--token", TOKEN, "--runtime", "simulated",
           "--count", str(nodes), "--node-name", "hollow", "--data-dir", str(work / "agent"),
           "--kubelet-port", str(free_port())]
    agent = subprocess.Popen(pinned(cmd, 1), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    try:
        async def ready():
            client = Client(url, token=TOKEN, insecure=True)
            try:
                await wait_nodes_ready(client, nodes)
            finally:
                await client.close()
        asyncio.run(ready())
        empty = [pod(f"empty-{i:03d}", {"emptyDir": {}}) for i in range(count)]
        empty_s = asyncio.run(pods_running(url, "empty-", empty, []))
        claims = [claim(f"lp-{i:03d}", "1Gi", "local-path") for i in range(count)]
        local = [pod(f"lp-{i:03d}", {"persistentVolumeClaim": {"claimName": f"lp-{i:03d}"}}) for i in range(count)]
        local_s = asyncio.run(pods_running(url, "lp-", local, claims))
        return {"pods": count, "hollow_nodes": nodes, "empty_dir_all_running_s": round(empty_s, 2),
                "local_path_all_running_s": round(local_s, 2),
                "local_path_over_empty_dir_x": round(local_s / empty_s, 2)}
    finally:
        agent.terminate()
        agent.wait(20)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--claims", type=int, default=1000)
    parser.add_argument("--pods", type=int, default=200)
    parser.add_argument("--nodes", type=int, default=10)
    args = parser.parse_args()
    results: dict = {"load_average_start": load_average()}
    with tempfile.TemporaryDirectory(prefix="k8py-bench-storage-") as tmp:
        port = free_port()
        server, _ = start_server(Path(tmp) / "server", port, TOKEN)
        try:
            if args.claims:
                results.update(asyncio.run(static_binding(f"https://127.0.0.1:{port}", args.claims, server.pid)))
            if args.pods:
                results.update(provisioning(port, Path(tmp), args.pods, args.nodes))
        finally:
            server.terminate()
            server.wait(20)
    results["load_average_end"] = load_average()
    results["targets"] = {}
    for key, (op, target) in TARGETS.items():
        value = results.get(key)
        met = value is not None and (value < target if op == "<" else value <= target)
        results["targets"][key] = {"value": value, "target": f"{op} {target}", "met": met}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
