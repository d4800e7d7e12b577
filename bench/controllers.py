"""Controller benchmark: prints one JSON document of figures.

The whole pipeline, as a cluster runs it: a fresh `k8py server` (API server,
scheduler and controller-manager in one process) pinned to core 0
(taskset -c 0) in a temporary data dir, and `k8py agent --runtime simulated
--count N` (N hollow kubelets, KWOK-like: no containers behind the pods)
pinned to core 1 with this process. The scheduler binds the pods and the
hollow kubelets report them Running; this process only writes the
Deployment and watches. Then:

1. a Deployment (maxSurge 25%) is scaled from 0 to R replicas (default 1,000):
   time until all R pods exist, are bound, are Running, and the Deployment
   reports them available;
2. the CPU seconds the server and the hollow-node agent spent on it (a
   figure that holds on a busy machine, where wall-clock times do not);
   API writes per pod during that scale-up, counted as watch events on
   pods, ReplicaSets, Deployments and Events in the namespace (every write
   yields exactly one), broken down by kind of pod write and by event
   source and reason;
3. a rollout of those R pods to a new image: time until `rollout status`
   would say done, and writes per replaced pod.

    python bench/controllers.py [--replicas 1000] [--hollow-nodes 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import cpu_seconds, free_port, pinned, start_server, wait_nodes_ready  # noqa: E402
from k8py.client import Client  # noqa: E402

TARGETS = {"running_s": ("<", 30), "writes_per_pod": ("<=", 6)}
NAMESPACE = "bench"


TOKEN = "bench-controllers-token"


def start_hollow_nodes(data_dir: Path, port: int, count: int) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "k8py", "agent", "--server", f"https://127.0.0.1:{port}", "--token", TOKEN,
           "--runtime", "simulated", "--count", str(count), "--node-name", "hollow",
           "--data-dir", str(data_dir / "agent"), "--kubelet-port", str(free_port())]
    return subprocess.Popen(pinned(cmd, 1), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)


class Cluster:
    """Watches pods, ReplicaSets, Deployments and Events in the bench namespace: every write
    yields one watch event, so counting them counts writes, and says who wrote what."""

    def __init__(self, client: Client):
        self.scheduled: set[str] = set()
        self.client = client
        self.writes = {"pods": 0, "replicasets": 0, "deployments": 0, "events": 0}
        self.pod_writes: Counter = Counter()      # create, bind, status, delete-request, delete
        self.event_writes: Counter = Counter()    # "<component> <reason>"
        self.pods: dict[str, dict] = {}
        self.running: set[str] = set()
        self.created = 0
        self.changed = asyncio.Event()
        self.tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        for gv, plural in (("v1", "pods"), ("apps/v1", "replicasets"), ("apps/v1", "deployments"),
                           ("v1", "events")):
            api = self.client.resource(gv, plural, NAMESPACE)
            rv = (await api.list(limit=1))["metadata"]["resourceVersion"]
            self.tasks.append(asyncio.create_task(self._count(api, plural, rv)))

    def snapshot(self) -> tuple[int, Counter, Counter]:
        return self.total_writes(), Counter(self.pod_writes), Counter(self.event_writes)

    async def _count(self, api, plural: str, rv: str) -> None:
        async for kind, obj in api.watch(resource_version=rv, timeout_seconds=3600, bookmarks=False):
            self.writes[plural] += 1
            if plural == "events":
                self.event_writes[f"{(obj.get('source') or {}).get('component', '?')} {obj.get('reason')}"] += 1
            if plural != "pods":
                continue
            name = obj["metadata"]["name"]
            old = self.pods.get(name)
            if kind == "DELETED":
                self.pod_writes["delete"] += 1
                self.pods.pop(name, None)
                self.running.discard(name)
                self.scheduled.discard(name)
            else:
                if kind == "ADDED":
                    self.pod_writes["create"] += 1
                    self.created += 1
                elif old is not None and not old["spec"].get("nodeName") and obj["spec"].get("nodeName"):
                    self.pod_writes["bind"] += 1
                elif old is not None and not old["metadata"].get("deletionTimestamp") and \
                        obj["metadata"].get("deletionTimestamp"):
                    self.pod_writes["delete-request"] += 1
                else:
                    self.pod_writes["status"] += 1
                self.pods[name] = obj
                if (obj.get("spec") or {}).get("nodeName"):
                    self.scheduled.add(name)
                if (obj.get("status") or {}).get("phase") == "Running":
                    self.running.add(name)
            self.changed.set()

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


def per_pod(after: Counter, before: Counter, pods: int) -> dict:
    return {k: round((after[k] - before[k]) / pods, 2) for k in sorted(after) if after[k] - before[k]}


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


async def measure(kubeconfig: Path, replicas: int, hollow_nodes: int, server_pid: int, agent_pid: int) -> dict:
    def cpu() -> tuple[float, float]:
        return cpu_seconds(server_pid), cpu_seconds(agent_pid)

    def cpu_used(before: tuple[float, float]) -> dict:
        now = cpu()
        return {"server": round(now[0] - before[0], 1), "hollow_agent": round(now[1] - before[1], 1)}

    client = Client.from_kubeconfig(kubeconfig, user_agent="bench-controllers")
    await wait_nodes_ready(client, hollow_nodes)
    await client.resource("v1", "namespaces").create({"apiVersion": "v1", "kind": "Namespace",
                                                      "metadata": {"name": NAMESPACE}})
    cluster = Cluster(client)
    await cluster.start()
    deployments = client.resource("apps/v1", "deployments", NAMESPACE)
    await deployments.create({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bench"},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "bench"}},
                 "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                 "template": {"metadata": {"labels": {"app": "bench"}},
                              "spec": {"containers": [{"name": "main", "image": "bench:1"}]}}}})
    await asyncio.sleep(1.0)  # let the empty ReplicaSet settle so it is not counted below
    before, pods_before, events_before = cluster.snapshot()
    writes_before = dict(cluster.writes)
    results: dict = {"replicas": replicas}
    cpu_before = cpu()
    started = time.monotonic()
    await deployments.patch("bench", {"spec": {"replicas": replicas}})
    await cluster.until(lambda: cluster.created >= replicas)
    results["all_created_s"] = round(time.monotonic() - started, 2)
    await cluster.until(lambda: len(cluster.scheduled) >= replicas)
    results["all_scheduled_s"] = round(time.monotonic() - started, 2)
    await cluster.until(lambda: len(cluster.running) >= replicas)
    results["running_s"] = round(time.monotonic() - started, 2)
    await wait_deployment(client, cluster, replicas)
    results["available_s"] = round(time.monotonic() - started, 2)
    await asyncio.sleep(2.0)  # trailing status writes and events belong to this phase
    results["cpu_s"] = cpu_used(cpu_before)
    results["writes_per_pod"] = round((cluster.total_writes() - before) / replicas, 2)
    results["writes_by_resource"] = {k: v - writes_before[k] for k, v in cluster.writes.items()}
    results["pod_writes_per_pod"] = per_pod(cluster.pod_writes, pods_before, replicas)
    results["event_writes_per_pod"] = per_pod(cluster.event_writes, events_before, replicas)

    before, pods_before, events_before = cluster.snapshot()
    created_before = cluster.created
    cpu_before = cpu()
    started = time.monotonic()
    await deployments.patch("bench", {"spec": {"template": {"spec": {"containers": [
        {"name": "main", "image": "bench:2"}]}}}}, patch_type="strategic")
    await wait_deployment(client, cluster, replicas, generation_at_least=2)
    results["rollout_s"] = round(time.monotonic() - started, 2)
    await asyncio.sleep(2.0)
    results["rollout_cpu_s"] = cpu_used(cpu_before)
    replaced = cluster.created - created_before
    results["rollout_pods_replaced"] = replaced
    results["rollout_writes_per_pod"] = round((cluster.total_writes() - before) / max(replaced, 1), 2)
    results["rollout_pod_writes_per_pod"] = per_pod(cluster.pod_writes, pods_before, max(replaced, 1))
    results["rollout_event_writes_per_pod"] = per_pod(cluster.event_writes, events_before, max(replaced, 1))
    await cluster.stop()
    await client.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--replicas", type=int, default=1000)
    parser.add_argument("--hollow-nodes", type=int, default=20,
                        help="hollow nodes to run the pods on (one k8py agent --runtime simulated)")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})  # the watcher shares core 1 with the hollow nodes, away from the server
    with tempfile.TemporaryDirectory(prefix="k8py-bench-controllers-") as tmp:
        data_dir = Path(tmp)
        port = free_port()
        proc, _ = start_server(data_dir, port, TOKEN)
        agent = start_hollow_nodes(data_dir, port, args.hollow_nodes)
        try:
            results = asyncio.run(measure(data_dir / "kubeconfig.yaml", args.replicas, args.hollow_nodes,
                                          proc.pid, agent.pid))
        finally:
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
    results["nodes"] = f"{args.hollow_nodes} hollow nodes (k8py agent --runtime simulated), scheduled by the server"
    results["targets"] = {k: f"{op} {v}" for k, (op, v) in TARGETS.items()}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
