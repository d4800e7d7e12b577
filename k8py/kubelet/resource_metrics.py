"""The kubelet's /metrics/resource: CPU and memory of the node, its pods and
their containers in Prometheus text format, the endpoint metrics-server
scrapes (names and labels as upstream's resource metrics).
"""

from __future__ import annotations

import asyncio
import os
import time

from k8py.kubelet.runtime.interface import LABEL_CONTAINER_NAME, LABEL_POD_NAME, LABEL_POD_NAMESPACE

_HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def node_usage() -> tuple[float, int]:
    """(cpu seconds used since boot, memory working set bytes) of this machine."""
    with open("/proc/stat") as f:
        fields = f.readline().split()[1:]
    # user nice system idle iowait irq softirq steal: busy = all but idle and iowait
    values = [int(v) for v in fields[:8]] + [0] * max(0, 8 - len(fields))
    busy = sum(values) - values[3] - values[4]
    meminfo = {}
    with open("/proc/meminfo") as f:
        for line in f:
            key, _, rest = line.partition(":")
            meminfo[key] = int(rest.split()[0]) * 1024
    working_set = meminfo.get("MemTotal", 0) - meminfo.get("MemAvailable", 0)
    return busy / _HZ, working_set


def _labels(**values: str) -> str:
    inner = ",".join(f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
                     for k, v in values.items())
    return "{" + inner + "}"


async def render(runtime) -> str:
    now_ms = int(time.time() * 1000)
    lines: list[str] = []
    cpu, memory = await asyncio.to_thread(node_usage)
    containers = []
    for status in await runtime.list_containers():
        if status.state != "running":
            continue
        stats = await runtime.stats(status.id)
        if stats is None:
            continue
        labels = status.labels or {}
        containers.append((labels.get(LABEL_POD_NAMESPACE, ""), labels.get(LABEL_POD_NAME, ""),
                           labels.get(LABEL_CONTAINER_NAME, status.name), stats))

    def family(name: str, kind: str, help_text: str, samples: list[tuple[str, float]]) -> None:
        lines.append(f"# HELP {name} [STABLE] {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            lines.append(f"{name}{labels} {value:.9g} {now_ms}")

    family("container_cpu_usage_seconds_total", "counter",
           "Cumulative cpu time consumed by the container in core-seconds",
           [(_labels(container=c, namespace=ns, pod=p), s.cpu_usage_ns / 1e9) for ns, p, c, s in containers])
    family("container_memory_working_set_bytes", "gauge", "Current working set of the container in bytes",
           [(_labels(container=c, namespace=ns, pod=p), s.memory_working_set_bytes) for ns, p, c, s in containers])
    family("node_cpu_usage_seconds_total", "counter", "Cumulative cpu time consumed by the node in core-seconds",
           [("", cpu)])
    family("node_memory_working_set_bytes", "gauge", "Current working set of the node in bytes", [("", memory)])
    pods: dict[tuple[str, str], list[float]] = {}
    for ns, p, _c, s in containers:
        total = pods.setdefault((ns, p), [0.0, 0.0])
        total[0] += s.cpu_usage_ns / 1e9
        total[1] += s.memory_working_set_bytes
    family("pod_cpu_usage_seconds_total", "counter", "Cumulative cpu time consumed by the pod in core-seconds",
           [(_labels(namespace=ns, pod=p), v[0]) for (ns, p), v in sorted(pods.items())])
    family("pod_memory_working_set_bytes", "gauge", "Current working set of the pod in bytes",
           [(_labels(namespace=ns, pod=p), v[1]) for (ns, p), v in sorted(pods.items())])
    lines.append("# HELP scrape_error [ALPHA] 1 if there was an error while getting container metrics, 0 otherwise")
    lines.append("# TYPE scrape_error gauge")
    lines.append("scrape_error 0")
    return "\n".join(lines) + "\n"
