"""The kubelet's /metrics/resource: CPU and memory of the node, its pods and their
containers in Prometheus text format, the endpoint metrics-server scrapes (names,
labels and help texts as upstream's resource metrics, GA since v1.29).
"""

from __future__ import annotations

from k8py.kubelet.stats import Sample


def _labels(**values: str) -> str:
    inner = ",".join(f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
                     for k, v in values.items())
    return "{" + inner + "}"


def _number(value: float) -> str:
    """The shortest text that reads back as the same float (byte counts stay exact)."""
    value = float(value)
    return str(int(value)) if value.is_integer() and abs(value) < 1e21 else repr(value)


def render(sample: Sample) -> str:
    now_ms = int(sample.time * 1000)
    lines: list[str] = []
    containers = sorted(sample.containers, key=lambda c: (c.namespace, c.pod, c.name))

    def family(name: str, kind: str, help_text: str, samples, stamped: bool = True) -> None:
        lines.append(f"# HELP {name} [STABLE] {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            lines.append(f"{name}{labels} {_number(value)} {now_ms}" if stamped else f"{name}{labels} {_number(value)}")

    def of_container(c) -> str:
        return _labels(container=c.name, namespace=c.namespace, pod=c.pod)

    family("container_cpu_usage_seconds_total", "counter",
           "Cumulative cpu time consumed by the container in core-seconds",
           [(of_container(c), c.usage.cpu_usage_ns / 1e9) for c in containers])
    family("container_memory_working_set_bytes", "gauge", "Current working set of the container in bytes",
           [(of_container(c), c.usage.memory_working_set_bytes) for c in containers])
    family("container_start_time_seconds", "gauge", "Start time of the container since unix epoch in seconds",
           [(of_container(c), c.started_at) for c in containers])
    family("node_cpu_usage_seconds_total", "counter", "Cumulative cpu time consumed by the node in core-seconds",
           [("", sample.node_cpu_ns / 1e9)])
    family("node_memory_working_set_bytes", "gauge", "Current working set of the node in bytes",
           [("", sample.node_memory.get("working_set", 0))])
    pods: dict[tuple[str, str], list[float]] = {}
    for c in containers:
        total = pods.setdefault((c.namespace, c.pod), [0.0, 0.0])
        total[0] += c.usage.cpu_usage_ns / 1e9
        total[1] += c.usage.memory_working_set_bytes
    family("pod_cpu_usage_seconds_total", "counter", "Cumulative cpu time consumed by the pod in core-seconds",
           [(_labels(namespace=ns, pod=p), v[0]) for (ns, p), v in sorted(pods.items())])
    family("pod_memory_working_set_bytes", "gauge", "Current working set of the pod in bytes",
           [(_labels(namespace=ns, pod=p), v[1]) for (ns, p), v in sorted(pods.items())])
    family("resource_scrape_error", "gauge", "1 if there was an error while getting container metrics, 0 otherwise",
           [("", 1 if sample.errors else 0)], stamped=False)
    return "\n".join(lines) + "\n"
