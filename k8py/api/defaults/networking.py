"""networking.k8s.io/v1 defaults (pkg/apis/networking/v1/defaults.go)."""

from __future__ import annotations

from k8py.api.defaults.core import _dicts, _ensure


def default_network_policy(obj: dict) -> None:
    spec = _ensure(obj, "spec")
    if spec is None:
        return
    for direction in ("ingress", "egress"):
        for rule in _dicts(spec.get(direction)):
            for port in _dicts(rule.get("ports")):
                if port.get("protocol") is None:
                    port["protocol"] = "TCP"
    if not spec.get("policyTypes"):
        spec["policyTypes"] = ["Ingress"] + (["Egress"] if spec.get("egress") else [])
    spec.setdefault("podSelector", {})


def default_ingress_class(obj: dict) -> None:
    params = (obj.get("spec") or {}).get("parameters") if isinstance(obj.get("spec"), dict) else None
    if isinstance(params, dict) and params.get("scope") is None:
        params["scope"] = "Cluster"


def default_ingress(obj: dict) -> None:
    # IngressLoadBalancerStatus is a struct: Go always writes it
    status = _ensure(obj, "status")
    if status is not None and status.get("loadBalancer") is None:
        status["loadBalancer"] = {}


DEFAULTERS = {"NetworkPolicy": default_network_policy, "IngressClass": default_ingress_class,
              "Ingress": default_ingress}
