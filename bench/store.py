"""Store micro-benchmark: prints one JSON document of figures.

Measures the SQLite store alone (no HTTP), pinned to one core, so we know it
is not what limits the API server: creates/s and conditional updates/s with
32 concurrent writers, the same creates with a watch cache subscribed (what
the server does on every commit), the mean writes per transaction (group
commit at work), one full list and one events_since of everything.

    python bench/store.py [--objects 20000] [--writers 32] [--cpu 0] [--no-uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from k8py.storage.cache import WatchCache  # noqa: E402
from k8py.storage.sqlite import open_sqlite_store  # noqa: E402

TARGET_CREATES_PER_S = 5000


def pod_json(i: int) -> bytes:
    """About 1 KiB, the size of a small real pod."""
    return json.dumps({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"pod-{i}", "namespace": "bench", "uid": f"{i:032x}",
                     "labels": {"app": "bench", "shard": str(i % 10)},
                     "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"containers": [{"name": "main", "image": "registry.local/busybox:1.36",
                                 "command": ["sleep", "3600"],
                                 "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}],
                 "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
                 "dnsPolicy": "ClusterFirst", "schedulerName": "default-scheduler",
                 "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                                  "effect": "NoExecute", "tolerationSeconds": 300}]},
        "status": {"phase": "Pending", "qosClass": "Burstable", "message": "x" * 300},
    }).encode()


async def run_writers(count: int, writers: int, write) -> float:
    """`write(i)` for i in range(count) from `writers` concurrent tasks; ops/s."""
    async def writer(w: int):
        for i in range(w, count, writers):
            await write(i)
    started = time.perf_counter()
    await asyncio.gather(*(writer(w) for w in range(writers)))
    return count / (time.perf_counter() - started)


async def bench(objects: int, writers: int) -> dict:
    results: dict = {}
    values = [pod_json(i) for i in range(objects)]
    with tempfile.TemporaryDirectory() as tmp:
        store = await open_sqlite_store(Path(tmp) / "state.db")
        commits = []
        store.subscribe(lambda events: commits.append(len(events)))

        async def create(i):
            await store.create(f"/registry/pods/bench/pod-{i}", values[i])
        results["creates_per_s"] = round(await run_writers(objects, writers, create))
        results["writes_per_commit"] = round(sum(commits) / len(commits), 1)

        revisions = {}
        for kv in (await store.list("/registry/pods/"))[0]:
            revisions[kv.key] = kv.mod_revision

        async def update(i):
            key = f"/registry/pods/bench/pod-{i}"
            kv = await store.update(key, values[i], expected_revision=revisions[key])
            revisions[key] = kv.mod_revision
        results["updates_per_s"] = round(await run_writers(objects, writers, update))

        started = time.perf_counter()
        items, _, _ = await store.list("/registry/pods/")
        results[f"list_{len(items)}_s"] = round(time.perf_counter() - started, 3)
        started = time.perf_counter()
        events = await store.events_since("/registry/pods/", 0)
        results[f"events_since_{len(events)}_s"] = round(time.perf_counter() - started, 3)
        started = time.perf_counter()
        await store.compact(store.revision)
        results["compact_all_s"] = round(time.perf_counter() - started, 3)
        await store.close()

        # The server's configuration: a watch cache decodes every commit.
        store = await open_sqlite_store(Path(tmp) / "cached.db")
        cache = WatchCache(store, "/registry/pods/")
        await cache.start()

        async def create_cached(i):
            await store.create(f"/registry/pods/bench/pod-{i}", values[i])
        results["creates_per_s_with_cache"] = round(await run_writers(objects, writers, create_cached))
        assert len(cache) == objects
        await store.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=20000)
    parser.add_argument("--writers", type=int, default=32)
    parser.add_argument("--cpu", type=int, default=0, help="core to pin to (-1: no pinning)")
    parser.add_argument("--no-uvloop", action="store_true")
    args = parser.parse_args()
    if args.cpu >= 0:
        os.sched_setaffinity(0, {args.cpu})  # before any thread starts: they inherit it
    loop_name = "asyncio"
    if not args.no_uvloop:
        try:
            import uvloop
            asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
            loop_name = "uvloop"
        except ImportError:
            pass
    figures = asyncio.run(bench(args.objects, args.writers))
    print(json.dumps({"objects": args.objects, "writers": args.writers, "cores": 1 if args.cpu >= 0 else os.cpu_count(),
                      "loop": loop_name, "value_bytes": len(pod_json(0)), **figures,
                      "target_creates_per_s": TARGET_CREATES_PER_S,
                      "meets_target": figures["creates_per_s"] >= TARGET_CREATES_PER_S}, indent=2))


if __name__ == "__main__":
    main()
