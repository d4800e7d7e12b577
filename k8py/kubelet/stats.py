"""The kubelet's /stats/summary: CPU and memory of the node, its pods and their
containers, in the Summary API's JSON shape (kubelet stats/v1alpha1), from the
same samples as /metrics/resource.

usageNanoCores is a rate: it is worked out from the previous summary's
cumulative figures, so the first summary for a container leaves it out.
"""

from __future__ import annotations

import asyncio
import time

from k8py.kubelet.resource_metrics import node_usage
from k8py.kubelet.runtime.interface import LABEL_CONTAINER_NAME, LABEL_POD_NAME, LABEL_POD_NAMESPACE, LABEL_POD_UID
from k8py.kubelet.status import ts


def _boot_time() -> float | None:
    try:
        with open("/proc/stat") as f:
            for line in f:
                if line.startswith("btime "):
                    return float(line.split()[1])
    except OSError:
        pass
    return None


class SummaryProvider:
    def __init__(self, runtime, node_name: str):
        self.runtime, self.node_name = runtime, node_name
        self._last: dict[str, tuple[float, int]] = {}     # key -> (monotonic time, cumulative CPU ns)

    def _cpu(self, key: str, now: str, cumulative_ns: int, seen: dict) -> dict:
        cpu = {"time": now, "usageCoreNanoSeconds": cumulative_ns}
        at = time.monotonic()
        before = self._last.get(key)
        if before is not None and at > before[0] and cumulative_ns >= before[1]:
            cpu["usageNanoCores"] = int((cumulative_ns - before[1]) / (at - before[0]))
        seen[key] = (at, cumulative_ns)
        return cpu

    async def summary(self) -> dict:
        now = ts(time.time())
        seen: dict[str, tuple[float, int]] = {}
        cpu_seconds, working_set = await asyncio.to_thread(node_usage)
        node = {"nodeName": self.node_name, "startTime": ts(await asyncio.to_thread(_boot_time)),
                "cpu": self._cpu("node", now, int(cpu_seconds * 1e9), seen),
                "memory": {"time": now, "workingSetBytes": working_set}}
        pods: dict[str, dict] = {}
        for status in await self.runtime.list_containers():
            if status.state != "running":
                continue
            usage = await self.runtime.stats(status.id)
            if usage is None:
                continue
            labels = status.labels or {}
            uid = labels.get(LABEL_POD_UID, "")
            pod = pods.setdefault(uid, {
                "podRef": {"name": labels.get(LABEL_POD_NAME, ""), "namespace": labels.get(LABEL_POD_NAMESPACE, ""),
                           "uid": uid},
                "startTime": ts(status.started_at or status.created_at), "containers": [],
                "cpu": {"time": now, "usageCoreNanoSeconds": 0}, "memory": {"time": now, "workingSetBytes": 0}})
            name = labels.get(LABEL_CONTAINER_NAME, status.name)
            pod["containers"].append({
                "name": name, "startTime": ts(status.started_at or status.created_at),
                "cpu": self._cpu(f"{uid}/{name}", now, usage.cpu_usage_ns, seen),
                "memory": {"time": now, "workingSetBytes": usage.memory_working_set_bytes}})
            pod["cpu"]["usageCoreNanoSeconds"] += usage.cpu_usage_ns
            pod["memory"]["workingSetBytes"] += usage.memory_working_set_bytes
            started = ts(status.started_at or status.created_at)
            if started and (not pod["startTime"] or started < pod["startTime"]):
                pod["startTime"] = started
        for uid, pod in pods.items():
            pod["cpu"] = self._cpu(f"pod/{uid}", now, pod["cpu"]["usageCoreNanoSeconds"], seen)
        self._last = seen            # containers gone since are forgotten
        return {"node": node, "pods": list(pods.values())}
