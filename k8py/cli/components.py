"""The components `k8py server` runs beside the API server.

Each one is an asyncio task with its own k8py.client over HTTPS to this
server, exactly as if it ran in another process: components never reach into
the API server's internals. Each authenticates with a client certificate of
its own (COMPONENT_USERS), so RBAC gives it only what its role grants: the
scheduler is system:kube-scheduler, the controller-manager
system:kube-controller-manager, kube-proxy system:kube-proxy, the cluster DNS
the user bound to its CoreDNS-like role. The agent's kubelet is
system:node:<name> (cli/agent.py); the agent component's own client, the
admin certificate, only marks that Node as the control plane.

To add one, append `(name, "module:function")` to COMPONENTS; the function is
`async def run_in_server(args, client) -> None` (args are the server's parsed
flags) and runs until cancelled. `--disable <name>` leaves it out.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from pathlib import Path

from k8py.apiserver.authz.policy import dns_user
from k8py.apiserver.pki import ensure_client_cert, pki_paths
from k8py.client import Client

log = logging.getLogger("k8py.server")

COMPONENTS: list[tuple[str, str]] = [
    ("controller-manager", "k8py.controllers.manager:run_in_server"),
    ("agent", "k8py.cli.agent:run_in_server"),
    ("dns", "k8py.dns:run_in_server"),
    ("proxy", "k8py.proxy:run_in_server"),
    ("scheduler", "k8py.cli.scheduler:run_in_server"),
    ("local-storage", "k8py.provisioners.local_path:run_in_server"),
    ("shared-folder", "k8py.provisioners.shared_folder:run_in_server"),
    ("metrics-server", "k8py.metricsserver:run_in_server"),
]

# component -> the user its client certificate names (no groups: RBAC binds these users by name)
COMPONENT_USERS: dict[str, str] = {
    "controller-manager": "system:kube-controller-manager",
    "scheduler": "system:kube-scheduler",
    "proxy": "system:kube-proxy",
    "dns": dns_user(),
    # bound to system:k8py:volume-provisioner in bootstrap-policy.yaml
    "local-storage": "system:k8py:local-path-provisioner",
    "shared-folder": "system:k8py:shared-folder-provisioner",
    "metrics-server": "system:metrics-server",       # bound to system:metrics-server in bootstrap-policy.yaml
}


def component_client(data_dir: Path, url: str, name: str) -> Client:
    user = COMPONENT_USERS.get(name)
    if user is None:
        return Client.for_local_server(data_dir, url, user_agent=f"k8py-{name}")
    pki = pki_paths(Path(data_dir) / "server" / "tls")
    cert, key = ensure_client_cert(pki, f"client-{name}", user)
    return Client(url, ca_file=str(pki.ca_cert), cert_file=str(cert), key_file=str(key), user_agent=f"k8py-{name}")


def _load(target: str):
    module, _, function = target.partition(":")
    return getattr(importlib.import_module(module), function)


async def start_components(args, data_dir: Path, url: str) -> list[asyncio.Task]:
    disabled = set(args.disable or [])
    tasks = []
    for name, target in COMPONENTS:
        if name in disabled:
            continue
        client = component_client(data_dir, url, name)
        tasks.append(asyncio.create_task(_run(name, _load(target), args, client), name=name))
    return tasks


async def _run(name: str, run_in_server, args, client: Client) -> None:
    try:
        await run_in_server(args, client)
    except asyncio.CancelledError:
        raise
    except Exception:
        log.exception("component %s stopped with an error", name)
    finally:
        await client.close()


async def stop_components(tasks: list[asyncio.Task]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
