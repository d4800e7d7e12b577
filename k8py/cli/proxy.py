"""`k8py proxy`: kube-proxy on its own (the agent runs the same code), and `--cleanup`."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("proxy", help="run kube-proxy (iptables mode) for this node")
    p.add_argument("--kubeconfig", type=Path, default=None, help="kubeconfig of the API server")
    p.add_argument("--hostname-override", default=None, help="this node's name (default: the host name)")
    p.add_argument("--cluster-cidr", default="10.42.0.0/16")
    p.add_argument("--proxy-mode", default="iptables", help="iptables, or ipvs (falls back without ip_vs)")
    p.add_argument("--masquerade-all", action="store_true", help="SNAT all traffic to cluster IPs")
    p.add_argument("--nodeport-addresses", default="", help="CIDRs NodePorts answer on (default: every local "
                                                             "address, 127.0.0.1 included)")
    p.add_argument("--min-sync-period", type=float, default=0.05, help="seconds between syncs, at least")
    p.add_argument("--healthz-bind-address", default="127.0.0.1:10256",
                   help="host:port for /healthz, /livez and /metrics (empty: none)")
    p.add_argument("--cleanup", action="store_true", help="remove every kube-proxy chain and rule, then exit")
    p.add_argument("-v", "--v", type=int, default=0, dest="verbosity", help="log verbosity")


def run(args) -> int:
    logging.basicConfig(level=logging.DEBUG if args.verbosity >= 4 else logging.INFO,
                        format="%(asctime)s %(levelname).1s %(name)s: %(message)s")
    if os.geteuid() != 0:
        print("k8py proxy: programming iptables needs root", file=sys.stderr)
        return 2
    from k8py import proxy
    if args.cleanup:
        asyncio.run(proxy.cleanup())
        print("k8py proxy: kube-proxy chains and rules removed", flush=True)
        return 0
    if args.kubeconfig is None:
        print("k8py proxy: --kubeconfig is required", file=sys.stderr)
        return 2
    cfg = proxy.ProxyConfig(node_name=(args.hostname_override or proxy.default_node_name()).lower(),
                            cluster_cidr=args.cluster_cidr, masquerade_all=args.masquerade_all,
                            nodeport_cidrs=[c.strip() for c in args.nodeport_addresses.split(",") if c.strip()])

    async def main():
        from k8py.client import Client
        client = Client.from_kubeconfig(args.kubeconfig, user_agent="k8py-proxy")
        try:
            await proxy.run(client, cfg, mode=args.proxy_mode, min_sync_period=args.min_sync_period,
                            health_address=args.healthz_bind_address or None)
        finally:
            await client.close()
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    return 0
