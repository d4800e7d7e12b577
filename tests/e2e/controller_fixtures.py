"""Shared pieces of the controller e2e tests: a pod runner per namespace, a pod watch recorder."""

from __future__ import annotations

import calendar
import json
import subprocess
import threading
import time

import pytest

from tests.e2e.conftest import kubectl_binary
from tests.e2e.pod_runner import PodRunner


@pytest.fixture
def runner(server, namespace):
    r = PodRunner(server.kubeconfig, namespace, delay=0.3).start()
    yield r
    r.stop()


class PodCensus:
    """Follows `kubectl get pods -w` and records, at every change, how many pods exist and are available."""

    def __init__(self, server, namespace: str, min_ready_seconds: float = 0, selector: str | None = None,
                 kubectl: list[str] | None = None):
        """`kubectl`: the command that runs kubectl against the cluster (default: `server`'s kubeconfig)."""
        self.min_ready = min_ready_seconds
        self.pods: dict[str, dict] = {}
        self.samples: list[tuple[int, int]] = []
        self.names_seen: set[str] = set()
        # (watch event type, pod name, Ready, being deleted), in the order they came
        self.events: list[tuple[str, str, bool, bool]] = []
        self.phases: list[str | None] = []  # the pod's phase at each of those events
        # Pods not being deleted, at every change: what a ReplicaSet counts (a terminating
        # pod of a real container lingers for its grace period, uncounted, as upstream).
        self.live: list[int] = []
        kubectl = kubectl or [kubectl_binary(), f"--kubeconfig={server.kubeconfig}", f"--cache-dir={server.cache_dir}"]
        cmd = [*kubectl, "get", "pods", "-n", namespace, "-w", "--output-watch-events", "-o", "json"]
        if selector:
            cmd += ["-l", selector]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.thread = threading.Thread(target=self._follow, daemon=True)
        self.thread.start()
        self.first = threading.Event()

    def _follow(self) -> None:
        decoder = json.JSONDecoder()
        buffer = ""
        for line in self.proc.stdout:
            buffer += line
            try:
                event, end = decoder.raw_decode(buffer.strip())
            except ValueError:
                continue
            buffer = ""
            obj = event.get("object") or {}
            name = obj.get("metadata", {}).get("name")
            if not name:
                continue
            if event.get("type") == "DELETED":
                self.pods.pop(name, None)
            else:
                self.pods[name] = obj
                self.names_seen.add(name)
            self.samples.append((len(self.pods), self._available()))
            self.events.append((event.get("type"), name, _ready(obj), bool(obj["metadata"].get("deletionTimestamp"))))
            self.phases.append((obj.get("status") or {}).get("phase"))
            self.live.append(sum(not p["metadata"].get("deletionTimestamp") for p in self.pods.values()))

    def first_seen_order(self) -> list[str]:
        return list(dict.fromkeys(e[1] for e in self.events))

    def first_index(self, name: str, ready: bool | None = None, deleting: bool | None = None,
                    type_: str | None = None) -> int | None:
        """Where the first event for `name` with the given traits is, if any."""
        return next((i for i, (t, n, r, d) in enumerate(self.events) if n == name and
                     (ready is None or r == ready) and (deleting is None or d == deleting) and
                     (type_ is None or t == type_)), None)

    def _available(self) -> int:
        now = time.time()
        count = 0
        for pod in self.pods.values():
            if pod["metadata"].get("deletionTimestamp"):
                continue
            for cond in (pod.get("status") or {}).get("conditions") or []:
                if cond.get("type") == "Ready" and cond.get("status") == "True":
                    since = calendar.timegm(time.strptime(cond["lastTransitionTime"], "%Y-%m-%dT%H:%M:%SZ"))
                    if since + self.min_ready <= now + 1:  # timestamps have whole seconds
                        count += 1
        return count

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self.thread.join(timeout=5)

    @property
    def most_pods(self) -> int:
        return max(n for n, _ in self.samples)

    @property
    def most_live_pods(self) -> int:
        return max(self.live)

    def fewest_available_after(self, index: int) -> int:
        return min(a for _, a in self.samples[index:])


def _ready(pod: dict) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def deployment_yaml(name: str, replicas: int = 3, image: str = "nginx:1", strategy: str = "RollingUpdate",
                    surge=1, unavailable=1, min_ready: int = 0, extra_spec: str = "", pod_meta: str = "") -> str:
    rolling = f"""
    rollingUpdate:
      maxSurge: {surge}
      maxUnavailable: {unavailable}""" if strategy == "RollingUpdate" else ""
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: {replicas}
  minReadySeconds: {min_ready}
  strategy:
    type: {strategy}{rolling}
  selector:
    matchLabels:
      app: {name}
{extra_spec}  template:
    metadata:
      labels:
        app: {name}
{pod_meta}    spec:
      containers:
      - name: main
        image: {image}
"""
