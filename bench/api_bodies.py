"""Request-body benchmark: protobuf vs JSON creates, server-side apply vs update.

Starts a fresh `k8py server` pinned to one core (taskset -c 0, as bench/api.py
does), then from this process (pinned to the other core) times, one request
at a time over one keep-alive HTTPS connection:

1. creating the same 3-container Deployment (a kind kubectl sends as
   protobuf) as `application/vnd.kubernetes.protobuf` (the bytes kubectl
   writes: the encoder reproduces kubectl's captured bodies exactly), as the
   JSON kubectl would write for the same object (Go's JSON keeps the empty
   `strategy` and `status` structs), and as hand-written minimal JSON;
2. changing one container image of a 50-container Deployment with a plain
   update (PUT) and with a server-side apply (PATCH apply-patch+yaml,
   fieldManager=bench, force).

The forms are interleaved request by request; each round yields a median
per form, and ratios are the median over rounds of the per-round ratios, so
a load change on a shared machine hits all forms alike. Also reports, in
process, the decode time of each body form. Prints one JSON document: the
figures and the issue's targets beside them (protobuf adds < 20% over the
JSON create of the same object; an apply costs < 3x an update).

    python bench/api_bodies.py [--rounds 10] [--requests 50]
"""

from __future__ import annotations

import argparse
import copy
import http.client
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

import orjson

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.api import TOKEN  # noqa: E402
from bench.common import free_port, start_server  # noqa: E402
from k8py.apimachinery.protobuf import decode_protobuf_object  # noqa: E402
from k8py.apimachinery.protobuf.encoder import encode_protobuf_object  # noqa: E402

PROTOBUF = "application/vnd.kubernetes.protobuf"
APPLY = "application/apply-patch+yaml"
TARGETS = {"protobuf_create_overhead": ("<", 0.20), "apply_vs_update_ratio": ("<", 3.0)}


def container(i: int, tag: str = "1.0") -> dict:
    return {"name": f"c{i:02d}", "image": f"registry.local/app-{i}:{tag}",
            "command": ["/bin/app", "--port", str(8000 + i)],
            "ports": [{"name": f"http-{i}", "containerPort": 8000 + i, "protocol": "TCP"}],
            "env": [{"name": "INDEX", "value": str(i)}, {"name": "MODE", "value": "bench"}],
            "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}},
            "readinessProbe": {"httpGet": {"path": "/ready", "port": 8000 + i}, "periodSeconds": 5},
            "imagePullPolicy": "IfNotPresent"}


def deployment(name: str, containers: int, tag: str = "1.0") -> dict:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "labels": labels},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [container(i, tag) for i in range(containers)]}}}}


class Conn:
    def __init__(self, port: int):
        import ssl
        self.conn = http.client.HTTPSConnection("127.0.0.1", port, context=ssl._create_unverified_context())

    def call(self, method: str, path: str, body: bytes | None, content_type: str | None, want: int) -> float:
        headers = {"Authorization": f"Bearer {TOKEN}", "Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        started = time.perf_counter()
        self.conn.request(method, path, body=body, headers=headers)
        resp = self.conn.getresponse()
        data = resp.read()
        elapsed = time.perf_counter() - started
        if resp.status != want:
            raise SystemExit(f"{method} {path}: {resp.status} {data[:300]!r}")
        return elapsed


DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"


CREATE_FORMS = ("json", "protobuf", "json_minimal")


def create_bodies(name: str, containers: int) -> dict[str, tuple[bytes, str]]:
    """The same Deployment three ways: kubectl's protobuf; the JSON kubectl
    would send for it (Go's JSON writes empty structs, `"strategy": {}` and
    `"status": {}`, so it is the JSON form of what the protobuf decodes to);
    and a hand-written minimal JSON."""
    obj = deployment(name, containers)
    protobuf = encode_protobuf_object(obj)
    return {"json": (orjson.dumps(decode_protobuf_object(protobuf)), "application/json"),
            "protobuf": (protobuf, PROTOBUF),
            "json_minimal": (orjson.dumps(obj), "application/json")}


def create_rounds(conn: Conn, rounds: int, per_round: int, containers: int) -> dict:
    """Per round, the median create latency of each form, the forms interleaved
    request by request (rotating which goes first) so they share the load."""
    out = {form: [] for form in CREATE_FORMS}
    n = 0
    for _ in range(rounds):
        times = {form: [] for form in CREATE_FORMS}
        for i in range(per_round):
            order = CREATE_FORMS[i % 3:] + CREATE_FORMS[:i % 3]
            for form in order:
                n += 1
                body, ctype = create_bodies(f"create-{n:06d}", containers)[form]
                times[form].append(conn.call("POST", DEPLOYMENTS + "?fieldManager=kubectl-create", body, ctype, 201))
        for form in CREATE_FORMS:
            out[form].append(statistics.median(times[form]))
    return out


def update_rounds(conn: Conn, rounds: int, per_round: int, containers: int) -> dict:
    """Per round, the median latency of changing one image of a big
    Deployment with a PUT and with an apply, interleaved request by request."""
    name = "big"
    obj = deployment(name, containers)
    conn.call("POST", DEPLOYMENTS, orjson.dumps(obj), "application/json", 201)
    path = f"{DEPLOYMENTS}/{name}"
    out = {"update": [], "apply": []}
    step = 0
    for _ in range(rounds):
        times = {"update": [], "apply": []}
        for n in range(per_round):
            for form in ("update", "apply") if n % 2 else ("apply", "update"):
                step += 1
                changed = copy.deepcopy(obj)
                changed["spec"]["template"]["spec"]["containers"][step % containers]["image"] = \
                    f"registry.local/app-{step % containers}:{step}"
                if form == "update":
                    times[form].append(conn.call("PUT", path + "?fieldManager=bench-update",
                                                 orjson.dumps(changed), "application/json", 200))
                else:
                    times[form].append(conn.call("PATCH", path + "?fieldManager=bench-apply&force=true",
                                                 orjson.dumps(changed), APPLY, 200))
        for form in out:
            out[form].append(statistics.median(times[form]))
    return out


def _ratio(rounds: dict, top: str, bottom: str) -> float:
    """The median over rounds of the per-round ratio: steadier than one ratio
    of overall medians on a machine whose load changes during the run."""
    return statistics.median(a / b for a, b in zip(rounds[top], rounds[bottom]))


def decode_costs(containers: int, repeat: int = 2000) -> dict:
    """In-process decode time of one Deployment body, JSON vs protobuf (µs)."""
    raw_pb = encode_protobuf_object(deployment("decode", containers))
    raw_json = orjson.dumps(decode_protobuf_object(raw_pb))
    out = {}
    for form, fn, raw in (("json", orjson.loads, raw_json), ("protobuf", decode_protobuf_object, raw_pb)):
        started = time.perf_counter()
        for _ in range(repeat):
            fn(raw)
        out[form] = (time.perf_counter() - started) / repeat * 1e6
    out["bytes_json"], out["bytes_protobuf"] = len(raw_json), len(raw_pb)
    return out


def verdict(value: float, target: tuple[str, float]) -> dict:
    op, bound = target
    return {"value": value, "target": f"{op} {bound}", "met": value < bound if op == "<" else value >= bound}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=10, help="rounds per comparison")
    p.add_argument("--requests", type=int, default=50, help="requests per form per round")
    p.add_argument("--create-containers", type=int, default=3, help="containers in the created Deployment")
    p.add_argument("--apply-containers", type=int, default=50)
    args = p.parse_args()
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {1})
    data_dir = Path(tempfile.mkdtemp(prefix="k8py-bench-bodies-"))
    port = free_port()
    proc, _ = start_server(data_dir, port, TOKEN)
    try:
        conn = Conn(port)
        conn.call("POST", DEPLOYMENTS, orjson.dumps(deployment("warm", 1)), "application/json", 201)
        creates = create_rounds(conn, args.rounds, args.requests, args.create_containers)
        updates = update_rounds(conn, args.rounds, args.requests, args.apply_containers)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(data_dir, ignore_errors=True)
    decode = decode_costs(args.create_containers)
    med = {form: statistics.median(v) for form, v in {**creates, **updates}.items()}
    figures = {
        "create_json_ms": round(med["json"] * 1000, 3),
        "create_protobuf_ms": round(med["protobuf"] * 1000, 3),
        "create_json_minimal_ms": round(med["json_minimal"] * 1000, 3),
        "protobuf_create_overhead": round(_ratio(creates, "protobuf", "json") - 1, 3),
        "protobuf_vs_minimal_json_overhead": round(_ratio(creates, "protobuf", "json_minimal") - 1, 3),
        "decode_json_us": round(decode["json"], 1),
        "decode_protobuf_us": round(decode["protobuf"], 1),
        "body_bytes_json": decode["bytes_json"],
        "body_bytes_protobuf": decode["bytes_protobuf"],
        "update_50_containers_ms": round(med["update"] * 1000, 3),
        "apply_50_containers_ms": round(med["apply"] * 1000, 3),
        "apply_vs_update_ratio": round(_ratio(updates, "apply", "update"), 2),
        "rounds": args.rounds,
        "requests_per_form": args.rounds * args.requests,
    }
    verdicts = {key: verdict(figures[key], target) for key, target in TARGETS.items()}
    print(json.dumps({"figures": figures, "baseline_targets": verdicts}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
