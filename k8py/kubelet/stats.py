"""The kubelet's resource statistics: one sample of the node, its pods and their
containers (cgroups through the runtime, /proc, statvfs), served as the Summary
API (/stats/summary, kubelet stats/v1alpha1 JSON) and as /metrics/resource
(resource_metrics.py renders the same sample).

A runtime may carry its own idea of the node's usage (`node_usage()`; hollow
nodes sum their synthetic pods), else the host's figures are the node's.
usageNanoCores is a rate: worked out against the previous sample at least a
second older, so the first summary for a container leaves it out.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field

from k8py.kubelet import host_stats
from k8py.kubelet.runtime.interface import (LABEL_CONTAINER_NAME, LABEL_POD_NAME, LABEL_POD_NAMESPACE,
                                            LABEL_POD_UID, ContainerStats)
from k8py.kubelet.status import ts

RATE_MIN_SECONDS = 1.0


@dataclass
class ContainerSample:
    namespace: str
    pod: str
    uid: str
    name: str
    id: str
    started_at: float
    usage: ContainerStats
    pid: int | None = None
    log_path: str = ""


@dataclass
class Sample:
    time: float
    node_cpu_ns: int
    node_memory: dict                                   # host_stats.memory() keys
    containers: list[ContainerSample] = field(default_factory=list)
    errors: int = 0                                     # containers whose stats could not be read

    def pods(self) -> dict[str, list[ContainerSample]]:
        by_uid: dict[str, list[ContainerSample]] = {}
        for c in self.containers:
            by_uid.setdefault(c.uid, []).append(c)
        return by_uid


async def collect(runtime) -> Sample:
    """Usage of the node and of every running container, read now."""
    node_usage = getattr(runtime, "node_usage", None)
    if node_usage is not None:
        cpu_ns, memory = await node_usage()
    else:
        cpu_ns, memory = await asyncio.to_thread(lambda: (host_stats.cpu_ns(), host_stats.memory()))
    sample = Sample(time=time.time(), node_cpu_ns=cpu_ns, node_memory=memory)
    for status in await runtime.list_containers():
        if status.state != "running":
            continue
        try:
            usage = await runtime.stats(status.id)
        except Exception:                     # gone between the listing and the read
            usage = None
        if usage is None:
            sample.errors += 1
            continue
        labels = status.labels or {}
        sample.containers.append(ContainerSample(
            namespace=labels.get(LABEL_POD_NAMESPACE, ""), pod=labels.get(LABEL_POD_NAME, ""),
            uid=labels.get(LABEL_POD_UID, ""), name=labels.get(LABEL_CONTAINER_NAME, status.name), id=status.id,
            started_at=status.started_at or status.created_at or sample.time, usage=usage, pid=status.pid,
            log_path=status.log_path))
    return sample


class SummaryProvider:
    def __init__(self, runtime, node_name: str, data_dir: str | None = None):
        self.runtime, self.node_name = runtime, node_name
        self.data_dir = str(data_dir) if data_dir else None
        self.real_host = getattr(runtime, "node_usage", None) is None
        self.started = host_stats.boot_time() if self.real_host else time.time()   # a hollow node: its kubelet's start
        self._last: dict[str, tuple[float, int]] = {}     # key -> (monotonic time, cumulative CPU ns)

    async def sample(self) -> Sample:
        return await collect(self.runtime)

    def _cpu(self, key: str, now: str, cumulative_ns: int, seen: dict) -> dict:
        cpu = {"time": now, "usageCoreNanoSeconds": cumulative_ns}
        at = time.monotonic()
        before = self._last.get(key)
        if before is not None and at > before[0] and cumulative_ns >= before[1]:
            cpu["usageNanoCores"] = int((cumulative_ns - before[1]) / (at - before[0]))
        # a reading too close to the last one makes a noisy rate: keep measuring from the older one
        keep = before is not None and at - before[0] < RATE_MIN_SECONDS and cumulative_ns >= before[1]
        seen[key] = before if keep else (at, cumulative_ns)
        return cpu

    async def summary(self) -> dict:
        sample = await self.sample()
        now = ts(sample.time)
        seen: dict[str, tuple[float, int]] = {}
        extras = await asyncio.to_thread(self._host_extras, sample) if self.real_host else {}
        memory = sample.node_memory
        node = {"nodeName": self.node_name, "systemContainers": [],
                "startTime": ts(self.started),
                "cpu": self._cpu("node", now, sample.node_cpu_ns, seen),
                "memory": _memory(now, memory.get("usage", 0), memory.get("working_set", 0), memory.get("rss", 0),
                                  memory.get("page_faults", 0), memory.get("major_page_faults", 0),
                                  memory.get("available"))}
        if extras:
            node["network"] = {"time": now, **extras["network"]}
            node["fs"] = {"time": now, **extras["fs"]}
            node["runtime"] = {"imageFs": {"time": now, **extras["fs"]}, "containerFs": {"time": now, **extras["fs"]}}
            node["rlimit"] = {"time": now, **extras["rlimit"]}
        pods = []
        for uid, containers in sample.pods().items():
            pods.append(self._pod(uid, containers, now, seen, extras))
        self._last = seen            # containers gone since are forgotten
        return {"node": node, "pods": pods}

    def _pod(self, uid: str, containers: list[ContainerSample], now: str, seen: dict, extras: dict) -> dict:
        first = containers[0]
        out = []
        total = ContainerStats(0, 0)
        ephemeral_used = 0
        for c in containers:
            u = c.usage
            entry = {"name": c.name, "startTime": ts(c.started_at),
                     "cpu": self._cpu(f"{uid}/{c.name}", now, u.cpu_usage_ns, seen),
                     "memory": _memory(now, u.memory_usage_bytes, u.memory_working_set_bytes, u.memory_rss_bytes,
                                       u.page_faults, u.major_page_faults)}
            fs = extras.get("containers", {}).get(c.id)
            if fs is not None:
                entry["rootfs"] = {"time": now, **extras["fs_room"], "usedBytes": fs[0], "inodesUsed": fs[1]}
                entry["logs"] = {"time": now, **extras["fs_room"], "usedBytes": fs[2], "inodesUsed": 1}
                ephemeral_used += fs[0] + fs[2]
            out.append(entry)
            for name in ("cpu_usage_ns", "memory_working_set_bytes", "memory_usage_bytes", "memory_rss_bytes",
                         "page_faults", "major_page_faults"):
                setattr(total, name, getattr(total, name) + getattr(u, name))
        pod = {"podRef": {"name": first.pod, "namespace": first.namespace, "uid": uid},
               "startTime": ts(min(c.started_at for c in containers)), "containers": out,
               "cpu": self._cpu(f"pod/{uid}", now, total.cpu_usage_ns, seen),
               "memory": _memory(now, total.memory_usage_bytes, total.memory_working_set_bytes,
                                 total.memory_rss_bytes, total.page_faults, total.major_page_faults)}
        interfaces = extras.get("pod_network", {}).get(uid)
        if interfaces is not None:
            pod["network"] = _network(now, interfaces, "eth0")
        if extras:
            pod["ephemeral-storage"] = {"time": now, **extras["fs_room"], "usedBytes": ephemeral_used}
        return pod

    def _host_extras(self, sample: Sample) -> dict:
        """Network, filesystems and process counts: only real nodes have them."""
        path = self.data_dir or "/"
        fs = host_stats.filesystem(path)
        extras = {"network": _network("", host_stats.network(), host_stats.default_interface()),
                  "fs": fs, "rlimit": host_stats.process_limits(),
                  "fs_room": {k: fs[k] for k in ("availableBytes", "capacityBytes", "inodesFree", "inodes")
                              if k in fs},
                  "containers": {}, "pod_network": {}}
        extras["network"].pop("time", None)
        rootfs_of = getattr(self.runtime, "writable_layer", None)
        for c in sample.containers:
            if c.pid and c.uid not in extras["pod_network"]:
                extras["pod_network"][c.uid] = host_stats.network(c.pid)
            layer = rootfs_of(c.id) if rootfs_of is not None else None
            used, inodes = host_stats.tree_usage(layer) if layer else (0, 0)
            try:
                logs = os.stat(c.log_path).st_size if c.log_path else 0
            except OSError:
                logs = 0
            extras["containers"][c.id] = (used, inodes, logs)
        return extras


def _memory(now: str, usage: int, working_set: int, rss: int, faults: int, major: int,
            available: int | None = None) -> dict:
    memory = {"time": now, "usageBytes": usage, "workingSetBytes": working_set, "rssBytes": rss,
              "pageFaults": faults, "majorPageFaults": major}
    if available is not None:
        memory["availableBytes"] = available
    return memory


def _network(now: str, interfaces: list[dict], default: str) -> dict:
    """NetworkStats: the default interface's counters inline, every interface listed."""
    primary = next((i for i in interfaces if i["name"] == default), interfaces[0] if interfaces else None)
    network: dict = {"time": now}
    if primary is not None:
        network.update(primary)
    network["interfaces"] = interfaces
    return network
