"""The kubelet's service-account token manager (upstream pkg/kubelet/token).

Projected `serviceAccountToken` volumes get tokens from the TokenRequest API,
bound to the pod (boundObjectRef names it, so the token dies with the pod).
A token is reused until it needs a refresh, by upstream's rule: when less
than 20% of its lifetime is left, or when it is older than 24 hours, each
less a random jitter of up to 10 seconds. The pod's volume refresh then
writes the new token in place before the old one expires.
"""

from __future__ import annotations

import datetime
import random

MAX_TTL = datetime.timedelta(hours=24)
MAX_JITTER_SECONDS = 10.0


def needs_refresh(now: datetime.datetime, expires: datetime.datetime, expiration_seconds: int,
                  jitter: float | None = None) -> bool:
    jitter = datetime.timedelta(seconds=random.random() * MAX_JITTER_SECONDS if jitter is None else jitter)
    issued = expires - datetime.timedelta(seconds=expiration_seconds)
    if now > issued + MAX_TTL - jitter:
        return True
    return now > expires - datetime.timedelta(seconds=expiration_seconds * 20 // 100) - jitter


def parse_time(text: str) -> datetime.datetime | None:
    try:
        return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    except (TypeError, ValueError):
        return None


class TokenCache:
    """Tokens by (namespace, account, audiences, expiration, pod uid)."""

    def __init__(self, limit: int = 10000):
        self.limit = limit
        self._tokens: dict[tuple, tuple[str, datetime.datetime, int]] = {}

    def get(self, key: tuple, now: datetime.datetime | None = None) -> str | None:
        entry = self._tokens.get(key)
        if entry is None:
            return None
        token, expires, seconds = entry
        if needs_refresh(now or datetime.datetime.now(datetime.timezone.utc), expires, seconds):
            return None
        return token

    def put(self, key: tuple, token: str, expires: datetime.datetime, expiration_seconds: int) -> None:
        if len(self._tokens) >= self.limit:
            self._tokens.clear()
        self._tokens[key] = (token, expires, expiration_seconds)

    def forget_pod(self, pod_uid: str) -> None:
        for key in [k for k in self._tokens if k[-1] == pod_uid]:
            del self._tokens[key]
