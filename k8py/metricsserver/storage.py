"""The last two scrapes of every node and container, and the usage they give:
CPU as the rate between them, memory as the latest working set (metrics-server's
storage). A node needs two scrapes; a container started since the previous one
is measured from its start time, so a new pod shows after one scrape.
"""

from __future__ import annotations

from dataclasses import dataclass

from k8py.metricsserver.scrape import NodeSample, Point


@dataclass
class Usage:
    timestamp: float          # when the latest reading was taken
    window: float             # seconds the CPU rate spans
    nanocores: int
    memory_bytes: int


def usage(last: Point, prev: Point | None) -> Usage | None:
    if prev is None or last.cpu_seconds < prev.cpu_seconds or last.timestamp <= prev.timestamp:
        # restarted (counter went back) or first sight: measure from its start, if it started since
        if last.start_time and (prev is None or last.start_time > prev.timestamp) \
                and last.timestamp > last.start_time:
            prev = Point(last.start_time, 0.0, 0.0)
        else:
            return None
    window = last.timestamp - prev.timestamp
    rate = (last.cpu_seconds - prev.cpu_seconds) / window
    return Usage(last.timestamp, window, int(rate * 1e9), int(last.memory_bytes))


class Storage:
    def __init__(self):
        self._nodes: dict[str, tuple[Point, Point | None]] = {}
        self._pods: dict[tuple[str, str], dict[str, tuple[Point, Point | None]]] = {}
        self._pods_by_node: dict[str, set[tuple[str, str]]] = {}

    def store(self, node_name: str, sample: NodeSample) -> None:
        if sample.node is not None:
            before = self._nodes.get(node_name)
            self._nodes[node_name] = (sample.node, _older(before, sample.node))
        for key in self._pods_by_node.get(node_name, set()) - sample.pods.keys():
            self._pods.pop(key, None)            # gone from the node
        for key, containers in sample.pods.items():
            before = self._pods.get(key, {})
            self._pods[key] = {name: (point, _older(before.get(name), point)) for name, point in containers.items()}
        self._pods_by_node[node_name] = set(sample.pods)

    def node_names(self) -> set[str]:
        return set(self._nodes) | set(self._pods_by_node)

    def forget_node(self, node_name: str) -> None:
        self._nodes.pop(node_name, None)
        for key in self._pods_by_node.pop(node_name, set()):
            self._pods.pop(key, None)

    def node_usage(self, node_name: str) -> Usage | None:
        points = self._nodes.get(node_name)
        return usage(*points) if points else None

    def pod_usage(self, namespace: str, name: str) -> list[tuple[str, Usage]] | None:
        """Each container's usage, or None when any container has none yet (metrics-server leaves such
        a pod out rather than under-report it)."""
        containers = self._pods.get((namespace, name))
        if not containers:
            return None
        found = []
        for container, points in sorted(containers.items()):
            u = usage(*points)
            if u is None:
                return None
            found.append((container, u))
        return found


def _older(before: tuple[Point, Point | None] | None, latest: Point) -> Point | None:
    """What to measure the latest point against: the previous reading, unless it is the same one."""
    if before is None:
        return None
    if before[0].timestamp == latest.timestamp:      # the kubelet served its cached reading again
        return before[1]
    return before[0]
