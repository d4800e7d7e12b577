"""CronJob schedule maths: when a CronJob should have started, and what it missed.

Schedules are the standard five-field cron syntax plus the descriptors
(@yearly/@annually, @monthly, @weekly, @daily/@midnight, @hourly) and
`@every <duration>`, as kube-controller-manager's parser accepts them.
They are evaluated in `spec.timeZone` (an IANA name) or, when unset, in the
controller's zone, which for k8py is UTC.

The controller asks one question per sync: given the last time it scheduled
(or the CronJob's creation), now, and the starting deadline, which is the
most recent start time it owes, and roughly how many it missed? Only the most
recent missed start is ever run, as upstream does; more than 100 missed starts
is reported as a likely clock problem.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from k8py.api.validation.cron import CronError, parse_standard

TOO_MANY_MISSED = 100
_UTC = datetime.timezone.utc
_DESCRIPTORS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
                "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
                "@hourly": "0 * * * *"}
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


class ScheduleError(ValueError):
    pass


def time_zone(name: str | None) -> datetime.tzinfo:
    """The zone a schedule runs in; raises ScheduleError for an unknown name."""
    if not name:
        return _UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ScheduleError(f"unknown time zone {name}") from e


def _go_duration_seconds(text: str) -> float:
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-")
    parts = _DURATION_PART.findall(body)
    if not parts or "".join(n + u for n, u in parts) != body:
        raise ScheduleError(f"failed to parse duration {text}")
    return sign * sum(float(n) * _UNITS[u] for n, u in parts)


@dataclass
class Schedule:
    """A parsed schedule in one zone. `next(t)` is the first activation strictly after t."""
    expression: str
    zone: datetime.tzinfo
    every: float | None = None   # seconds, for "@every <duration>"

    @classmethod
    def parse(cls, expression: str, zone_name: str | None = None) -> Schedule:
        zone = time_zone(zone_name)
        text = (expression or "").strip()
        if text.startswith("@every "):
            seconds = _go_duration_seconds(text[len("@every "):].strip())
            # the parser rounds to whole seconds and never runs more than once a second
            return cls(text, zone, every=max(float(int(seconds)), 1.0))
        try:
            parse_standard(text)
        except CronError as e:
            raise ScheduleError(str(e)) from e
        cron = _DESCRIPTORS.get(text, text).replace("?", "*")
        if not croniter.is_valid(cron):
            raise ScheduleError(f"unsupported schedule: {text}")
        return cls(cron, zone)

    def next(self, t: datetime.datetime) -> datetime.datetime:
        if self.every is not None:
            return t.replace(microsecond=0) + datetime.timedelta(seconds=self.every)
        local = t.astimezone(self.zone)
        return croniter(self.expression, local).get_next(datetime.datetime).astimezone(_UTC)

    def latest_at_or_before(self, t: datetime.datetime) -> datetime.datetime:
        """The last activation at or before t (for cron expressions)."""
        local = t.astimezone(self.zone)
        before = croniter(self.expression, local).get_prev(datetime.datetime)
        after = croniter(self.expression, before).get_next(datetime.datetime)
        return (after if after <= local else before).astimezone(_UTC)


@dataclass
class MissedStarts:
    most_recent: datetime.datetime | None   # the start time owed now, if any
    count: int                              # roughly how many starts passed unrun

    @property
    def too_many(self) -> bool:
        return self.count > TOO_MANY_MISSED


def earliest_considered(last_schedule: datetime.datetime | None, created: datetime.datetime,
                        now: datetime.datetime, starting_deadline: int | None) -> datetime.datetime:
    """Nothing at or before this instant is owed: the last start, or creation, or the deadline horizon."""
    earliest = last_schedule or created
    if starting_deadline is not None:
        horizon = now - datetime.timedelta(seconds=starting_deadline)
        earliest = max(earliest, horizon)
    return earliest


def missed_starts(schedule: Schedule, earliest: datetime.datetime, now: datetime.datetime) -> MissedStarts:
    first = schedule.next(earliest)
    if now < first:
        return MissedStarts(None, 0)
    second = schedule.next(first)
    if now < second:
        return MissedStarts(first, 1)
    interval = round((second - first).total_seconds())
    if interval < 1:
        raise ScheduleError("time difference between two schedules is less than 1 second")
    # An estimate from the first gap, good enough to tell "a few" from "a clock gone wrong".
    count = int((now - first).total_seconds()) // interval + 1
    if schedule.every is not None:
        most_recent = first + datetime.timedelta(seconds=interval * (count - 1))
    else:
        most_recent = schedule.latest_at_or_before(now)
    return MissedStarts(most_recent if most_recent >= first else None, count)


def next_start_after(schedule: Schedule, earliest: datetime.datetime, now: datetime.datetime,
                     ) -> datetime.datetime:
    """The first activation after both `earliest` and `now`: when to look again."""
    return schedule.next(max(earliest, now))


def job_name(cronjob_name: str, scheduled: datetime.datetime) -> str:
    """`<cronjob>-<minutes since the epoch>`: the same start always gets the same name."""
    return f"{cronjob_name}-{int(scheduled.timestamp()) // 60}"


def scheduled_timestamp(scheduled: datetime.datetime, zone: datetime.tzinfo) -> str:
    """RFC 3339 in the CronJob's zone, for the cronjob-scheduled-timestamp annotation."""
    local = scheduled.astimezone(zone).replace(microsecond=0)
    text = local.isoformat()
    return text.replace("+00:00", "Z") if local.utcoffset() == datetime.timedelta(0) else text
