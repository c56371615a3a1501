"""Cron schedules as robfig/cron v3 (so Kubernetes) reads them: fields, ranges, steps, lists, names, ``?``,
descriptors and ``@every``; the day-of-month/day-of-week rule; next times in UTC and across daylight-saving
changes; schedules that never fire; the parse errors word for word; Go durations; the schedule arithmetic of
the controller (most recent missed time, too many missed, the requeue delay); and the ManualClock. The
controller itself is covered in tests/component/controllers/test_cronjob.py."""

from __future__ import annotations

import asyncio
import datetime

import pytest

from kbox.controllers import cronjob, cronschedule
from kbox.controllers.cronschedule import UTC, ManualClock, ScheduleError, parse

PARIS = cronschedule.load_zone("Europe/Paris")


def at(*args: int, tz: datetime.tzinfo = UTC) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=tz)


def times(spec: str, after: datetime.datetime, count: int = 3, zone: datetime.tzinfo = UTC) -> list[str]:
    schedule = parse(spec, zone)
    found: list[str] = []
    t: datetime.datetime | None = after
    for _ in range(count):
        assert t is not None
        t = schedule.next(t)
        found.append(t.astimezone(UTC).strftime("%Y-%m-%d %H:%M %a") if t else "never")
    return found


START = at(2026, 11, 29, 23, 53, 10)  # a Sunday


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("* * * * *", ["2026-11-29 23:54 Sun", "2026-11-29 23:55 Sun", "2026-11-29 23:56 Sun"]),
        ("*/20 * * * *", ["2026-11-30 00:00 Mon", "2026-11-30 00:20 Mon", "2026-11-30 00:40 Mon"]),
        ("5/20 * * * *", ["2026-11-30 00:05 Mon", "2026-11-30 00:25 Mon", "2026-11-30 00:45 Mon"]),
        ("0,30 9-10 * * *", ["2026-11-30 09:00 Mon", "2026-11-30 09:30 Mon", "2026-11-30 10:00 Mon"]),
        ("0 12 * JAN,feb ?", ["2027-01-01 12:00 Fri", "2027-01-02 12:00 Sat", "2027-01-03 12:00 Sun"]),
        ("0 8 * * MON-fri", ["2026-11-30 08:00 Mon", "2026-12-01 08:00 Tue", "2026-12-02 08:00 Wed"]),
        ("0 0 13 * 5", ["2026-12-04 00:00 Fri", "2026-12-11 00:00 Fri", "2026-12-13 00:00 Sun"]),  # either day
        ("0 0 */2 * 5", ["2026-12-01 00:00 Tue", "2026-12-03 00:00 Thu", "2026-12-04 00:00 Fri"]),  # robfig: */2 restricts
        ("0 0 * * 5", ["2026-12-04 00:00 Fri", "2026-12-11 00:00 Fri", "2026-12-18 00:00 Fri"]),  # * and: Fridays only
        ("@hourly", ["2026-11-30 00:00 Mon", "2026-11-30 01:00 Mon", "2026-11-30 02:00 Mon"]),
        ("@daily", ["2026-11-30 00:00 Mon", "2026-12-01 00:00 Tue", "2026-12-02 00:00 Wed"]),
        ("@midnight", ["2026-11-30 00:00 Mon", "2026-12-01 00:00 Tue", "2026-12-02 00:00 Wed"]),
        ("@weekly", ["2026-12-06 00:00 Sun", "2026-12-13 00:00 Sun", "2026-12-20 00:00 Sun"]),
        ("@monthly", ["2026-12-01 00:00 Tue", "2027-01-01 00:00 Fri", "2027-02-01 00:00 Mon"]),
        ("@yearly", ["2027-01-01 00:00 Fri", "2028-01-01 00:00 Sat", "2029-01-01 00:00 Mon"]),
        ("@annually", ["2027-01-01 00:00 Fri", "2028-01-01 00:00 Sat", "2029-01-01 00:00 Mon"]),
        ("@every 1h30m", ["2026-11-30 01:23 Mon", "2026-11-30 02:53 Mon", "2026-11-30 04:23 Mon"]),
        ("0 0 29 2 *", ["2028-02-29 00:00 Tue", "2032-02-29 00:00 Sun", "2036-02-29 00:00 Fri"]),
        ("0 0 30 2 *", ["never"]),
    ],
)  # fmt: skip
def test_next_times(spec: str, expected: list[str]) -> None:
    assert times(spec, START, len(expected)) == expected


def test_next_is_strictly_after_and_on_the_minute() -> None:
    schedule = parse("* * * * *", UTC)
    assert schedule.next(at(2026, 1, 1, 10, 0)) == at(2026, 1, 1, 10, 1)
    assert schedule.next(at(2026, 1, 1, 9, 59, 59, 999999)) == at(2026, 1, 1, 10, 0)


def test_time_zone_and_daylight_saving() -> None:
    # 03:00 in Paris is 02:00 UTC in winter, 01:00 UTC in summer.
    assert times("0 3 * * *", at(2026, 3, 27, 12), 3, PARIS) == [
        "2026-03-28 02:00 Sat", "2026-03-29 01:00 Sun", "2026-03-30 01:00 Mon"
    ]  # fmt: skip
    # 02:30 does not exist on the spring-forward night: that day has no run.
    assert times("30 2 * * *", at(2026, 3, 28, 12), 2, PARIS) == [
        "2026-03-30 00:30 Mon",
        "2026-03-31 00:30 Tue",
    ]
    # ... and happens twice on the fall-back night: both run, in order.
    assert times("30 2 * * *", at(2026, 10, 24, 12), 3, PARIS) == [
        "2026-10-25 00:30 Sun", "2026-10-25 01:30 Sun", "2026-10-26 01:30 Mon"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "empty spec string"),
        ("* * * *", "expected exactly 5 fields, found 4: [* * * *]"),
        ("* * * * * *", "expected exactly 5 fields, found 6: [* * * * * *]"),
        ("60 * * * *", "end of range (60) above maximum (59): 60"),
        ("* 24 * * *", "end of range (24) above maximum (23): 24"),
        ("* * 0 * *", "beginning of range (0) below minimum (1): 0"),
        ("* * * 13 *", "end of range (13) above maximum (12): 13"),
        ("* * * * 7", "end of range (7) above maximum (6): 7"),
        ("10-5 * * * *", "beginning of range (10) beyond end of range (5): 10-5"),
        ("*/0 * * * *", "step of range should be a positive number: */0"),
        ("1-2-3 * * * *", "too many hyphens: 1-2-3"),
        ("1/2/3 * * * *", "too many slashes: 1/2/3"),
        ("x * * * *", 'failed to parse int from x: strconv.Atoi: parsing "x": invalid syntax'),
        (
            "* * * JANUARY *",
            'failed to parse int from JANUARY: strconv.Atoi: parsing "JANUARY": invalid syntax',
        ),
        ("@often", "unrecognized descriptor: @often"),
        ("@every 5", 'failed to parse duration @every 5: time: missing unit in duration "5"'),
        ("@every 5y", 'failed to parse duration @every 5y: time: unknown unit "y" in duration "5y"'),
        ("TZ=Mars/Olympus * * * * *", "provided bad location Mars/Olympus: unknown time zone Mars/Olympus"),
    ],
)
def test_parse_errors_are_robfigs(spec: str, message: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse(spec)
    assert str(caught.value) == message


def test_tz_prefix_sets_the_zone() -> None:
    schedule = parse("CRON_TZ=Europe/Paris 0 9 * * *", UTC)
    assert schedule.next(at(2026, 7, 1)) == at(2026, 7, 1, 7)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90.0), ("1h30m", 5400.0), ("1.5h", 5400.0), ("500ms", 0.5), ("0", 0.0), ("-2m", -120.0)],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert cronschedule.parse_go_duration(text) == seconds


def test_every_is_at_least_a_second() -> None:
    assert parse("@every 10ms").next(at(2026, 1, 1)) == at(2026, 1, 1, 0, 0, 1)


# -- the controller's schedule arithmetic --------------------------------------------------------


def cj(
    created: datetime.datetime, last: datetime.datetime | None = None, deadline: int | None = None
) -> dict:
    spec = {} if deadline is None else {"startingDeadlineSeconds": deadline}
    status = {} if last is None else {"lastScheduleTime": last.strftime("%Y-%m-%dT%H:%M:%SZ")}
    return {
        "metadata": {"creationTimestamp": created.strftime("%Y-%m-%dT%H:%M:%SZ")},
        "spec": spec,
        "status": status,
    }


def test_most_recent_time_and_missed_counts() -> None:
    hourly = parse("@hourly", UTC)
    created = at(2026, 1, 1, 0, 10)
    # Not due yet.
    assert cronjob.most_recent_schedule_time(cj(created), at(2026, 1, 1, 0, 50), hourly, include_deadline=True)[1:] == (
        None, 0
    )  # fmt: skip
    # One due time.
    _, recent, missed = cronjob.most_recent_schedule_time(
        cj(created), at(2026, 1, 1, 1, 5), hourly, include_deadline=True
    )
    assert (recent, missed) == (at(2026, 1, 1, 1), 0)
    # Three days down: 74 missed, only the latest is returned.
    _, recent, missed = cronjob.most_recent_schedule_time(
        cj(created, last=at(2026, 1, 1, 1)), at(2026, 1, 4, 3, 30), hourly, include_deadline=True
    )
    assert (recent, missed) == (at(2026, 1, 4, 3), 1)
    # Five days down: more than 100.
    _, recent, missed = cronjob.most_recent_schedule_time(
        cj(created, last=at(2026, 1, 1, 1)), at(2026, 1, 6, 3, 30), hourly, include_deadline=True
    )
    assert (recent, missed) == (at(2026, 1, 6, 3), 2)
    # A deadline of 10 minutes: the 03:00 run 30 minutes ago is out of reach.
    _, recent, _ = cronjob.most_recent_schedule_time(
        cj(created, last=at(2026, 1, 1, 1), deadline=600),
        at(2026, 1, 6, 3, 30),
        hourly,
        include_deadline=True,
    )
    assert recent is None


def test_next_schedule_delay() -> None:
    hourly = parse("@hourly", UTC)
    delay = cronjob.next_schedule_delay(cj(at(2026, 1, 1, 0, 10)), at(2026, 1, 1, 0, 50), hourly)
    assert delay == pytest.approx(600 + cronjob.NEXT_SCHEDULE_DELTA)
    # Long missed: the next time after now, not after the old last time.
    delay = cronjob.next_schedule_delay(
        cj(at(2026, 1, 1), last=at(2026, 1, 1, 1)), at(2026, 1, 6, 3, 30), hourly
    )
    assert delay == pytest.approx(1800 + cronjob.NEXT_SCHEDULE_DELTA)
    assert cronjob.next_schedule_delay(cj(at(2026, 1, 1)), at(2026, 1, 2), parse("0 0 30 2 *", UTC)) is None


def test_job_names_and_annotations() -> None:
    body = {
        "metadata": {"name": "nightly", "namespace": "ops", "uid": "u-1"},
        "spec": {
            "timeZone": "Europe/Paris",
            "jobTemplate": {"metadata": {"labels": {"a": "b"}}, "spec": {"template": {"spec": {}}}},
        },
    }
    scheduled = at(2026, 7, 1, 1)
    job = cronjob.job_from_template(body, scheduled)
    assert job["metadata"]["name"] == f"nightly-{int(scheduled.timestamp()) // 60}"
    assert job["metadata"]["annotations"] == {cronjob.SCHEDULED_TIMESTAMP: "2026-07-01T03:00:00+02:00"}
    assert job["metadata"]["labels"] == {"a": "b"}
    assert cronjob.rfc1123z(scheduled) == "Wed, 01 Jul 2026 01:00:00 +0000"


# -- the clock -----------------------------------------------------------------------------------


async def test_manual_clock_jumps_wake_sleepers() -> None:
    clock = ManualClock(at(2026, 1, 1))
    sleeper = asyncio.ensure_future(clock.sleep(3600))
    await asyncio.sleep(0)
    assert not sleeper.done()
    clock.advance(1800)
    await asyncio.sleep(0)
    assert not sleeper.done()
    clock.advance_to(at(2026, 1, 1, 1))
    await asyncio.wait_for(sleeper, 5)
    assert clock.now() >= at(2026, 1, 1, 1)
    with pytest.raises(ValueError, match="only moves forward"):
        clock.advance(-1)
