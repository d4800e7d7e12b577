"""Controller benchmark: prints one JSON document of figures.

Starts a fresh `k8py server` (its controller-manager inside) pinned to one
core (taskset -c 0) in a temporary data dir; this process, on the other
core, plays the nodes: a simulated kubelet that marks every pod Running and
Ready through the status subresource (there is no scheduler or hollow node
on this branch yet, so pods are not bound to nodes). Then:

1. a Deployment (maxSurge 25%) is scaled from 0 to N replicas (default 1,000):
   time until all N pods exist, and until all are Running and the
   deployment reports them available;
2. API writes per pod during that scale-up, counted as watch events on
   pods, replicasets, deployments and events (every write yields one), with
   the simulated kubelet's own status writes shown apart;
3. a rollout of those N pods to a new image: time until `rollout status`
   would say done, and writes per replaced pod.

    python bench/controllers.py [--replicas 1000] [--hollow-nodes 20]

With --hollow-nodes N (needs `k8py agent --runtime simulated`, i.e. the
kubelet and scheduler branches merged), N hollow nodes run in an agent
process and the server's scheduler binds the pods: then the figures
include scheduling and the kubelets' own writes, and this process only
watches.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from k8py.client import ApiError, Client  # noqa: E402

TARGETS = {"running_s": ("<", 30), "writes_per_pod": ("<=", 6)}
NAMESPACE = "bench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


TOKEN = "bench-controllers-token"


def start_server(data_dir: Path, port: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "k8py", "server", "--data-dir", str(data_dir), "--https-listen-port", str(port),
           "--disable-agent", "--token", TOKEN]
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        cmd = ["taskset", "-c", "0", *cmd]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
    ctx = ssl._create_unverified_context()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"https://127.0.0.1:{port}/readyz", context=ctx, timeout=0.5) as r:
                if r.status == 200 and (data_dir / "kubeconfig.yaml").exists():
                    return proc
        except Exception:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("server did not become ready")


def running_patch(pod: dict) -> dict:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return {"status": {
        "phase": "Running", "startTime": stamp,
        "conditions": [{"type": t, "status": "True", "lastTransitionTime": stamp}
                       for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")],
        "containerStatuses": [{"name": c["name"], "image": c.get("image", ""), "imageID": "", "ready": True,
                               "started": True, "restartCount": 0, "state": {"running": {"startedAt": stamp}}}
                              for c in pod["spec"]["containers"]]}}


def start_hollow_nodes(data_dir: Path, port: int, count: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "k8py", "agent", "--server", f"https://127.0.0.1:{port}", "--token", TOKEN,
           "--runtime", "simulated", "--count", str(count), "--node-name", "hollow",
           "--data-dir", str(data_dir / "agent"), "--kubelet-port", str(free_port())]
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        cmd = ["taskset", "-c", "1", *cmd]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)


async def wait_nodes_ready(client: Client, count: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        nodes = (await client.resource("v1", "nodes").list()).get("items") or []
        ready = [n for n in nodes if any(c.get("type") == "Ready" and c.get("status") == "True"
                                         for c in (n.get("status") or {}).get("conditions") or [])]
        if len(ready) >= count:
            return
        await asyncio.sleep(0.5)
    raise SystemExit(f"hollow nodes did not become Ready ({count} wanted)")


class Cluster:
    """Counts writes (as watch events) and, without hollow nodes, runs pods itself."""

    def __init__(self, client: Client, simulate_kubelet: bool = True):
        self.simulate_kubelet = simulate_kubelet
        self.scheduled: set[str] = set()
        self.client = client
        self.writes = {"pods": 0, "replicasets": 0, "deployments": 0, "events": 0}
        self.kubelet_writes = 0
        self.pods: dict[str, dict] = {}
        self.running: set[str] = set()
        self.created = 0
        self.changed = asyncio.Event()
        self.pending: asyncio.Queue = asyncio.Queue()
        self.tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        for gv, plural in (("v1", "pods"), ("apps/v1", "replicasets"), ("apps/v1", "deployments"),
                           ("v1", "events")):
            api = self.client.resource(gv, plural, NAMESPACE)
            rv = (await api.list(limit=1))["metadata"]["resourceVersion"]
            self.tasks.append(asyncio.create_task(self._count(api, plural, rv)))
        if self.simulate_kubelet:
            self.tasks += [asyncio.create_task(self._kubelet()) for _ in range(48)]

    async def _count(self, api, plural: str, rv: str) -> None:
        async for kind, obj in api.watch(resource_version=rv, timeout_seconds=3600, bookmarks=False):
            self.writes[plural] += 1
            if plural != "pods":
                continue
            name = obj["metadata"]["name"]
            if kind == "DELETED":
                self.pods.pop(name, None)
                self.running.discard(name)
                self.scheduled.discard(name)
            else:
                if kind == "ADDED":
                    self.created += 1
                    self.pending.put_nowait(obj)
                self.pods[name] = obj
                if (obj.get("spec") or {}).get("nodeName"):
                    self.scheduled.add(name)
                if (obj.get("status") or {}).get("phase") == "Running":
                    self.running.add(name)
            self.changed.set()

    async def _kubelet(self) -> None:
        api = self.client.resource("v1", "pods", NAMESPACE)
        while True:
            pod = await self.pending.get()
            try:
                await api.patch(pod["metadata"]["name"], running_patch(pod), "merge", subresource="status")
                self.kubelet_writes += 1
            except ApiError:
                pass

    async def until(self, condition, timeout: float = 600) -> float:
        started = time.monotonic()
        while not condition():
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), timeout=max(0.01, timeout - (time.monotonic() - started)))
            except asyncio.TimeoutError:
                raise SystemExit(f"timed out; writes so far {self.writes}")
        return time.monotonic() - started

    def total_writes(self) -> int:
        return sum(self.writes.values())

    async def stop(self) -> None:
        for t in self.tasks:
            t.cancel()


async def deployment_status(client: Client) -> dict:
    return (await client.resource("apps/v1", "deployments", NAMESPACE).get("bench")).get("status") or {}


async def wait_deployment(client: Client, cluster: Cluster, replicas: int, generation_at_least: int = 1) -> None:
    api = client.resource("apps/v1", "deployments", NAMESPACE)
    while True:
        d = await api.get("bench")
        s = d.get("status") or {}
        if s.get("observedGeneration", 0) >= max(generation_at_least, d["metadata"]["generation"]) and \
                s.get("updatedReplicas", 0) == replicas and s.get("replicas", 0) == replicas and \
                s.get("availableReplicas", 0) == replicas:
            return
        await asyncio.sleep(0.2)


async def measure(kubeconfig: Path, replicas: int, hollow_nodes: int) -> dict:
    client = Client.from_kubeconfig(kubeconfig, user_agent="bench-controllers")
    if hollow_nodes:
        await wait_nodes_ready(client, hollow_nodes)
    await client.resource("v1", "namespaces").create({"apiVersion": "v1", "kind": "Namespace",
                                                      "metadata": {"name": NAMESPACE}})
    cluster = Cluster(client, simulate_kubelet=not hollow_nodes)
    await cluster.start()
    deployments = client.resource("apps/v1", "deployments", NAMESPACE)
    await deployments.create({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bench"},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "bench"}},
                 "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                 "template": {"metadata": {"labels": {"app": "bench"}},
                              "spec": {"containers": [{"name": "main", "image": "bench:1"}]}}}})
    await asyncio.sleep(1.0)  # let the empty ReplicaSet settle so it is not counted below
    before, kubelet_before = cluster.total_writes(), cluster.kubelet_writes
    results: dict = {"replicas": replicas}
    started = time.monotonic()
    await deployments.patch("bench", {"spec": {"replicas": replicas}})
    await cluster.until(lambda: cluster.created >= replicas)
    results["all_created_s"] = round(time.monotonic() - started, 2)
    if hollow_nodes:
        await cluster.until(lambda: len(cluster.scheduled) >= replicas)
        results["all_scheduled_s"] = round(time.monotonic() - started, 2)
    await cluster.until(lambda: len(cluster.running) >= replicas)
    results["running_s"] = round(time.monotonic() - started, 2)
    await wait_deployment(client, cluster, replicas)
    results["available_s"] = round(time.monotonic() - started, 2)
    await asyncio.sleep(1.0)  # trailing status writes belong to this phase
    kubelet = cluster.kubelet_writes - kubelet_before
    writes = cluster.total_writes() - before - kubelet
    if hollow_nodes:
        results["writes_per_pod"] = round(writes / replicas, 2)  # everyone's: controllers, scheduler, kubelets
    else:
        results["writes_per_pod"] = round(writes / replicas, 2)
        results["kubelet_status_writes_per_pod"] = round(kubelet / replicas, 2)
    results["writes_by_resource"] = dict(cluster.writes)

    before, kubelet_before, created_before = cluster.total_writes(), cluster.kubelet_writes, cluster.created
    started = time.monotonic()
    await deployments.patch("bench", {"spec": {"template": {"spec": {"containers": [
        {"name": "main", "image": "bench:2"}]}}}}, patch_type="strategic")
    await wait_deployment(client, cluster, replicas, generation_at_least=2)
    results["rollout_s"] = round(time.monotonic() - started, 2)
    await asyncio.sleep(1.0)
    replaced = cluster.created - created_before
    kubelet = cluster.kubelet_writes - kubelet_before
    results["rollout_pods_replaced"] = replaced
    results["rollout_writes_per_pod"] = round((cluster.total_writes() - before - kubelet) / max(replaced, 1), 2)
    await cluster.stop()
    await client.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--replicas", type=int, default=1000)
    parser.add_argument("--hollow-nodes", type=int, default=0,
                        help="run pods on N hollow nodes (k8py agent --runtime simulated) instead of faking them")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="k8py-bench-controllers-") as tmp:
        data_dir = Path(tmp)
        port = free_port()
        proc = start_server(data_dir, port)
        agent = start_hollow_nodes(data_dir, port, args.hollow_nodes) if args.hollow_nodes else None
        try:
            results = asyncio.run(measure(data_dir / "kubeconfig.yaml", args.replicas, args.hollow_nodes))
        finally:
            if agent is not None:
                agent.send_signal(signal.SIGTERM)
                try:
                    agent.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    agent.kill()
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
    results["nodes"] = f"{args.hollow_nodes} hollow nodes (k8py agent --runtime simulated), scheduled by the server" \
        if args.hollow_nodes else "none: pods are marked Running by this process, not scheduled"
    results["targets"] = {k: f"{op} {v}" for k, (op, v) in TARGETS.items()}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
