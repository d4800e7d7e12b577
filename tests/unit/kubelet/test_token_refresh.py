"""The kubelet's token refresh rule: 80% of the lifetime, or 24 hours, less a jitter."""

import datetime

from k8py.kubelet.tokens import TokenCache, needs_refresh

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)


def at(seconds):
    return T0 + datetime.timedelta(seconds=seconds)


def test_refresh_at_eighty_percent_of_an_hour():
    expires = at(3600)
    assert not needs_refresh(at(2870), expires, 3600, jitter=0)
    assert needs_refresh(at(2881), expires, 3600, jitter=0)
    # The jitter brings the refresh forward by up to 10 seconds, never later.
    assert needs_refresh(at(2871), expires, 3600, jitter=10)


def test_refresh_long_lived_tokens_after_a_day():
    week = 7 * 24 * 3600
    expires = at(week)
    assert not needs_refresh(at(23 * 3600), expires, week, jitter=0)
    assert needs_refresh(at(24 * 3600 + 1), expires, week, jitter=0)


def test_cache_forgets_stale_tokens_and_deleted_pods():
    cache = TokenCache()
    now = datetime.datetime.now(datetime.timezone.utc)
    fresh_key, old_key = ("ns", "sa", (), 3600, "uid-1"), ("ns", "sa", (), 3600, "uid-2")
    cache.put(fresh_key, "fresh", now + datetime.timedelta(seconds=3600), 3600)
    cache.put(old_key, "old", now + datetime.timedelta(seconds=60), 3600)   # 98% of its life gone
    assert cache.get(fresh_key) == "fresh"
    assert cache.get(old_key) is None
    cache.forget_pod("uid-1")
    assert cache.get(fresh_key) is None
