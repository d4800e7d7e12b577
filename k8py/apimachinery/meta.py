"""Object metadata helpers shared by every component."""

from __future__ import annotations

import datetime
import secrets
import uuid

# generateName suffixes use the same alphabet as upstream (no vowels, no
# digits that look like letters) so generated names never spell words.
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
GENERATED_SUFFIX_LEN = 5
MAX_GENERATED_PREFIX = 63 - GENERATED_SUFFIX_LEN


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def rfc3339(t: datetime.datetime | None = None) -> str:
    """Seconds-precision UTC timestamp, as metav1.Time serialises."""
    t = t or now()
    return t.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339_micro(t: datetime.datetime | None = None) -> str:
    """Microsecond timestamp, as metav1.MicroTime serialises."""
    t = t or now()
    return t.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: str | None) -> datetime.datetime | None:
    if not value:
        return None
    try:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def new_uid() -> str:
    return str(uuid.uuid4())


def generate_name(prefix: str) -> str:
    prefix = prefix[:MAX_GENERATED_PREFIX]
    return prefix + "".join(secrets.choice(_NAME_ALPHABET) for _ in range(GENERATED_SUFFIX_LEN))


def meta(obj: dict) -> dict:
    """The object's metadata dict, created if missing."""
    m = obj.get("metadata")
    if not isinstance(m, dict):
        m = obj["metadata"] = {}
    return m
