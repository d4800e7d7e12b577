"""Reading a kubelet's /metrics/resource: the Prometheus text parsed into one
sample of the node and its containers (what metrics-server keeps per scrape).
"""

from __future__ import annotations

import re
import ssl
from dataclasses import dataclass, field

import aiohttp

_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


@dataclass
class Point:
    timestamp: float          # seconds, the kubelet's own reading time
    cpu_seconds: float        # cumulative
    memory_bytes: float
    start_time: float = 0.0   # containers only


@dataclass
class NodeSample:
    node: Point | None = None
    # (namespace, pod) -> container name -> Point
    pods: dict[tuple[str, str], dict[str, Point]] = field(default_factory=dict)


class ScrapeError(Exception):
    pass


def _unescape(value: str) -> str:
    return value.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\") if "\\" in value else value


def parse(text: str, now: float) -> NodeSample:
    """Lines we need (node_*, container_*) into a NodeSample; others are skipped.
    A sample without its own timestamp is taken as read `now`."""
    sample = NodeSample()
    node = {}
    containers: dict[tuple[str, str, str], dict] = {}
    for line in text.splitlines():
        if not line or line[0] == "#" or not line.startswith(("node_", "container_")):
            continue
        brace = line.find("{")
        if brace >= 0:
            close = line.rfind("}")
            name, labels, rest = line[:brace], line[brace + 1:close], line[close + 1:].split()
        else:
            name, _, tail = line.partition(" ")
            labels, rest = "", tail.split()
        try:
            value = float(rest[0])
            stamp = float(rest[1]) / 1000 if len(rest) > 1 else now
        except (IndexError, ValueError):
            raise ScrapeError(f"unparsable sample: {line[:200]!r}")
        if name.startswith("node_"):
            node[name] = value
            node["ts"] = stamp
            continue
        found = {k: _unescape(v) for k, v in _LABEL.findall(labels)}
        key = (found.get("namespace", ""), found.get("pod", ""), found.get("container", ""))
        entry = containers.setdefault(key, {})
        entry[name] = value
        if name != "container_start_time_seconds":
            entry["ts"] = stamp
    if "node_cpu_usage_seconds_total" in node and "node_memory_working_set_bytes" in node:
        sample.node = Point(node["ts"], node["node_cpu_usage_seconds_total"], node["node_memory_working_set_bytes"])
    for (namespace, pod, container), entry in containers.items():
        # metrics-server keeps a container only with both CPU and memory
        if "container_cpu_usage_seconds_total" in entry and "container_memory_working_set_bytes" in entry:
            sample.pods.setdefault((namespace, pod), {})[container] = Point(
                entry["ts"], entry["container_cpu_usage_seconds_total"], entry["container_memory_working_set_bytes"],
                entry.get("container_start_time_seconds", 0.0))
    return sample


def kubelet_url(node: dict, preferred=("InternalIP", "ExternalIP", "Hostname")) -> str | None:
    """https://<address>:<kubelet port>/metrics/resource by the preferred address types
    (k3s runs metrics-server with --kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname
    and --kubelet-use-node-status-port)."""
    status = node.get("status") or {}
    addresses = {a.get("type"): a.get("address") for a in status.get("addresses") or []}
    address = next((addresses[t] for t in preferred if addresses.get(t)), None)
    port = ((status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}).get("Port") or 10250
    if not address:
        return None
    host = f"[{address}]" if ":" in address else address
    return f"https://{host}:{port}/metrics/resource"


async def scrape(session: aiohttp.ClientSession, url: str, tls: ssl.SSLContext, timeout: float,
                 now: float) -> NodeSample:
    try:
        async with session.get(url, ssl=tls, timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            if resp.status != 200:
                raise ScrapeError(f"request failed, status: \"{resp.status} {resp.reason}\"")
            text = await resp.text()
    except aiohttp.ClientConnectorError as e:
        reason = (e.os_error.strerror or str(e.os_error)).lower() if e.os_error else "refused"
        raise ScrapeError(f'Get "{url}": dial tcp {e.host}:{e.port}: connect: {reason}') from None
    except (aiohttp.ClientError, OSError) as e:
        raise ScrapeError(f'Get "{url}": {e}') from None
    except TimeoutError:
        raise ScrapeError(f'Get "{url}": context deadline exceeded') from None
    return parse(text, now)
