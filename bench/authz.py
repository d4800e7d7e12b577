"""Authorization benchmark: gets/s through RBAC against the same run with AlwaysAllow. Prints JSON.

Two `k8py server`s (pinned to core 0), one with the default `--authorization-mode`
(Node,RBAC), one with `AlwaysAllow`, each holding the same 1,000 Roles and
1,000 RoleBindings (to 1,000 other users, over 10 namespaces). A non-admin
user (a static token) whose RoleBinding grants `get` on configmaps reads
ConfigMaps with 32 concurrent clients from a process on core 1; rounds
alternate between the two servers so that the machine's load falls on both
alike. The target: RBAC within 10% of AlwaysAllow.

    python bench/authz.py [--roles 1000] [--gets 3000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import free_port, start_server  # noqa: E402

ADMIN_TOKEN = "bench-admin"
USER_TOKEN = "bench-user-token"
USER = "bench-user"
NAMESPACES = 10
CONFIGMAPS = 100
TARGET = ("rbac_vs_alwaysallow", ">=", 0.9)


def rbac_objects(count: int) -> list[tuple[str, dict]]:
    """(collection path, object): `count` Roles and RoleBindings, plus the bench user's own binding."""
    out = []
    base = "/apis/rbac.authorization.k8s.io/v1/namespaces"
    for i in range(count):
        ns = f"bench-{i % NAMESPACES}"
        out.append((f"{base}/{ns}/roles", {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": f"role-{i}"},
            "rules": [{"apiGroups": ["", "apps"], "resources": ["pods", f"things-{i}"],
                       "verbs": ["get", "list", "watch"]}]}))
        out.append((f"{base}/{ns}/rolebindings", {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": f"rb-{i}"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": f"role-{i}"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": f"user-{i}"}]}))
    out.append((f"{base}/bench-0/roles", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "cm-reader"},
        "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]}))
    out.append((f"{base}/bench-0/rolebindings", {
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "cm-reader"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cm-reader"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": USER}]}))
    return out


async def post_all(http: aiohttp.ClientSession, items: list[tuple[str, dict]], concurrency: int = 16) -> None:
    queue = list(reversed(items))

    async def worker():
        while queue:
            path, body = queue.pop()
            async with http.post(path, data=json.dumps(body)) as r:
                assert r.status == 201, await r.text()
    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def fill(base: str, roles: int) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"}
    async with aiohttp.ClientSession(base, headers=headers, connector=aiohttp.TCPConnector(ssl=False)) as http:
        await post_all(http, [("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                                      "metadata": {"name": f"bench-{i}"}}) for i in range(NAMESPACES)])
        await post_all(http, [("/api/v1/namespaces/bench-0/configmaps", {
            "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{i}"}, "data": {"k": "v"}})
            for i in range(CONFIGMAPS)])
        await post_all(http, rbac_objects(roles))


async def gets_per_second(base: str, gets: int, concurrency: int = 32) -> float:
    headers = {"Authorization": f"Bearer {USER_TOKEN}"}
    async with aiohttp.ClientSession(base, headers=headers,
                                     connector=aiohttp.TCPConnector(ssl=False, limit=0)) as http:
        queue = list(range(gets))

        async def worker():
            while queue:
                i = queue.pop()
                async with http.get(f"/api/v1/namespaces/bench-0/configmaps/cm-{i % CONFIGMAPS}") as r:
                    assert r.status == 200, await r.text()
                    await r.read()
        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return gets / (time.monotonic() - started)


async def measure(bases: dict[str, str], roles: int, gets: int, rounds: int) -> dict:
    await asyncio.gather(*(fill(base, roles) for base in bases.values()))
    for base in bases.values():  # warm up connections and caches
        await gets_per_second(base, min(gets, 500))
    samples: dict[str, list[float]] = {mode: [] for mode in bases}
    for _ in range(rounds):
        for mode, base in bases.items():
            samples[mode].append(await gets_per_second(base, gets))
    medians = {mode: statistics.median(values) for mode, values in samples.items()}
    return {"rbac_gets_per_s": round(medians["RBAC"]), "alwaysallow_gets_per_s": round(medians["AlwaysAllow"]),
            "rbac_vs_alwaysallow": round(medians["RBAC"] / medians["AlwaysAllow"], 3),
            "rounds": {mode: [round(v) for v in values] for mode, values in samples.items()}}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--roles", type=int, default=1000)
    parser.add_argument("--gets", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})
    tmp = Path(tempfile.mkdtemp(prefix="k8py-bench-authz-"))
    tokens = tmp / "tokens.csv"
    tokens.write_text(f"{USER_TOKEN},{USER},u1\n")
    servers, bases = [], {}
    try:
        for mode, flags in (("RBAC", ()), ("AlwaysAllow", ("--authorization-mode", "AlwaysAllow"))):
            port = free_port()
            proc, _ = start_server(tmp / mode, port, ADMIN_TOKEN, ("--token-file", str(tokens), *flags))
            servers.append(proc)
            bases[mode] = f"https://127.0.0.1:{port}"
        results = asyncio.run(measure(bases, args.roles, args.gets, args.rounds))
    finally:
        for proc in servers:
            proc.send_signal(signal.SIGTERM)
        for proc in servers:
            try:
                proc.wait(timeout=10)
            except Exception:
                proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    name, op, value = TARGET
    results.update({"roles": args.roles, "rolebindings": args.roles, "gets_per_round": args.gets,
                    "load_average": [round(x, 2) for x in os.getloadavg()],
                    "target": f"{name} {op} {value}", "target_met": results[name] >= value})
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
