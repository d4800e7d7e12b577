"""Pod benchmark: prints one JSON document of figures.

1. Hollow nodes: a fresh `k8py server` (one core) and `k8py agent --runtime
   simulated --count 10` (the other core); 1,000 pods bound round-robin to the
   10 nodes; seconds until all are Running (target < 20 s) and the agent's RSS.
2. Real pods (root, with the runc runtime): 100 busybox pods on the server's
   own node; creation-to-Running p50/p99 next to a bare `runc run` of the same
   container measured in the same run (targets: p99 < 1 s, < 3x bare runc;
   the bare runs are timed both at the end and interleaved with the pods),
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

from bench.api import TOKEN  # noqa: E402
from bench.common import free_port, pinned, rss_mb, start_server  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TARGETS = {"hollow_all_running_s": ("<", 20), "real_p99_s": ("<", 1.0), "real_overhead_x": ("<", 3.0),
           "real_agent_rss_mb": ("<", 150)}


def pod(name: str, node: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"bench": "pods"}},
            "spec": {"nodeName": node, "automountServiceAccountToken": False,
                     "containers": [{"name": "c", "image": "busybox", "imagePullPolicy": "IfNotPresent",
                                     "command": ["sleep", "3600"]}]}}


async def create_and_wait(url: str, pods: list[dict], timeout: float, concurrency: int = 32,
                          after_each=None) -> tuple[float, list[float]]:
    """Create pods (`concurrency` at a time; 1 = each once the previous runs) and watch until all
    are Running; per-pod latencies."""
    from k8py.client import Client
    client = Client(url, token=TOKEN, insecure=True)
    api = client.resource("v1", "pods", namespace="default")
    rv = (await api.list(limit=1))["metadata"]["resourceVersion"]
    created_at: dict[str, float] = {}
    running_at: dict[str, float] = {}
    started = time.monotonic()
    wanted = {p["metadata"]["name"] for p in pods}

    async def watch():
        async for kind, obj in api.watch(resource_version=rv, label_selector="bench=pods",
                                         timeout_seconds=int(timeout)):
            if kind == "BOOKMARK":
                continue
            name = obj["metadata"]["name"]
            if name in wanted and (obj.get("status") or {}).get("phase") == "Running" and name not in running_at:
                running_at[name] = time.monotonic()
                if len(running_at) == len(pods):
                    return
    watcher = asyncio.create_task(watch())
    try:
        return await _create_all(api, pods, concurrency, timeout, watcher, created_at, running_at, started,
                                 after_each)
    finally:
        watcher.cancel()
        await client.close()


async def _create_all(api, pods, concurrency, timeout, watcher, created_at, running_at, started,
                      after_each=None):
    queue = list(pods)
    done = 0

    async def creator():
        while queue:
            p = queue.pop(0)
            name = p["metadata"]["name"]
            created_at[name] = time.monotonic()
            await api.create(p)
            if concurrency == 1:
                while name not in running_at and not watcher.done():
                    await asyncio.sleep(0.005)
                nonlocal done
                done += 1
                if after_each is not None:
                    await after_each(done)
    await asyncio.gather(*(creator() for _ in range(concurrency)))
    try:
        await asyncio.wait_for(watcher, timeout)
    except asyncio.TimeoutError:
        pass
    total = time.monotonic() - started
    return total, sorted(running_at[n] - created_at[n] for n in running_at)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return round(values[min(len(values) - 1, int(q * len(values)))], 3)


def hollow(port: int, data: Path, pods: int, nodes: int) -> dict:
    cmd = [sys.executable, "-m", "k8py", "agent", "--server", f"https://127.0.0.1:{port}", "--token", TOKEN,
           "--runtime", "simulated", "--count", str(nodes), "--node-name", "hollow",
           "--data-dir", str(data / "hollow")]
    agent = subprocess.Popen(pinned(cmd, 1), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=REPO)
    try:
        line = agent.stdout.readline()     # "k8py: N hollow nodes registered"
        if b"registered" not in line:
            return {"hollow_error": "agent did not register its nodes"}
        objs = [pod(f"hollow-{i:04d}", f"hollow-{i % nodes}") for i in range(pods)]
        total, latencies = asyncio.run(create_and_wait(f"https://127.0.0.1:{port}", objs, 120))
        rss = round(rss_mb(agent.pid), 1)
        delete_bench_pods(data)
        return {"hollow_agent_rss_mb": rss, "hollow_pods": pods, "hollow_nodes": nodes, "hollow_running": len(latencies),
                "hollow_all_running_s": round(total, 2), "hollow_p50_s": percentile(latencies, 0.5),
                "hollow_p99_s": percentile(latencies, 0.99)}
    finally:
        agent.terminate()
        agent.wait(10)


def delete_bench_pods(work: Path) -> None:
    """Delete the benchmark's pods and wait until the agent has let them go."""
    subprocess.run(["kubectl", f"--kubeconfig={work / 'server' / 'kubeconfig.yaml'}", "delete", "pods",
                    "-l", "bench=pods", "--grace-period=1", "--wait=true", "--timeout=180s"], capture_output=True)


def bare_bundle(work: Path) -> tuple[Path, Path] | None:
    """A busybox bundle running `sleep 3600`, and a runc root for it."""
    busybox = shutil.which("busybox")
    if not busybox or not shutil.which("runc"):
        return None
    bundle = work / "bare-bundle"
    if not bundle.exists():
        (bundle / "rootfs" / "bin").mkdir(parents=True)
        shutil.copy(busybox, bundle / "rootfs" / "bin" / "busybox")
        for tool in ("sh", "sleep"):
            os.symlink("busybox", bundle / "rootfs" / "bin" / tool)
        subprocess.run(["runc", "spec", "--bundle", str(bundle)], check=True)
        spec = json.loads((bundle / "config.json").read_text())
        spec["process"]["args"], spec["process"]["terminal"] = ["/bin/sleep", "3600"], False
        (bundle / "config.json").write_text(json.dumps(spec))
    return bundle, work / "bare-runc-root"


def bare_runc_once(bundle: Path, root: Path, i: int) -> float:
    """Seconds for one bare `runc run --detach` (the container is deleted afterwards, untimed)."""
    cid = f"k8py-bench-bare-{os.getpid()}-{i}"
    started = time.monotonic()
    subprocess.run(["runc", "--root", str(root), "run", "--detach", "--bundle", str(bundle), cid],
                   check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed = time.monotonic() - started
    subprocess.run(["runc", "--root", str(root), "delete", "--force", cid], capture_output=True)
    return elapsed


def bare_runc_seconds(work: Path, runs: int = 10) -> float | None:
    """Median time of a bare `runc run --detach` of `sleep 3600` in a busybox root filesystem."""
    made = bare_bundle(work)
    if made is None:
        return None
    times = [bare_runc_once(*made, i) for i in range(runs)]
    return sorted(times)[len(times) // 2]


# The real node's pod range, unique to this run: the server's node IPAM controller cuts
# the node's podCIDR from it, so the server is started with it too.
BENCH_OCTET = 150 + os.getpid() % 40 * 2
BENCH_CLUSTER_CIDR = f"10.{BENCH_OCTET}.0.0/16"


def real(port: int, work: Path, count: int) -> dict:
    """100 busybox pods on one runc node (a separate `k8py agent`, so its RSS is its own)."""
    if os.geteuid() != 0:
        return {"real_pods": "skipped: real pods need root"}
    from scripts.test_registry import start_registry
    registry = start_registry(work / "registry")
    suffix = f"{os.getpid() % 65536:04x}"
    node, bridge, octet = f"bench-{suffix}", f"kb{suffix}", BENCH_OCTET
    cluster_cidr, service_cidr = BENCH_CLUSTER_CIDR, f"10.{octet + 1}.0.0/16"
    agent_dir = work / "agent"
    agent_dir.mkdir()
    (agent_dir / "registries.yaml").write_text(registry.mirrors_config.read_text())
    cmd = [sys.executable, "-m", "k8py", "agent", "--server", f"https://127.0.0.1:{port}", "--token", TOKEN,
           "--runtime", "runc", "--node-name", node, "--data-dir", str(agent_dir), "--cni-bridge", bridge,
           "--kubelet-port", str(free_port()), "--cluster-cidr", cluster_cidr, "--service-cidr", service_cidr]
    agent = subprocess.Popen(pinned(cmd, 1), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=REPO)
    out: dict = {}
    try:
        line = agent.stdout.readline()
        if b"registered" not in line:
            return {"real_error": "agent did not register"}
        warm = [pod("warm-up", node)]
        asyncio.run(create_and_wait(f"https://127.0.0.1:{port}", warm, 120))      # the image is pulled once
        # Latency: one pod at a time, each created once the one before runs.
        objs = [pod(f"real-{i:03d}", node) for i in range(count)]
        # On a shared machine the load changes from minute to minute: besides the bare runs at
        # the end (real_overhead_x), time one bare `runc run` after every 10th pod, so the
        # pods and the runs they are compared with see the same load (real_overhead_interleaved_x).
        made = bare_bundle(work)
        interleaved: list[float] = []

        async def bare_between(done: int) -> None:
            if made is not None and done % 10 == 0:
                interleaved.append(await asyncio.to_thread(bare_runc_once, *made, 1000 + done))
        total, latencies = asyncio.run(create_and_wait(f"https://127.0.0.1:{port}", objs, 300, concurrency=1,
                                                       after_each=bare_between))
        delete_bench_pods(work)        # the node takes 110 pods: make room for the burst
        # Throughput: a burst of as many again, created all at once.
        burst = [pod(f"burst-{i:03d}", node) for i in range(count)]
        burst_total, burst_latencies = asyncio.run(create_and_wait(f"https://127.0.0.1:{port}", burst, 300))
        bare = bare_runc_seconds(work)
        p99 = percentile(latencies, 0.99)
        out = {"real_pods": count, "real_running": len(latencies),
               "real_p50_s": percentile(latencies, 0.5), "real_p99_s": p99,
               "real_burst_pods": count, "real_burst_running": len(burst_latencies),
               "real_burst_all_running_s": round(burst_total, 2),
               "bare_runc_run_s": round(bare, 3) if bare else None,
               "real_overhead_x": round(percentile(latencies, 0.5) / bare, 1) if bare and latencies else None,
               "bare_runc_interleaved_s": percentile(sorted(interleaved), 0.5),
               "real_overhead_interleaved_x": round(percentile(latencies, 0.5) / percentile(sorted(interleaved), 0.5),
                                                    1) if interleaved and latencies else None,
               "real_agent_rss_mb": round(rss_mb(agent.pid), 1)}
        delete_bench_pods(work)
        return out
    finally:
        agent.terminate()
        agent.wait(20)
        registry.stop()
        for name in ("runc",):
            root = agent_dir / "runc" / name
            listed = subprocess.run(["runc", "--root", str(root), "list", "-q"], capture_output=True, text=True)
            for cid in listed.stdout.split():
                subprocess.run(["runc", "--root", str(root), "delete", "--force", cid], capture_output=True)
        mounts = [ln.split()[1] for ln in Path("/proc/self/mounts").read_text().splitlines()
                  if ln.split()[1].startswith(str(work))]
        for m in sorted(mounts, reverse=True):
            subprocess.run(["umount", "-l", m], capture_output=True)
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)
        for cidr in (cluster_cidr, service_cidr):
            subprocess.run(["ip", "route", "del", cidr], capture_output=True)
        for table in ("nat", "filter"):
            rules = subprocess.run(["iptables", "-w", "-t", table, "-S"], capture_output=True, text=True).stdout
            for rule in rules.splitlines():
                if rule.startswith("-A ") and f"10.{octet}." in rule:
                    subprocess.run(["iptables", "-w", "-t", table, "-D", *rule.split()[1:]], capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--hollow-pods", type=int, default=1000)
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--real-pods", type=int, default=100)
    args = parser.parse_args()
    results: dict = {}
    with tempfile.TemporaryDirectory(prefix="k8py-bench-pods-") as tmp:
        port = free_port()
        server, _ = start_server(Path(tmp) / "server", port, TOKEN, ("--cluster-cidr", BENCH_CLUSTER_CIDR))
        try:
            if args.hollow_pods:
                results.update(hollow(port, Path(tmp), args.hollow_pods, args.nodes))
            if args.real_pods:
                results.update(real(port, Path(tmp), args.real_pods))
        finally:
            server.terminate()
            server.wait(10)
    results["targets"] = {k: f"{op} {v}" for k, (op, v) in TARGETS.items()}
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
