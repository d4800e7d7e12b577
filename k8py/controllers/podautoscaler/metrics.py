"""Pod resource usage from metrics.k8s.io/v1beta1 PodMetrics, through the API server
(the aggregator forwards to metrics-server), as upstream's REST metrics client."""

from __future__ import annotations

import re

from k8py.apimachinery import quantity
from k8py.apimachinery.meta import parse_time
from k8py.client import ApiError, Client
from k8py.controllers.podautoscaler.replicas import MetricError, PodSample

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|h|m|s)")
_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def _seconds(duration: str | None) -> float:
    return sum(float(n) * _UNITS[u] for n, u in _DURATION_PART.findall(duration or ""))


def pod_samples(pod_metrics: list[dict], resource: str, container: str | None = None) -> dict[str, PodSample]:
    """Each pod's usage summed over its containers; a pod with a container lacking the resource
    (or with no containers) has no sample."""
    out = {}
    for item in pod_metrics:
        containers = item.get("containers") or []
        if container:
            containers = [c for c in containers if c.get("name") == container]
        if not containers:
            continue
        total = 0
        for c in containers:
            usage = (c.get("usage") or {}).get(resource)
            if usage is None:
                break
            total += quantity.scaled_value(quantity.parse(usage), -3)
        else:
            out[item["metadata"]["name"]] = PodSample(total, parse_time(item.get("timestamp")),
                                                      _seconds(item.get("window")))
    return out


async def resource_samples(client: Client, namespace: str, selector: str, resource: str,
                           container: str | None = None) -> dict[str, PodSample]:
    try:
        listed = await client.request("GET", f"/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods",
                                      params={"labelSelector": selector or None})
    except ApiError as e:
        raise MetricError(f"unable to get metrics for resource {resource}: "
                          f"unable to fetch metrics from resource metrics API: {e.status.get('message') or e}") from e
    items = listed.get("items") or []
    if not items:
        raise MetricError(f"unable to get metrics for resource {resource}: "
                          "no metrics returned from resource metrics API")
    return pod_samples(items, resource, container)
