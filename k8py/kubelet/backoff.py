"""Exponential back-off per key, with the kubelet's timing: 10 s doubling to 5 min.

A key with no entry may go at once; each go doubles its delay. A key is held
back while less than its delay has passed since the failure it is retrying
(CrashLoopBackOff, ImagePullBackOff). An entry untouched for twice the maximum
starts over.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass
class _Entry:
    delay: float
    last_update: float


class Backoff:
    def __init__(self, initial: float = 10.0, maximum: float = 300.0, clock=time.monotonic):
        self.initial = initial
        self.maximum = maximum
        self.clock = clock
        self._entries: dict[str, _Entry] = {}
        self._failures: dict[str, float] = {}

    def delay(self, key: str) -> float:
        entry = self._entries.get(key)
        return entry.delay if entry else 0.0

    def in_backoff_since(self, key: str, event_time: float) -> bool:
        """True while `key` must still wait after a failure that happened at `event_time`."""
        entry = self._entries.get(key)
        if entry is None or self._expired(entry, event_time):
            return False
        return self.clock() - event_time < entry.delay

    def remaining(self, key: str, event_time: float) -> float:
        entry = self._entries.get(key)
        if entry is None:
            return 0.0
        return max(0.0, entry.delay - (self.clock() - event_time))

    def next(self, key: str) -> None:
        """Record a go: the first sets the initial delay, later ones double it up to the maximum."""
        now = self.clock()
        entry = self._entries.get(key)
        if entry is None or self._expired(entry, now):
            self._entries[key] = _Entry(self.initial, now)
        else:
            entry.delay = min(entry.delay * 2, self.maximum)
            entry.last_update = now

    def record_failure(self, key: str) -> None:
        """A try failed now (image pulls): the next go waits out the (doubled) delay."""
        self.next(key)
        self._failures[key] = self.clock()

    def last_failure(self, key: str) -> float | None:
        return self._failures.get(key)

    def reset(self, key: str) -> None:
        self._entries.pop(key, None)
        self._failures.pop(key, None)

    def forget_prefix(self, prefix: str) -> None:
        for key in [k for k in self._entries if k.startswith(prefix)]:
            self.reset(key)

    def _expired(self, entry: _Entry, now: float) -> bool:
        return now - entry.last_update > 2 * self.maximum
