"""Secrets at rest and the audit log: what they cost a create. Prints one JSON document.

Starts three `k8py server`s (pinned to core 0, the client on core 1): plain,
with secrets encrypted at rest (`--encryption-provider-config`, aescbc; or
the provider given), and plain with an audit log at Metadata level for every
request. Then creates secrets with 32 concurrent clients, in rounds that
alternate between the servers (the order rotating each round), so machine
load hits all of them alike. The baseline is the plain server of the same
run; the issue's target is encrypted >= 80% of plain. Besides creates/s it
prints the server's CPU time per create (from /proc), which a busy machine
disturbs far less than wall-clock rates.

    python bench/secrets.py [--secrets 2000] [--rounds 3] [--provider aescbc|aesgcm|secretbox]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
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

from bench.common import cpu_seconds, free_port, start_server  # noqa: E402

TOKEN = "bench-token"
TARGET_RATIO = 0.8
POLICY = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n"


def encryption_config(provider: str) -> str:
    secret = base64.b64encode(os.urandom(32)).decode()
    return ("apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n"
            f"- resources: [secrets]\n  providers:\n  - {provider}:\n      keys:\n"
            f"      - name: key1\n        secret: {secret}\n  - identity: {{}}\n")


def secret(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
            "data": {"password": base64.b64encode(os.urandom(24)).decode(), "user": "YWRtaW4="}}


async def create_round(base: str, prefix: str, count: int, concurrency: int = 32) -> float:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    queue = list(range(count))
    async with aiohttp.ClientSession(base, headers=headers, connector=aiohttp.TCPConnector(ssl=False,
                                                                                          limit=0)) as http:
        async def worker():
            while queue:
                i = queue.pop()
                async with http.post("/api/v1/namespaces/default/secrets",
                                     data=json.dumps(secret(f"{prefix}-{i:05d}"))) as r:
                    if r.status != 201:
                        raise SystemExit(f"create failed: {r.status} {await r.text()}")
        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return count / (time.monotonic() - started)


def transform_cost_us(provider: str) -> float:
    """Microseconds to encrypt and decrypt one such secret (the work encryption adds to a create)."""
    from k8py.apiserver.encryptionconfig import parse
    chain = parse(encryption_config(provider))[("", "secrets")]
    value = json.dumps(secret("s-00001")).encode()
    key = "/registry/secrets/default/s-00001"
    n = 2000
    started = time.perf_counter()
    for _ in range(n):
        chain.from_storage(chain.to_storage(value, key), key)
    return round((time.perf_counter() - started) / n * 1e6, 1)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--secrets", type=int, default=2000, help="secrets created per server per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--provider", default="aescbc", choices=("aescbc", "aesgcm", "secretbox"))
    args = parser.parse_args()
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="k8py-bench-secrets-") as tmp:
        tmp = Path(tmp)
        (tmp / "encryption.yaml").write_text(encryption_config(args.provider))
        (tmp / "policy.yaml").write_text(POLICY)
        variants = {
            "plain": (),
            "encrypted": ("--encryption-provider-config", str(tmp / "encryption.yaml")),
            "audited": ("--audit-policy-file", str(tmp / "policy.yaml"), "--audit-log-path", str(tmp / "audit.log")),
        }
        servers = {}
        try:
            for name, extra in variants.items():
                port = free_port()
                proc, _ = start_server(tmp / name, port, TOKEN, extra, wait_for_kubeconfig=False,
                                       timeout=120)  # three servers start on one core
                servers[name] = (proc, f"https://127.0.0.1:{port}")
            for name in variants:  # warm-up, not measured: first requests pay for imports and caches
                asyncio.run(create_round(servers[name][1], "warm", 200))
            rates: dict[str, list[float]] = {name: [] for name in variants}
            cpu_us: dict[str, list[float]] = {name: [] for name in variants}
            names = list(variants)
            for r in range(args.rounds):
                for name in names[r % len(names):] + names[:r % len(names)]:
                    proc, base = servers[name]
                    cpu_before = cpu_seconds(proc.pid)
                    rates[name].append(asyncio.run(create_round(base, f"r{r}", args.secrets)))
                    cpu_us[name].append((cpu_seconds(proc.pid) - cpu_before) / args.secrets * 1e6)
        finally:
            for proc, _ in servers.values():
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=10)
    median = {name: round(statistics.median(values)) for name, values in rates.items()}
    ratio = round(median["encrypted"] / median["plain"], 3)
    # Server CPU per create hardly depends on how busy the machine is: the steadier comparison.
    cpu = {name: round(statistics.median(values), 1) for name, values in cpu_us.items()}
    print(json.dumps({
        "provider": args.provider, "secrets_per_round": args.secrets, "rounds": args.rounds,
        "creates_per_s": {name: [round(v) for v in values] for name, values in rates.items()},
        "median_creates_per_s": median,
        "encrypted_vs_plain": ratio,
        "audited_vs_plain": round(median["audited"] / median["plain"], 3),
        "median_server_cpu_us_per_create": cpu,
        "encrypted_vs_plain_by_cpu": round(cpu["plain"] / cpu["encrypted"], 3),
        "audited_vs_plain_by_cpu": round(cpu["plain"] / cpu["audited"], 3),
        "encrypt_and_decrypt_us_per_secret": transform_cost_us(args.provider),
        "target": {"encrypted_vs_plain": f">= {TARGET_RATIO}", "met": ratio >= TARGET_RATIO},
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
