"""Human-readable durations, as `kubectl get` shows AGE and friends.

The rounding rules are upstream's (k8s.io/apimachinery/pkg/util/duration
HumanDuration): more precision for young things, less for old ones, so a
column stays narrow: 45s, 3m20s, 15m, 5h10m, 20h, 2d3h, 400d, 3y20d, 9y.
"""

from __future__ import annotations

import datetime
import re

UTC = datetime.timezone.utc

# RFC 3339 with any number of fractional digits (MicroTime has six, but
# clients may send nine) and either Z or a numeric offset.
_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:?\d{2})$")

# Go's zero time.Time serialises like this; it means "unset".
_GO_ZERO = datetime.datetime(1, 1, 1, tzinfo=UTC)

_MICROS_PER_SECOND = 1_000_000


def parse_time(value) -> datetime.datetime | None:
    """An aware datetime from a metav1.Time / MicroTime, or None if unset or unreadable."""
    if isinstance(value, datetime.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
    elif isinstance(value, str):
        moment = _parse_rfc3339(value.strip())
    else:
        return None
    if moment is None or moment == _GO_ZERO:
        return None
    return moment


def _parse_rfc3339(value: str) -> datetime.datetime | None:
    match = _RFC3339.match(value)
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        moment = datetime.datetime(int(year), int(month), int(day), int(hour), int(minute),
                                   int(second), micros, tzinfo=_offset(offset))
    except ValueError:
        return None
    return moment.astimezone(UTC)


def _offset(text: str) -> datetime.timezone:
    if text in ("Z", "z"):
        return UTC
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    return datetime.timezone(sign * datetime.timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))


def _total_micros(delta: datetime.timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * _MICROS_PER_SECOND + delta.microseconds


def human_duration(delta: datetime.timedelta) -> str:
    """Upstream's HumanDuration for a timedelta."""
    micros = _total_micros(delta)
    # Whole seconds truncated toward zero, as Go's int(d.Seconds()) does.
    seconds = abs(micros) // _MICROS_PER_SECOND * (1 if micros >= 0 else -1)
    # A clock a second or so behind is "now"; further in the future is nonsense.
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    return _minutes_or_more(seconds)


def _minutes_or_more(seconds: int) -> str:
    minutes = seconds // 60
    if minutes < 10:
        rest = seconds % 60
        return f"{minutes}m{rest}s" if rest else f"{minutes}m"
    if minutes < 3 * 60:
        return f"{minutes}m"
    hours = seconds // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h{rest}m" if rest else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 8 * 24:
        rest = hours % 24
        return f"{days}d{rest}h" if rest else f"{days}d"
    if hours < 2 * 365 * 24:
        return f"{days}d"
    years = days // 365
    if hours < 8 * 365 * 24:
        rest = days % 365
        return f"{years}y{rest}d" if rest else f"{years}y"
    return f"{years}y"


def since(timestamp, now: datetime.datetime) -> str:
    """How long ago `timestamp` was, or `<unknown>` when it is unset."""
    moment = parse_time(timestamp)
    if moment is None:
        return "<unknown>"
    return human_duration(aware(now) - moment)


def between(start, end) -> str:
    """The human duration from `start` to `end` (both set)."""
    return human_duration(end - start)


def aware(now: datetime.datetime) -> datetime.datetime:
    """`now` with a timezone; a naive value is taken to be UTC."""
    return now if now.tzinfo else now.replace(tzinfo=UTC)


def rfc3339(timestamp) -> str:
    """A timestamp the way Go formats time.RFC3339 in UTC; unset is Go's zero time."""
    m = (parse_time(timestamp) or _GO_ZERO).astimezone(UTC)
    return f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}Z"
