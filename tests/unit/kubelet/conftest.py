"""Kubelet unit fixtures: the in-process API server and a k8py.client against it."""

from __future__ import annotations

import asyncio

import pytest

from k8py.client import Client
from tests.unit.conftest import TOKEN  # the `client` fixture comes from tests/unit/conftest.py


@pytest.fixture
async def api(client):
    c = Client(str(client.make_url("")), token=TOKEN)
    yield c
    await c.close()


async def eventually(condition, timeout: float = 5.0, what: str = "condition"):
    """Await until `condition()` (sync or async) is truthy; fail on timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last = None
    while loop.time() < deadline:
        last = condition()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")
