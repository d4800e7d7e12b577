"""Scheduler benchmark: prints one JSON document of figures.

Starts a fresh `k8py server` without its built-in scheduler (pinned to core 0
with taskset) and a separate `k8py scheduler` process (core 1), registers
hollow nodes straight through the API (Node objects with allocatable and a
Ready condition; no kubelet, so pods stay bound and Pending), then for 100,
1,000 and 5,000 nodes measures pods scheduled per second for plain pods,
pods with preferred pod anti-affinity (hostname) and pods with a zone
topology spread constraint: the time from the first create until the last
pod is seen bound through a watch. Finally it fills the cluster toward
--total-pods plain pods (bounded by --fill-seconds) and reports the
scheduler's RSS.

    python bench/scheduler.py [--nodes 100,1000,5000] [--pods 1000] [--total-pods 30000]

`--cycle-only` times just the scheduling cycle in-process (cache + default
profile, no server): CPU microseconds per pod and a digest of the placements,
which two versions of the scheduler must share (ties are broken by a seeded
random generator).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import cpu_seconds, free_port, pinned, rss_mb, start_server  # noqa: E402

TOKEN = "bench-token"
ZONES = 10
TARGETS = {"plain_1000_pods_per_s": (">=", 300), "anti_affinity_1000_pods_per_s": (">=", 100),
           "scheduler_rss_mb_5000_nodes": ("<", 500)}


def hollow_node(i: int) -> dict:
    name = f"hollow-{i:05d}"
    alloc = {"cpu": "32", "memory": "256Gi", "pods": "110"}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name,
                                                  "topology.kubernetes.io/zone": f"zone-{i % ZONES}"}},
            "status": {"allocatable": alloc, "capacity": alloc,
                       "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}}


def bench_pod(name: str, kind: str, group: str) -> dict:
    labels = {"app": group}
    spec: dict = {"containers": [{"name": "c", "image": "registry.local/pause:3.9",
                                  "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]}
    selector = {"matchLabels": labels}
    if kind == "anti_affinity":
        spec["affinity"] = {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 100, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname", "labelSelector": selector}}]}}
    elif kind == "spread":
        spec["topologySpreadConstraints"] = [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                                              "whenUnsatisfiable": "DoNotSchedule", "labelSelector": selector}]
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels}, "spec": spec}


def scenario_ns(kind: str, nodes: int) -> str:
    return f"b-{kind.replace('_', '-')}-{nodes}"


async def run_clients(items: list, concurrency: int, work) -> None:
    queue = list(reversed(items))

    async def worker():
        while queue:
            await work(queue.pop())
    await asyncio.gather(*(worker() for _ in range(concurrency)))


class Bench:
    def __init__(self, http: aiohttp.ClientSession, pids: dict[str, int]):
        self.http = http
        self.nodes = 0
        self.pids = pids

    async def add_nodes(self, upto: int) -> None:
        async def create(i):
            async with self.http.post("/api/v1/nodes", data=json.dumps(hollow_node(i))) as r:
                assert r.status == 201, await r.text()
        await run_clients(list(range(self.nodes, upto)), 32, create)
        self.nodes = upto

    async def namespace(self, name: str) -> None:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        async with self.http.post("/api/v1/namespaces", data=json.dumps(body)) as r:
            assert r.status == 201, await r.text()
        # No controller-manager runs here: make the account pods are admitted with.
        account = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}
        async with self.http.post(f"/api/v1/namespaces/{name}/serviceaccounts", data=json.dumps(account)) as r:
            assert r.status == 201, await r.text()

    async def scheduled_events(self, namespaces: list[str], settle_s: float = 30) -> dict[str, int]:
        """Scheduled events per namespace, once their number stops growing."""
        last: dict[str, int] = {}
        deadline = time.monotonic() + settle_s
        while True:
            counts = {}
            for ns in namespaces:
                async with self.http.get(f"/api/v1/namespaces/{ns}/events") as r:
                    items = (await r.json())["items"]
                counts[ns] = sum(1 for e in items if e.get("reason") == "Scheduled")
            if counts == last or time.monotonic() > deadline:
                return counts
            last = counts
            await asyncio.sleep(2)

    async def schedule(self, ns: str, kind: str, count: int, deadline_s: float) -> dict:
        """Create `count` pods and wait until a watch has seen every one bound."""
        await self.namespace(ns)
        async with self.http.get(f"/api/v1/namespaces/{ns}/pods") as r:
            rv = (await r.json())["metadata"]["resourceVersion"]
        bound: set[str] = set()
        done = asyncio.Event()

        async def watch():
            url = f"/api/v1/namespaces/{ns}/pods?watch=true&resourceVersion={rv}&timeoutSeconds={int(deadline_s) + 60}"
            async with self.http.get(url, timeout=aiohttp.ClientTimeout(total=None)) as resp:
                async for line in resp.content:
                    event = orjson.loads(line)  # the load generator's own CPU competes with what it measures
                    obj = event["object"]
                    if obj.get("spec", {}).get("nodeName"):
                        bound.add(obj["metadata"]["name"])
                        if len(bound) >= count:
                            done.set()
                            return
        watcher = asyncio.create_task(watch())
        await asyncio.sleep(0.2)
        started = time.monotonic()
        cpu_before = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        bench_before = time.process_time()

        async def create(i):
            async with self.http.post(f"/api/v1/namespaces/{ns}/pods",
                                      data=orjson.dumps(bench_pod(f"p-{i:05d}", kind, ns))) as r:
                assert r.status == 201, await r.text()
        await run_clients(list(range(count)), 16, create)
        created = time.monotonic() - started
        try:
            await asyncio.wait_for(done.wait(), timeout=max(deadline_s - created, 1))
        except asyncio.TimeoutError:
            pass
        elapsed = time.monotonic() - started
        watcher.cancel()
        cpu = {f"{name}_cpu_s": round(cpu_seconds(pid) - cpu_before[name], 2) for name, pid in self.pids.items()}
        cpu["bench_cpu_s"] = round(time.process_time() - bench_before, 2)  # creators and the watch
        # On a shared machine wall-clock rates depend on the neighbours; pods per CPU-second do not.
        cpu["scheduler_pods_per_cpu_s"] = round(len(bound) / max(cpu["scheduler_cpu_s"], 0.01))
        return {"pods": count, "bound": len(bound), "seconds": round(elapsed, 2),
                "pods_per_s": round(len(bound) / elapsed, 1), "create_seconds": round(created, 2), **cpu}


async def measure(base: str, args, scheduler_pid: int, server_pid: int) -> dict:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(ssl=False, limit=0)
    figures: dict = {}
    async with aiohttp.ClientSession(base, headers=headers, connector=connector) as http:
        b = Bench(http, {"scheduler": scheduler_pid, "apiserver": server_pid})
        total_pods = 0
        for n in args.nodes:
            await b.add_nodes(n)
            await asyncio.sleep(1.0)  # let the scheduler's node informer catch up
            for kind in args.kinds:
                r = await b.schedule(scenario_ns(kind, n), kind, args.pods, args.deadline)
                total_pods += r["bound"]
                figures[f"{kind}_{n}"] = r
                figures[f"{kind}_{n}_pods_per_s"] = r["pods_per_s"]
                print(json.dumps({f"{kind}_{n}": r}), file=sys.stderr, flush=True)
        figures[f"scheduler_rss_mb_{b.nodes}_nodes_{total_pods}_pods"] = round(rss_mb(scheduler_pid), 1)
        # Scheduled events are written after the bindings (and, as client-go's recorder does, dropped
        # when more than 1,000 wait): count what arrived, so a faster run can't hide fewer writes.
        counts = await b.scheduled_events([scenario_ns(kind, n) for n in args.nodes for kind in args.kinds])
        for n in args.nodes:
            for kind in args.kinds:
                figures[f"{kind}_{n}"]["scheduled_events"] = counts[scenario_ns(kind, n)]
        # Fill toward total_pods plain pods, bounded in time.
        started = time.monotonic()
        batch = 0
        while total_pods < args.total_pods and time.monotonic() - started < args.fill_seconds:
            count = min(5000, args.total_pods - total_pods)
            r = await b.schedule(f"fill-{batch}", "plain", count,
                                 max(args.fill_seconds - (time.monotonic() - started), 5))
            total_pods += r["bound"]
            batch += 1
            print(json.dumps({f"fill_{batch}": r}), file=sys.stderr, flush=True)
        figures["fill_pods_bound_total"] = total_pods
        figures[f"scheduler_rss_mb_{b.nodes}_nodes"] = round(rss_mb(scheduler_pid), 1)
        figures["scheduler_rss_mb_5000_nodes"] = figures[f"scheduler_rss_mb_{b.nodes}_nodes"]
    return figures


def cycle_only(args) -> dict:
    """The scheduling cycle alone, in this process: the cache, the default profile, no API. Pods are
    placed (assumed, then confirmed as the informer would) one after another; CPU microseconds per
    pod, and a digest of the placements (seeded tie-breaks) to show two versions choose alike."""
    import hashlib
    import random
    from k8py.scheduler.cache import SchedulerCache
    from k8py.scheduler.framework import CycleState
    from k8py.scheduler.plugins import default_profile
    from k8py.scheduler.podinfo import PodInfo
    out: dict = {}
    for n in args.nodes:
        cache = SchedulerCache()
        for i in range(n):
            cache.set_node(hollow_node(i))
        profile = default_profile(rng=random.Random(1))
        placements = []
        for kind in args.kinds:
            ns = scenario_ns(kind, n)
            cache.namespace_labels[ns] = {"kubernetes.io/metadata.name": ns}
            infos = []
            for i in range(args.pods):
                pod = bench_pod(f"p-{i:05d}", kind, ns)
                pod["metadata"].update(namespace=ns, uid=f"{ns}-{i}", creationTimestamp="2026-01-01T00:00:00Z")
                infos.append(PodInfo(pod))
            started = time.process_time()
            for info in infos:
                node = profile.schedule(CycleState(), info, cache.snapshot()).node
                cache.add_pod(cache.assume(info, node).pod)
                placements.append(node)
            out[f"{kind}_{n}_cycle_us_per_pod"] = round((time.process_time() - started) / args.pods * 1e6, 1)
        out[f"placements_{n}_sha1"] = hashlib.sha1(",".join(placements).encode()).hexdigest()[:12]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", default="100,1000,5000", type=lambda s: [int(x) for x in s.split(",")])
    ap.add_argument("--pods", type=int, default=1000, help="pods per scenario")
    ap.add_argument("--kinds", default="plain,anti_affinity,spread", type=lambda s: s.split(","),
                    help="scenarios: plain, anti_affinity, spread")
    ap.add_argument("--total-pods", type=int, default=30000, help="fill the cluster to this many pods for RSS")
    ap.add_argument("--fill-seconds", type=float, default=300, help="time bound for the fill")
    ap.add_argument("--deadline", type=float, default=120, help="time bound per scenario")
    ap.add_argument("--cycle-only", action="store_true",
                    help="time the scheduling cycle in this process (no server, no API, no binding)")
    args = ap.parse_args()
    if args.cycle_only:
        command = "python bench/scheduler.py " + " ".join(sys.argv[1:])
        print(json.dumps({"figures": cycle_only(args), "command": command}, indent=2))
        return
    # A SIGTERM (e.g. `timeout`) still stops the server and scheduler we started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    data_dir = Path(tempfile.mkdtemp(prefix="k8py-bench-sched-"))
    port = free_port()
    server, _ = start_server(data_dir, port, TOKEN, ("--disable", "scheduler", "--disable", "controller-manager",
                                                     "--disable", "dns", "--disable", "proxy"))
    sched_cmd = [sys.executable, "-m", "k8py", "scheduler", "--kubeconfig", str(data_dir / "kubeconfig.yaml")]
    profile_to = os.environ.get("K8PY_BENCH_PROFILE")  # a path: cProfile the scheduler process into it
    if profile_to:
        sched_cmd[1:1] = ["-m", "cProfile", "-o", profile_to]
    log = open(data_dir / "scheduler.log", "wb")
    scheduler = subprocess.Popen(pinned(sched_cmd, 1), stdout=log, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        server_pid = server.pid
        if Path(f"/proc/{server.pid}/task").exists() and shutil.which("taskset"):
            # taskset execs the server in place, so the pid is the server's own
            server_pid = server.pid
        figures = asyncio.run(measure(f"https://127.0.0.1:{port}", args, scheduler.pid, server_pid))
    finally:
        if profile_to:
            scheduler.send_signal(signal.SIGINT)  # lets cProfile write its file
        for proc in (scheduler, server):
            if not (profile_to and proc is scheduler):
                proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(data_dir, ignore_errors=True)
    baseline = {}
    for key, (op, target) in TARGETS.items():
        value = figures.get(key)
        met = value is not None and (value >= target if op == ">=" else value < target)
        baseline[key] = {"value": value, "target": f"{op} {target}", "met": met}
    print(json.dumps({"figures": figures, "baseline_targets": baseline,
                      "command": "python bench/scheduler.py " + " ".join(sys.argv[1:])}, indent=2))


if __name__ == "__main__":
    main()
