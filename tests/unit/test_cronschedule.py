"""CronJob schedule maths: next start, time zones, missed starts after downtime, job names."""

import datetime

import pytest

from k8py.controllers import cronschedule as cs
from k8py.controllers.cronjob import history_to_delete, new_job

UTC = datetime.timezone.utc


def t(*args, tz=UTC):
    return datetime.datetime(*args, tzinfo=tz)


def test_next_is_strictly_after_and_follows_the_fields():
    every_five = cs.Schedule.parse("*/5 * * * *")
    assert every_five.next(t(2024, 1, 1, 10, 0)) == t(2024, 1, 1, 10, 5)
    assert every_five.next(t(2024, 1, 1, 10, 3, 59)) == t(2024, 1, 1, 10, 5)
    weekdays = cs.Schedule.parse("30 9 * * mon-fri")
    assert weekdays.next(t(2024, 1, 5, 10, 0)) == t(2024, 1, 8, 9, 30)  # Friday after 9:30 -> Monday


def test_day_of_month_and_week_are_either_or_when_both_restricted():
    schedule = cs.Schedule.parse("0 0 13 * 5")  # the 13th, or any Friday
    assert schedule.next(t(2024, 1, 1)) == t(2024, 1, 5)
    assert schedule.next(t(2024, 1, 12, 1)) == t(2024, 1, 13)


@pytest.mark.parametrize("macro,after,expected", [
    ("@hourly", t(2024, 1, 1, 10, 30), t(2024, 1, 1, 11, 0)),
    ("@daily", t(2024, 1, 1, 10, 30), t(2024, 1, 2)),
    ("@midnight", t(2024, 1, 1, 10, 30), t(2024, 1, 2)),
    ("@weekly", t(2024, 1, 1, 10, 30), t(2024, 1, 7)),  # Sunday
    ("@monthly", t(2024, 1, 1, 10, 30), t(2024, 2, 1)),
    ("@yearly", t(2024, 1, 1, 10, 30), t(2025, 1, 1)),
    ("@annually", t(2024, 1, 1, 10, 30), t(2025, 1, 1)),
    ("@every 90s", t(2024, 1, 1, 10, 30, 0, 500000), t(2024, 1, 1, 10, 31, 30)),
])
def test_macros(macro, after, expected):
    assert cs.Schedule.parse(macro).next(after) == expected


def test_time_zone_is_honoured_across_daylight_saving():
    schedule = cs.Schedule.parse("0 9 * * *", "America/New_York")
    # 9:00 New York is 14:00 UTC in winter, 13:00 UTC in summer
    assert schedule.next(t(2024, 1, 10)) == t(2024, 1, 10, 14)
    assert schedule.next(t(2024, 7, 10)) == t(2024, 7, 10, 13)
    assert schedule.next(t(2024, 3, 9, 15)) == t(2024, 3, 10, 13)  # the day clocks spring forward


def test_bad_schedules_and_zones_are_errors():
    with pytest.raises(cs.ScheduleError, match="expected exactly 5 fields"):
        cs.Schedule.parse("* * *")
    with pytest.raises(cs.ScheduleError, match="above maximum"):
        cs.Schedule.parse("60 * * * *")
    with pytest.raises(cs.ScheduleError, match="unknown time zone"):
        cs.Schedule.parse("* * * * *", "Mars/Olympus")


def test_nothing_owed_before_the_first_start():
    schedule = cs.Schedule.parse("0 * * * *")
    missed = cs.missed_starts(schedule, t(2024, 1, 1, 10, 0), t(2024, 1, 1, 10, 59))
    assert missed.most_recent is None and missed.count == 0


def test_one_start_owed():
    schedule = cs.Schedule.parse("0 * * * *")
    missed = cs.missed_starts(schedule, t(2024, 1, 1, 10, 0), t(2024, 1, 1, 11, 0, 5))
    assert missed.most_recent == t(2024, 1, 1, 11) and missed.count == 1


def test_after_downtime_only_the_most_recent_start_is_owed():
    schedule = cs.Schedule.parse("0 * * * *")
    missed = cs.missed_starts(schedule, t(2024, 1, 1, 10, 0), t(2024, 1, 1, 15, 20))
    assert missed.most_recent == t(2024, 1, 1, 15) and missed.count == 5 and not missed.too_many


def test_more_than_a_hundred_missed_starts_is_too_many():
    schedule = cs.Schedule.parse("* * * * *")
    missed = cs.missed_starts(schedule, t(2024, 1, 1, 10, 0), t(2024, 1, 1, 12, 0, 30))
    assert missed.count == 120 and missed.too_many
    assert missed.most_recent == t(2024, 1, 1, 12, 0)


def test_irregular_schedule_finds_the_true_most_recent_start():
    schedule = cs.Schedule.parse("30 6-16/4 * * 1-5")  # 6:30, 10:30, 14:30 on weekdays
    missed = cs.missed_starts(schedule, t(2024, 1, 5, 6, 30), t(2024, 1, 8, 8, 0))  # Fri -> Mon 8:00
    assert missed.most_recent == t(2024, 1, 8, 6, 30)


def test_starting_deadline_moves_the_horizon():
    now = t(2024, 1, 1, 15, 20)
    assert cs.earliest_considered(t(2024, 1, 1, 10), t(2023, 1, 1), now, 600) == t(2024, 1, 1, 15, 10)
    assert cs.earliest_considered(None, t(2024, 1, 1, 15, 15), now, 600) == t(2024, 1, 1, 15, 15)
    assert cs.earliest_considered(None, t(2023, 1, 1), now, None) == t(2023, 1, 1)
    schedule = cs.Schedule.parse("0 * * * *")
    # with a 10 minute deadline the 15:00 start is out of reach at 15:20
    earliest = cs.earliest_considered(t(2024, 1, 1, 10), t(2023, 1, 1), now, 600)
    assert cs.missed_starts(schedule, earliest, now).most_recent is None


def test_job_names_and_scheduled_timestamp():
    scheduled = t(2024, 1, 1, 15, 0)
    assert cs.job_name("hello", scheduled) == f"hello-{int(scheduled.timestamp()) // 60}" == "hello-28402020"
    assert cs.scheduled_timestamp(scheduled, UTC) == "2024-01-01T15:00:00Z"
    assert cs.scheduled_timestamp(scheduled, cs.time_zone("Asia/Tokyo")) == "2024-01-02T00:00:00+09:00"


def test_new_job_from_template():
    cronjob = {"apiVersion": "batch/v1", "kind": "CronJob",
               "metadata": {"name": "hello", "namespace": "ns", "uid": "u1"},
               "spec": {"jobTemplate": {"metadata": {"labels": {"a": "b"}}, "spec": {"backoffLimit": 2}}}}
    job = new_job(cronjob, t(2024, 1, 1, 15), UTC)
    assert job["metadata"]["name"] == "hello-28402020"
    assert job["metadata"]["labels"] == {"a": "b"}
    assert job["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"] == \
        "2024-01-01T15:00:00Z"
    assert job["metadata"]["ownerReferences"][0]["uid"] == "u1" and job["spec"] == {"backoffLimit": 2}


def _job(name, outcome, start):
    return {"metadata": {"name": name}, "status": {"startTime": start, "conditions": [
        {"type": outcome, "status": "True"}] if outcome else []}}


def test_history_limits_delete_oldest_finished_first():
    jobs = [_job("a", "Complete", "2024-01-01T00:00:00Z"), _job("b", "Complete", "2024-01-03T00:00:00Z"),
            _job("c", "Complete", "2024-01-02T00:00:00Z"), _job("d", "Failed", "2024-01-01T00:00:00Z"),
            _job("e", None, "2023-01-01T00:00:00Z")]
    assert [j["metadata"]["name"] for j in history_to_delete(jobs, 1, 0)] == ["a", "c", "d"]
    assert history_to_delete(jobs, None, None) == []
