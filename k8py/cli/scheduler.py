"""`k8py scheduler`: the scheduler as its own process, against any API server.

Inside `k8py server` the same scheduler runs as a component (run_in_server)
unless `--disable scheduler`. At -v 4 and above it logs, for every pod, which
filter rejected each node and every plugin's score.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import uuid
from pathlib import Path

LEASE_NAME = "kube-scheduler"
LEASE_NAMESPACE = "kube-system"


def add_parser(sub) -> None:
    p = sub.add_parser("scheduler", help="run the scheduler against an API server")
    p.add_argument("--kubeconfig", type=Path, required=True, help="kubeconfig for the API server")
    p.add_argument("--percentage-of-nodes-to-score", type=int, default=0,
                   help="share of feasible nodes to find before scoring (0 = adaptive, as upstream)")
    p.add_argument("--leader-elect", action=argparse.BooleanOptionalAction, default=True,
                   help="schedule only while holding the Lease kube-system/kube-scheduler (as upstream)")
    p.add_argument("-v", "--v", type=int, default=0, dest="verbosity", help="log verbosity (4+: decision log)")


def run(args) -> int:
    logging.basicConfig(level=logging.DEBUG if args.verbosity >= 4 else logging.INFO,
                        format="%(asctime)s %(levelname).1s %(name)s: %(message)s")
    if args.verbosity < 4:
        logging.getLogger("k8py.scheduler").setLevel(logging.WARNING if args.verbosity < 2 else logging.INFO)
    try:
        import uvloop
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    except ImportError:
        pass
    try:
        asyncio.run(_main(args))
    except KeyboardInterrupt:
        pass
    return 0


async def _main(args) -> None:
    from k8py.client import Client
    from k8py.scheduler.plugins import DEFAULT_SCHEDULER, default_profile
    from k8py.scheduler.scheduler import Scheduler

    client = Client.from_kubeconfig(args.kubeconfig, user_agent="k8py-scheduler")
    profile = default_profile(percentage_of_nodes_to_score=args.percentage_of_nodes_to_score or None)
    try:
        def schedule():
            return Scheduler(client, {DEFAULT_SCHEDULER: profile}).run()

        await (run_as_leader(client, schedule) if args.leader_elect else schedule())
    finally:
        await client.close()


async def run_in_server(args, client) -> None:
    from k8py.scheduler.scheduler import Scheduler
    if getattr(args, "verbosity", 0) < 2:
        # Per-pod lines are upstream's V(2); the server logs at INFO by default.
        logging.getLogger("k8py.scheduler").setLevel(logging.WARNING)
    # Like the server's controller-manager, one identity across restarts of this server:
    # a restarted `k8py server` takes its own lease back at once instead of waiting it out.
    await run_as_leader(client, lambda: Scheduler(client).run(), identity=server_identity(args.https_listen_port))


def server_identity(port) -> str:
    return f"{socket.gethostname()}_k8py-server-{port}"


async def run_as_leader(client, work, identity: str | None = None) -> None:
    """Schedule only while holding the scheduler's Lease, so two schedulers never race
    (and `kubectl get cs` sees a live scheduler); campaign again after losing it, with a
    fresh scheduler from `work()` so no state of the lost term carries over. A standalone
    scheduler gets a new identity per start, as upstream's does."""
    from k8py.client import LeaderElector
    identity = identity or f"{socket.gethostname()}_{uuid.uuid4()}"
    while True:
        await LeaderElector(client, LEASE_NAME, LEASE_NAMESPACE, identity).run(work)
