"""The components `k8py server` runs beside the API server.

Each one is an asyncio task with its own k8py.client (the admin client
certificate over HTTPS to this server), exactly as if it ran in another
process: components never reach into the API server's internals.

To add one, append `(name, "module:function")` to COMPONENTS; the function is
`async def run_in_server(args, client) -> None` (args are the server's parsed
flags) and runs until cancelled. `--disable <name>` leaves it out.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from pathlib import Path

from k8py.client import Client

log = logging.getLogger("k8py.server")

COMPONENTS: list[tuple[str, str]] = [
    ("controller-manager", "k8py.controllers.manager:run_in_server"),
    ("agent", "k8py.cli.agent:run_in_server"),
    ("dns", "k8py.dns:run_in_server"),
    ("proxy", "k8py.proxy:run_in_server"),
    ("scheduler", "k8py.cli.scheduler:run_in_server"),
]


def _load(target: str):
    module, _, function = target.partition(":")
    return getattr(importlib.import_module(module), function)


async def start_components(args, data_dir: Path, url: str) -> list[asyncio.Task]:
    disabled = set(args.disable or [])
    tasks = []
    for name, target in COMPONENTS:
        if name in disabled:
            continue
        client = Client.for_local_server(data_dir, url, user_agent=f"k8py-{name}")
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
