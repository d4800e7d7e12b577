"""What a hollow node's containers "use": set per pod by an annotation, else the
agent's default (`k8py agent --runtime simulated --simulated-usage cpu=250m,memory=64Mi`).

    metadata:
      annotations:
        k8py.io/simulated-usage: '{"cpu": "500m", "memory": "64Mi"}'           # every container
        k8py.io/simulated-usage: '{"app": {"cpu": "1"}, "sidecar": {"cpu": "10m"}}'  # by container

Changing the annotation changes the usage from then on, so a test can raise
and lower a workload's CPU and watch metrics-server and the HPA follow.
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache

from k8py.apimachinery import quantity
from k8py.kubelet.runtime.interface import LABEL_CONTAINER_NAME, LABEL_POD_NAME, LABEL_POD_NAMESPACE

log = logging.getLogger("k8py.kubelet.synthetic_usage")

ANNOTATION = "k8py.io/simulated-usage"


def parse_usage(spec: dict | str) -> tuple[int, int]:
    """{"cpu": "250m", "memory": "64Mi"} or "cpu=250m,memory=64Mi" -> (nanocores, bytes)."""
    if isinstance(spec, str):
        spec = dict(part.split("=", 1) for part in spec.split(",") if "=" in part)
    cpu = quantity.parse(str(spec.get("cpu", "0"))).value
    memory = quantity.parse(str(spec.get("memory", "0"))).value
    return int(cpu * 1_000_000_000), int(memory)


@lru_cache(maxsize=1024)
def _from_annotation(text: str) -> dict:
    """container name (or "" for all) -> (nanocores, bytes); {} when the annotation is unusable."""
    try:
        spec = json.loads(text)
        if not isinstance(spec, dict):
            raise ValueError("not an object")
        found = {name: parse_usage(value) for name, value in spec.items() if isinstance(value, dict)}
        if "cpu" in spec or "memory" in spec:
            found[""] = parse_usage({k: spec[k] for k in ("cpu", "memory") if k in spec})
        return found
    except (ValueError, TypeError, quantity.QuantityError) as e:
        log.warning("ignoring %s %r: %s", ANNOTATION, text, e)
        return {}


class SyntheticUsage:
    """The SimulatedRuntime's usage model: `pod_of(namespace, name)` gives the pod as the kubelet sees it."""

    def __init__(self, pod_of, default: tuple[int, int] = (0, 0)):
        self.pod_of, self.default = pod_of, default

    def __call__(self, status) -> tuple[int, int]:
        labels = status.labels or {}
        pod = self.pod_of(labels.get(LABEL_POD_NAMESPACE, ""), labels.get(LABEL_POD_NAME, "")) or {}
        text = ((pod.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION)
        if text:
            by_container = _from_annotation(text)
            found = by_container.get(labels.get(LABEL_CONTAINER_NAME, status.name), by_container.get(""))
            if found is not None:
                return found
        return self.default
