"""Flags of the controllers that take options (node lifecycle, horizontal pod autoscaler) and of
the DefaultTolerationSeconds admission: kube-controller-manager's and kube-apiserver's names and
v1.32 defaults, with Go durations (`50s`, `1m0s`).

`k8py server` takes both sets; `k8py controller-manager` the controller ones.
"""

from __future__ import annotations

import argparse
import re

_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}


def go_duration(text: str) -> float:
    """A Go duration (50s, 1m0s, 1h30m, 500ms) in seconds, as an argparse type."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", text)
    if text == "0":
        return 0.0
    if not parts or "".join(n + u for n, u in parts) != text:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r} (e.g. 50s, 1m0s)")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def add_controller_flags(p) -> None:
    p.add_argument("--node-monitor-period", type=go_duration, default=5.0,
                   help="how often the node lifecycle controller checks nodes' health (default 5s)")
    p.add_argument("--node-monitor-grace-period", type=go_duration, default=50.0,
                   help="how long a node's kubelet may stay silent before its conditions turn Unknown (default 50s)")
    p.add_argument("--node-startup-grace-period", type=go_duration, default=60.0,
                   help="the same for a node whose kubelet never posted its status (default 1m0s)")
    p.add_argument("--node-eviction-rate", type=float, default=0.1,
                   help="nodes per second tainted NoExecute in a healthy zone (default 0.1)")
    p.add_argument("--secondary-node-eviction-rate", type=float, default=0.01,
                   help="nodes per second tainted NoExecute in an unhealthy zone of a large cluster (default 0.01)")
    p.add_argument("--unhealthy-zone-threshold", type=float, default=0.55,
                   help="share of not-Ready nodes (at least 3) that makes a zone unhealthy (default 0.55)")
    p.add_argument("--large-cluster-size-threshold", type=int, default=50,
                   help="zones up to this many nodes are not tainted at all while unhealthy (default 50)")
    from k8py.controllers.podautoscaler.controller import add_hpa_flags
    add_hpa_flags(p, go_duration)


def controller_options(args) -> dict:
    from k8py.controllers.nodelifecycle.controller import node_lifecycle_options
    from k8py.controllers.podautoscaler.controller import hpa_options
    return {**node_lifecycle_options(args), **hpa_options(args)}


def _seconds(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None


def add_admission_flags(p) -> None:
    p.add_argument("--default-not-ready-toleration-seconds", type=_seconds, default=300,
                   help="tolerationSeconds of the not-ready:NoExecute toleration every pod gets (default 300)")
    p.add_argument("--default-unreachable-toleration-seconds", type=_seconds, default=300,
                   help="tolerationSeconds of the unreachable:NoExecute toleration every pod gets (default 300)")


def admission_config(args) -> dict:
    """ServerConfig fields from the flags."""
    return {"default_not_ready_toleration_seconds": args.default_not_ready_toleration_seconds,
            "default_unreachable_toleration_seconds": args.default_unreachable_toleration_seconds}
