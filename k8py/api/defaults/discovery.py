"""discovery.k8s.io/v1 defaults (pkg/apis/discovery/v1/defaults.go)."""

from __future__ import annotations

from k8py.api.defaults.core import _dicts


def default_endpoint_slice(obj: dict) -> None:
    for port in _dicts(obj.get("ports")):
        if port.get("name") is None:
            port["name"] = ""
        if port.get("protocol") is None:
            port["protocol"] = "TCP"


DEFAULTERS = {"EndpointSlice": default_endpoint_slice}
