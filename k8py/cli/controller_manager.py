"""`k8py controller-manager`: the controllers as their own process, against any API server."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("controller-manager", help="run the controllers (deployments, replica sets, GC, ...)")
    p.add_argument("--kubeconfig", type=Path, required=True, help="how to reach the API server")
    p.add_argument("--controllers", action="append", default=None,
                   help="'*' for all on by default, 'name' to add one, '-name' to leave one out "
                        "(comma-separated or repeated)")
    p.add_argument("--leader-elect", action=argparse_bool(), default=False,
                   help="work only while holding the Lease kube-system/kube-controller-manager")
    p.add_argument("--bind-address", default="127.0.0.1", help="where /healthz and /metrics listen")
    p.add_argument("--secure-port", "--port", type=int, default=10257, dest="port",
                   help="port for /healthz and /metrics (0: any free port)")
    p.add_argument("--root-ca-file", default=None,
                   help="CA published as kube-root-ca.crt in every namespace (default: the kubeconfig's CA)")
    p.add_argument("--terminated-pod-gc-threshold", type=int, default=12500,
                   help="finished pods kept before the pod GC deletes the oldest")
    p.add_argument("--pod-gc-period", type=float, default=20.0,
                   help="seconds between pod GC passes (k8py knob; upstream fixes it at 20 s)")
    p.add_argument("--allocate-node-cidrs", action=argparse_bool(), default=False,
                   help="give every Node a podCIDR from --cluster-cidr (the nodeipam controller)")
    p.add_argument("--cluster-cidr", default=None, help="the pod range nodes' podCIDRs are cut from")
    p.add_argument("--node-cidr-mask-size", type=int, default=24, help="prefix length of each node's podCIDR")
    p.add_argument("--cluster-signing-cert-file", default=None,
                   help="CA certificate (PEM) the csrsigning controller issues kubernetes.io/* certificates with")
    p.add_argument("--cluster-signing-key-file", default=None, help="the key of --cluster-signing-cert-file")
    p.add_argument("--cluster-signing-duration", default="8760h",
                   help="longest validity of a signed certificate (Go duration, e.g. 8760h)")
    p.add_argument("--use-service-account-credentials", action="store_true",
                   help="run each controller as its own ServiceAccount in kube-system (upstream's flag)")
    p.add_argument("-v", "--v", type=int, default=0, dest="verbosity", help="log verbosity")
    from k8py.cli.controller_flags import add_controller_flags
    add_controller_flags(p)


def argparse_bool():
    import argparse
    return argparse.BooleanOptionalAction


def run(args) -> int:
    logging.basicConfig(level=logging.DEBUG if args.verbosity >= 4 else logging.INFO,
                        format="%(asctime)s %(levelname).1s %(name)s: %(message)s")
    from k8py.controllers.manager import select_controllers
    try:
        names = select_controllers(args.controllers)
    except ValueError as e:
        print(f"k8py controller-manager: {e}", file=sys.stderr)
        return 2
    try:
        import uvloop
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    try:
        asyncio.run(_serve(args, names))
    except KeyboardInterrupt:
        pass
    return 0


async def _serve(args, names: list[str]) -> None:
    from k8py.client import Client
    from k8py.controllers.manager import ControllerManager

    client = Client.from_kubeconfig(args.kubeconfig, user_agent="k8py-controller-manager")
    manager = ControllerManager(client, names, leader_elect=args.leader_elect, host=args.bind_address,
                                port=args.port, options=_options(args),
                                use_service_account_credentials=args.use_service_account_credentials)
    work = asyncio.create_task(manager.run())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    waiter = asyncio.create_task(stop.wait())
    await asyncio.wait({work, waiter}, return_when=asyncio.FIRST_COMPLETED)
    work.cancel()
    await asyncio.gather(work, return_exceptions=True)
    await client.close()


def _options(args) -> dict:
    """What controllers need besides the API: pod GC settings, the CA to publish."""
    from k8py.cli.controller_flags import controller_options
    return {**controller_options(args),
            "terminated_pod_gc_threshold": args.terminated_pod_gc_threshold, "podgc_period": args.pod_gc_period,
            "allocate_node_cidrs": args.allocate_node_cidrs and bool(args.cluster_cidr),
            "cluster_cidr": args.cluster_cidr, "node_cidr_mask_size": args.node_cidr_mask_size,
            "cluster_signing_cert_file": args.cluster_signing_cert_file,
            "cluster_signing_key_file": args.cluster_signing_key_file,
            "cluster_signing_duration": _seconds(args.cluster_signing_duration), **_root_ca(args)}


def _seconds(duration: str) -> float:
    """A Go duration such as 8760h, 30m or 1h30m in seconds."""
    import argparse

    from k8py.cli.controller_flags import go_duration
    try:
        return go_duration(duration)
    except argparse.ArgumentTypeError:
        raise SystemExit(f"k8py controller-manager: invalid duration {duration!r}") from None


def _root_ca(args) -> dict:
    import base64

    import yaml
    if args.root_ca_file:
        return {"root_ca_file": args.root_ca_file}
    config = yaml.safe_load(Path(args.kubeconfig).read_text()) or {}
    current = next((c["context"] for c in config.get("contexts") or [] if c["name"] == config.get("current-context")),
                   {})
    cluster = next((c["cluster"] for c in config.get("clusters") or [] if c["name"] == current.get("cluster")), {})
    if cluster.get("certificate-authority-data"):
        return {"root_ca_data": base64.b64decode(cluster["certificate-authority-data"]).decode()}
    if cluster.get("certificate-authority"):
        return {"root_ca_file": cluster["certificate-authority"]}
    return {}
