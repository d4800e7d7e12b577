"""The shared worker loop: failed syncs are retried with back-off, except where retrying cannot help."""

from __future__ import annotations

import asyncio

from k8py.client import ApiError, Client
from k8py.controllers.base import Controller, ControllerContext


class Failing(Controller):
    name = "failing"

    def __init__(self, ctx, error: ApiError):
        super().__init__(ctx)
        self.error = error
        self.calls = 0

    async def sync(self, key: str) -> None:
        self.calls += 1
        raise self.error


def api_error(code: int, reason: str, message: str) -> ApiError:
    return ApiError({"kind": "Status", "status": "Failure", "code": code, "reason": reason, "message": message})


async def test_a_namespace_being_deleted_drops_the_key_while_other_errors_retry():
    ctx = ControllerContext(Client("https://127.0.0.1:1"))  # never called: the syncs fail on their own
    terminating = Failing(ctx, api_error(403, "Forbidden", 'pods "web-x" is forbidden: unable to create new content '
                                         "in namespace gone because it is being terminated"))
    conflict = Failing(ctx, api_error(409, "Conflict", "the object has been modified"))
    for c in (terminating, conflict):
        c.enqueue("gone/web")
    workers = [asyncio.create_task(c._work()) for c in (terminating, conflict)]
    try:
        async with asyncio.timeout(10):
            while conflict.calls < 4:  # the same back-off would have retried the other key by now too
                await asyncio.sleep(0.005)
    finally:
        for c in (terminating, conflict):
            c.queue.shut_down()
        for w in workers:
            w.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    assert terminating.calls == 1 and terminating.queue.num_requeues("gone/web") == 0
    assert 'controller_syncs_total{controller="failing",result="dropped"} 1' in ctx.metrics.render()
