"""What client-go's EventCorrelator decides before an Event is written.

Three steps, in this order, for every event a recorder is asked to record:

1. Aggregation. Events from one source about one object with the same type
   and reason but different messages are "similar". Once ten distinct
   messages were seen within ten minutes, further ones are folded into one
   Event whose message is "(combined from similar events): <latest>", so a
   ReplicaSet creating 1,000 pods does not leave 1,000 Events behind.
2. Deduplication. An event identical to one already written (same source,
   object, field path, type, reason, message) becomes a PATCH of that
   Event's count, lastTimestamp and message instead of a new Event.
3. Spam filter. Each (source, object) pair has a token bucket of 25 writes
   refilled at one per five minutes; an event arriving with the bucket empty
   is not written at all. This is what bounds the write cost of busy
   objects, as upstream.

The correlator is pure bookkeeping (no I/O): `correlate` returns what to
write, and the recorder does the writing.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field

SIMILAR_MAX = 10              # distinct messages before similar events are combined
SIMILAR_WINDOW_SECONDS = 600  # ... when seen within this long of each other
SPAM_BURST = 25               # writes per (source, object) ...
SPAM_REFILL_PER_SECOND = 1 / 300  # ... then one per five minutes
CACHE_SIZE = 4096             # entries per cache (least recently used go first)
COMBINED_PREFIX = "(combined from similar events): "


class _LRU(OrderedDict):
    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def lookup(self, key):
        value = self.get(key)
        if value is not None:
            self.move_to_end(key)
        return value

    def store(self, key, value) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > self.size:
            self.popitem(last=False)


@dataclass
class _Similar:
    messages: set = field(default_factory=set)
    last_seen: float = 0.0


@dataclass
class _Bucket:
    tokens: float
    refilled_at: float


@dataclass
class Written:
    """What the recorder should do: create `event`, or patch the existing Event named in it."""
    event: dict
    patch: dict | None = None   # None: create
    key: tuple = ()             # the correlator's key for it (what forget() drops)


class EventCorrelator:
    def __init__(self, clock=time.monotonic, burst: int = SPAM_BURST,
                 refill_per_second: float = SPAM_REFILL_PER_SECOND, similar_max: int = SIMILAR_MAX,
                 similar_window: float = SIMILAR_WINDOW_SECONDS, cache_size: int = CACHE_SIZE):
        self.clock = clock
        self.burst = burst
        self.refill_per_second = refill_per_second
        self.similar_max = similar_max
        self.similar_window = similar_window
        self._similar = _LRU(cache_size)   # aggregate key -> _Similar
        self._written = _LRU(cache_size)   # event key -> the Event last written for it
        self._buckets = _LRU(cache_size)   # spam key -> _Bucket

    def correlate(self, event: dict) -> Written | None:
        """`event` is a complete new core/v1 Event (name, count 1, timestamps); None means skip it."""
        event, key = self._aggregate(event)
        previous = self._written.lookup(key)
        if not self._take_token(_spam_key(event)):
            return None
        if previous is None:
            self._written.store(key, event)
            return Written(event, key=key)
        observed = {**previous, "count": previous.get("count", 1) + 1,
                    "lastTimestamp": event["lastTimestamp"], "message": event["message"]}
        self._written.store(key, observed)
        return Written(observed, {"count": observed["count"], "lastTimestamp": observed["lastTimestamp"],
                                  "message": observed["message"]}, key)

    def forget(self, write: Written) -> None:
        """`write` failed for good (or was dropped): the next identical event starts afresh.
        By key, not by a search: a busy recorder drops events in bursts."""
        current = self._written.get(write.key)
        if current is not None and current["metadata"]["name"] == write.event["metadata"]["name"]:
            del self._written[write.key]

    def _aggregate(self, event: dict) -> tuple[dict, tuple]:
        now = self.clock()
        similar_key = _similar_key(event)
        record = self._similar.lookup(similar_key)
        if record is None or now - record.last_seen > self.similar_window:
            record = _Similar()
        record.messages.add(event.get("message", ""))
        record.last_seen = now
        self._similar.store(similar_key, record)
        if len(record.messages) < self.similar_max:
            return event, _event_key(event)
        record.messages.pop()  # the set stays at its bound; only its size matters from here on
        combined = {**event, "message": COMBINED_PREFIX + event.get("message", "")}
        return combined, similar_key

    def _take_token(self, key: tuple) -> bool:
        now = self.clock()
        bucket = self._buckets.lookup(key)
        if bucket is None:
            bucket = _Bucket(tokens=float(self.burst), refilled_at=now)
        else:
            bucket.tokens = min(float(self.burst),
                                bucket.tokens + (now - bucket.refilled_at) * self.refill_per_second)
            bucket.refilled_at = now
        self._buckets.store(key, bucket)
        if bucket.tokens < 1:
            return False
        bucket.tokens -= 1
        return True


def _object(event: dict) -> tuple:
    ref = event.get("involvedObject") or {}
    return (ref.get("kind"), ref.get("namespace"), ref.get("name"), ref.get("uid"), ref.get("apiVersion"))


def _source(event: dict) -> tuple:
    source = event.get("source") or {}
    return (source.get("component"), source.get("host"))


def _spam_key(event: dict) -> tuple:
    return ("spam", *_source(event), *_object(event))


def _similar_key(event: dict) -> tuple:
    return ("similar", *_source(event), *_object(event), event.get("type"), event.get("reason"))


def _event_key(event: dict) -> tuple:
    field_path = (event.get("involvedObject") or {}).get("fieldPath")
    return ("event", *_source(event), *_object(event), field_path, event.get("type"), event.get("reason"),
            event.get("message"))
