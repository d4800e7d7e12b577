"""The EventCorrelator's decisions (pure: a fake clock, no API server)."""

from __future__ import annotations

from k8py.client.event_correlator import COMBINED_PREFIX, EventCorrelator


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def event(message: str, name: str = "rs", reason: str = "SuccessfulCreate", uid: str = "u1",
          component: str = "replicaset-controller") -> dict:
    return {"metadata": {"name": f"{name}.{abs(hash(message)):x}", "namespace": "default"},
            "involvedObject": {"kind": "ReplicaSet", "namespace": "default", "name": name, "uid": uid,
                               "apiVersion": "apps/v1"},
            "reason": reason, "message": message, "type": "Normal", "count": 1,
            "source": {"component": component}, "firstTimestamp": "t0", "lastTimestamp": "t0"}


def test_identical_events_become_count_patches_of_the_first():
    c = EventCorrelator(clock=Clock())
    first = c.correlate(event("Created pod: a"))
    assert first.patch is None
    again = c.correlate({**event("Created pod: a"), "lastTimestamp": "t1"})
    assert again.patch == {"count": 2, "lastTimestamp": "t1", "message": "Created pod: a"}
    assert again.event["metadata"]["name"] == first.event["metadata"]["name"]


def test_tenth_distinct_message_starts_one_combined_event():
    c = EventCorrelator(clock=Clock())
    writes = [c.correlate(event(f"Created pod: p{i}")) for i in range(12)]
    assert all(w.patch is None and not w.event["message"].startswith(COMBINED_PREFIX) for w in writes[:9])
    assert writes[9].patch is None and writes[9].event["message"] == COMBINED_PREFIX + "Created pod: p9"
    assert writes[10].patch["count"] == 2 and writes[11].patch["count"] == 3
    assert writes[11].patch["message"] == COMBINED_PREFIX + "Created pod: p11"
    assert len({w.event["metadata"]["name"] for w in writes}) == 10


def test_similar_events_are_counted_afresh_after_ten_quiet_minutes():
    clock = Clock()
    c = EventCorrelator(clock=clock)
    for i in range(10):
        c.correlate(event(f"m{i}"))
    clock.now += 601
    fresh = c.correlate(event("m-late"))
    assert fresh.patch is None and fresh.event["message"] == "m-late"


def test_spam_filter_allows_25_writes_per_object_then_one_per_five_minutes():
    clock = Clock()
    c = EventCorrelator(clock=clock)
    results = [c.correlate(event("Back-off", reason="BackOff")) for _ in range(30)]
    assert sum(r is not None for r in results) == 25 and results[25] is None
    other = c.correlate(event("Back-off", reason="BackOff", name="other", uid="u2"))
    assert other is not None  # the budget is per object
    clock.now += 300
    assert c.correlate(event("Back-off", reason="BackOff")) is not None
    assert c.correlate(event("Back-off", reason="BackOff")) is None


def test_distinct_objects_are_never_combined():
    c = EventCorrelator(clock=Clock())
    writes = [c.correlate(event("Successfully assigned", name=f"pod-{i}", uid=f"u{i}", reason="Scheduled",
                                component="default-scheduler")) for i in range(50)]
    assert all(w is not None and w.patch is None for w in writes)
    assert not any(w.event["message"].startswith(COMBINED_PREFIX) for w in writes)


def test_forgotten_write_starts_afresh():
    c = EventCorrelator(clock=Clock())
    first = c.correlate(event("x"))
    c.forget(first)
    assert c.correlate(event("x")).patch is None


def test_forgetting_an_older_write_keeps_the_newer_event_of_that_key():
    c = EventCorrelator(clock=Clock())
    old = c.correlate(event("x"))
    c.forget(old)
    second = event("x")
    second["metadata"]["name"] += "-2"     # a new Event object for the same key
    newer = c.correlate(second)
    c.forget(old)           # a late failure report about the first Event
    assert newer.patch is None and c.correlate(event("x")).patch is not None
