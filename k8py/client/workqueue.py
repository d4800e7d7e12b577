"""A rate-limited work queue with client-go's semantics.

A key is queued at most once however often it is added; a key being processed
is not handed to a second worker, and if it was added meanwhile it comes back
once `done` is called. That makes reconcile loops level-triggered and safe to
run with several workers.
"""

from __future__ import annotations

import asyncio
from collections import deque


class ShutDown(Exception):
    pass


class WorkQueue:
    def __init__(self, name: str = "", base_delay: float = 0.005, max_delay: float = 1000.0):
        self.name = name
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._queue: deque = deque()
        self._dirty: set = set()
        self._processing: set = set()
        self._failures: dict = {}
        self._timers: dict = {}
        self._ready = asyncio.Event()
        self._shutting_down = False

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, key) -> None:
        if self._shutting_down or key in self._dirty:
            return
        self._dirty.add(key)
        if key in self._processing:
            return
        self._queue.append(key)
        self._ready.set()

    def add_after(self, key, seconds: float) -> None:
        if self._shutting_down:
            return
        if seconds <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        when = loop.time() + seconds
        timer = self._timers.get(key)
        if timer is not None:
            if timer.when() <= when:
                return  # an earlier add is already due
            timer.cancel()
        self._timers[key] = loop.call_at(when, self._fire, key)

    def _fire(self, key) -> None:
        self._timers.pop(key, None)
        self.add(key)

    def add_rate_limited(self, key) -> None:
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        self.add_after(key, min(self.base_delay * (2 ** failures), self.max_delay))

    def forget(self, key) -> None:
        self._failures.pop(key, None)

    def num_requeues(self, key) -> int:
        return self._failures.get(key, 0)

    async def get(self):
        """The next key to process; raises ShutDown once the queue is shut down."""
        while not self._queue:
            if self._shutting_down:
                raise ShutDown(self.name)
            self._ready.clear()
            await self._ready.wait()
        key = self._queue.popleft()
        self._processing.add(key)
        self._dirty.discard(key)
        return key

    def done(self, key) -> None:
        self._processing.discard(key)
        if key in self._dirty:
            self._queue.append(key)
            self._ready.set()

    def shut_down(self) -> None:
        self._shutting_down = True
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._ready.set()
