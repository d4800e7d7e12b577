"""The volume controllers running against the in-process API server (tests/unit/conftest.py)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from k8py.client import Client
from k8py.controllers.base import ControllerContext
from k8py.controllers.volume.binder import PersistentVolumeBinder
from k8py.controllers.volume.protection import PVCProtectionController, PVProtectionController
from tests.unit.conftest import TOKEN


@contextlib.asynccontextmanager
async def volume_controllers(client, controllers=(PersistentVolumeBinder, PVCProtectionController,
                                                  PVProtectionController)):
    api = Client(str(client.make_url("")), token=TOKEN)
    ctx = ControllerContext(api)
    running = [cls(ctx) for cls in controllers]
    tasks = [asyncio.create_task(c.run()) for c in running]
    try:
        yield api, running
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await ctx.stop()
        await api.close()


def protection_controllers(client):
    """Only the controllers that remove the protection finalizers: the binder would race the
    API-operations tests' own status writes."""
    return volume_controllers(client, controllers=(PVCProtectionController, PVProtectionController))


async def eventually(fetch, condition, timeout=10.0, what="condition"):
    got = None
    for _ in range(int(timeout / 0.02)):
        got = await fetch()
        if condition(got):
            return got
        await asyncio.sleep(0.02)
    pytest.fail(f"{what} never held (last: {got!r})")
