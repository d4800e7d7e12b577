"""Expectations: what a controller is waiting to see in its informers.

A controller that creates 10 pods must not create 10 more on its next sync
just because the informer has not delivered the first 10 yet. Before each
batch of writes it records "expect N adds / these M deletes" for its key;
informer handlers tick them off as the events arrive; `satisfied(key)` says
whether the cache can be trusted again. A record older than five minutes is
treated as satisfied, so a lost event (or a write that failed silently) can
only delay a controller, never wedge it. This is client-go's
ControllerExpectations with UID tracking for deletions built in.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

EXPECTATIONS_TTL = 300.0  # seconds, as upstream's ExpectationsTimeout


@dataclass
class _Record:
    adds: int = 0
    deletes: set[str] = field(default_factory=set)  # uids still to be seen going away
    anonymous_deletes: int = 0
    stamp: float = field(default_factory=time.monotonic)

    def fulfilled(self) -> bool:
        return self.adds <= 0 and not self.deletes and self.anonymous_deletes <= 0


class ControllerExpectations:
    def __init__(self, ttl: float = EXPECTATIONS_TTL, clock=time.monotonic):
        self.ttl = ttl
        self.clock = clock
        self._records: dict[str, _Record] = {}
        self._lock = threading.Lock()  # handlers and workers share one loop; the lock is cheap insurance

    def satisfied(self, key: str) -> bool:
        """True when the controller may trust its cache for `key` and act again."""
        with self._lock:
            record = self._records.get(key)
            if record is None:
                return True
            return record.fulfilled() or self.clock() - record.stamp > self.ttl

    def expect_creations(self, key: str, count: int) -> None:
        with self._lock:
            self._records[key] = _Record(adds=count, stamp=self.clock())

    def expect_deletions(self, key: str, uids: list[str] | int) -> None:
        """Expect these pods (by uid, or just a count) to disappear."""
        with self._lock:
            if isinstance(uids, int):
                self._records[key] = _Record(anonymous_deletes=uids, stamp=self.clock())
            else:
                self._records[key] = _Record(deletes=set(uids), stamp=self.clock())

    def creation_observed(self, key: str) -> None:
        with self._lock:
            record = self._records.get(key)
            if record is not None:
                record.adds -= 1

    def creation_failed(self, key: str) -> None:
        """A create we counted on did not happen: stop waiting for it."""
        self.creation_observed(key)

    def deletion_observed(self, key: str, uid: str | None = None) -> None:
        with self._lock:
            record = self._records.get(key)
            if record is None:
                return
            if uid is not None and uid in record.deletes:
                record.deletes.discard(uid)
            elif uid is None and record.anonymous_deletes > 0:
                record.anonymous_deletes -= 1

    def forget(self, key: str) -> None:
        """The controller object itself is gone."""
        with self._lock:
            self._records.pop(key, None)

    def pending(self, key: str) -> tuple[int, int]:
        """(adds, deletes) still expected; for logs and tests."""
        with self._lock:
            record = self._records.get(key)
            if record is None:
                return 0, 0
            return max(record.adds, 0), len(record.deletes) + max(record.anonymous_deletes, 0)
