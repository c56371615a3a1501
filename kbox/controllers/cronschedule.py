"""Cron schedules as Kubernetes reads them, and the clocks the CronJob controller tells time by.

Kubernetes parses ``spec.schedule`` with robfig/cron v3's ``ParseStandard``; kbox follows the same
grammar and the same error texts, so kube-apiserver's validation messages come out word for word:

- five fields: minute (0-59), hour (0-23), day of month (1-31), month (1-12 or JAN-DEC), day of week
  (0-6 or SUN-SAT; 7 is refused, as there); names in any case;
- each field a comma list of ``*``, ``?`` (same as ``*``), ``N``, ``N-M``, with an optional ``/step``;
  ``N/step`` means ``N-max/step``;
- day of month and day of week: when either is unrestricted (``*``, ``?``, or ``*/1``) both must match,
  otherwise either may (``*/2`` counts as restricted, as in robfig/cron, unlike Vixie cron);
- the descriptors ``@yearly``/``@annually``, ``@monthly``, ``@weekly``, ``@daily``/``@midnight``,
  ``@hourly``, and ``@every <Go duration>`` (robfig accepts it, so Kubernetes does);
- a ``TZ=<zone>``/``CRON_TZ=<zone>`` prefix is parsed here (the controller's own ``spec.timeZone`` is
  passed as a zone instead); the API refuses it in new schedules, as kube-apiserver does.

:meth:`CronSchedule.next` finds the first matching minute strictly after a time, in the schedule's zone
(the process's local zone without one, as kube-controller-manager's). Wall-clock times that do not
exist (a daylight-saving gap) are skipped; one that happens twice runs at both instants. Like robfig's,
the search gives up after five years (``None``: a schedule such as ``0 0 30 2 *`` never fires).
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import os
import re
import time
import zoneinfo
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

UTC = datetime.UTC


class ScheduleError(ValueError):
    """A schedule that does not parse; the message is robfig/cron's."""


@dataclass(frozen=True)
class _Bounds:
    low: int
    high: int
    names: dict[str, int] | None = None


_MONTH_NAMES = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAY_NAMES = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
MINUTES = _Bounds(0, 59)
HOURS = _Bounds(0, 23)
DAYS_OF_MONTH = _Bounds(1, 31)
MONTHS = _Bounds(1, 12, {name: n + 1 for n, name in enumerate(_MONTH_NAMES)})
DAYS_OF_WEEK = _Bounds(0, 6, {name: n for n, name in enumerate(_DAY_NAMES)})

_DESCRIPTORS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_SEARCH_YEARS = 5
_DST_WINDOW = datetime.timedelta(hours=3)  # wider than any daylight-saving shift


@dataclass(frozen=True)
class _Field:
    values: frozenset[int]
    star: bool
    """Unrestricted (``*``/``?`` without a step above 1): decides how the two day fields combine."""


class Schedule(Protocol):
    def next(self, after: datetime.datetime) -> datetime.datetime | None:
        """The first activation strictly after ``after`` (aware), or ``None`` if there is none."""


@dataclass(frozen=True)
class CronSchedule:
    """A five-field schedule in ``zone`` (``None``: the process's local zone when it is used)."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: _Field
    months: frozenset[int]
    weekdays: _Field
    zone: datetime.tzinfo | None = None

    def next(self, after: datetime.datetime) -> datetime.datetime | None:
        zone = self.zone or local_zone()
        local = after.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0)
        best: datetime.datetime | None = None
        best_wall: datetime.datetime | None = None
        limit = local.year + _SEARCH_YEARS
        # Wall-clock candidates come in order; only near a daylight-saving change can their instants be
        # out of order (or a wall time exist twice), so only there look around the first that fits.
        start = local - _DST_WINDOW if _shifting(zone, local) else local
        for wall in self._walls_from(start, limit):
            if best_wall is not None and (wall > best_wall + _DST_WINDOW or not _shifting(zone, best_wall)):
                break
            for fold in (0, 1):
                instant = wall.replace(tzinfo=zone, fold=fold).astimezone(UTC)
                if instant.astimezone(zone).replace(tzinfo=None) != wall:
                    continue  # in a gap: this wall-clock time does not exist today
                if instant > after and (best is None or instant < best):
                    best, best_wall = instant, wall
        return best

    def _walls_from(self, start: datetime.datetime, limit: int) -> Iterator[datetime.datetime]:
        """Matching naive minutes at or after ``start``, ascending, until the year passes ``limit``."""
        t = start
        minute = datetime.timedelta(minutes=1)
        while t.year <= limit:
            if t.month not in self.months:
                year, month = (t.year + 1, 1) if t.month == 12 else (t.year, t.month + 1)
                t = datetime.datetime(year, month, 1)
                continue
            if not self._day_matches(t):
                t = datetime.datetime(t.year, t.month, t.day) + datetime.timedelta(days=1)
                continue
            if t.hour not in self.hours:
                t = datetime.datetime(t.year, t.month, t.day, t.hour) + datetime.timedelta(hours=1)
                continue
            if t.minute not in self.minutes:
                t += minute
                continue
            yield t
            t += minute

    def _day_matches(self, t: datetime.datetime) -> bool:
        dom = t.day in self.days.values
        dow = (t.weekday() + 1) % 7 in self.weekdays.values
        if self.days.star or self.weekdays.star:
            return dom and dow
        return dom or dow


@dataclass(frozen=True)
class EverySchedule:
    """``@every <duration>``: a fixed delay from the previous activation, in whole seconds (at least 1)."""

    seconds: int

    def next(self, after: datetime.datetime) -> datetime.datetime | None:
        return after.replace(microsecond=0) + datetime.timedelta(seconds=self.seconds)


def _shifting(zone: datetime.tzinfo, wall: datetime.datetime) -> bool:
    """Whether ``zone``'s UTC offset changes within a few hours of the naive time ``wall``."""
    before = (wall - _DST_WINDOW).replace(tzinfo=zone).utcoffset()
    after = (wall + _DST_WINDOW).replace(tzinfo=zone).utcoffset()
    return before != after


def parse(spec: str, zone: datetime.tzinfo | None = None) -> Schedule:
    """Parse ``spec`` as robfig/cron's ``ParseStandard`` does; ``zone`` is where it is read (a
    ``TZ=``/``CRON_TZ=`` prefix overrides it). Raises :class:`ScheduleError`."""
    if not spec:
        raise ScheduleError("empty spec string")
    if spec.startswith(("TZ=", "CRON_TZ=")):
        space = spec.find(" ")
        name = spec[spec.index("=") + 1 : space if space >= 0 else len(spec)]
        try:
            zone = load_zone(name)
        except ScheduleError as exc:
            raise ScheduleError(f"provided bad location {name}: {exc}") from None
        spec = spec[space:].strip() if space >= 0 else ""
    if spec.startswith("@"):
        return _descriptor(spec, zone)
    fields = spec.split()
    if len(fields) != 5:
        raise ScheduleError(f"expected exactly 5 fields, found {len(fields)}: [{' '.join(fields)}]")
    minutes = _field(fields[0], MINUTES)
    hours = _field(fields[1], HOURS)
    days = _field(fields[2], DAYS_OF_MONTH)
    months = _field(fields[3], MONTHS)
    weekdays = _field(fields[4], DAYS_OF_WEEK)
    return CronSchedule(minutes.values, hours.values, days, months.values, weekdays, zone)


def _descriptor(spec: str, zone: datetime.tzinfo | None) -> Schedule:
    standard = _DESCRIPTORS.get(spec)
    if standard is not None:
        return parse(standard, zone)
    if spec.startswith("@every "):
        text = spec[len("@every ") :]
        try:
            seconds = parse_go_duration(text)
        except ValueError as exc:
            raise ScheduleError(f"failed to parse duration {spec}: {exc}") from None
        return EverySchedule(max(1, int(seconds)))
    raise ScheduleError(f"unrecognized descriptor: {spec}")


def _field(text: str, bounds: _Bounds) -> _Field:
    values: set[int] = set()
    star = False
    for expr in (part for part in text.split(",") if part):
        found, is_star = _range(expr, bounds)
        values |= found
        star = star or is_star
    return _Field(frozenset(values), star)


def _range(expr: str, bounds: _Bounds) -> tuple[set[int], bool]:
    range_and_step = expr.split("/")
    low_and_high = range_and_step[0].split("-")
    star = False
    if low_and_high[0] in ("*", "?"):
        start, end, star = bounds.low, bounds.high, True
    else:
        start = _int_or_name(low_and_high[0], bounds.names)
        if len(low_and_high) == 1:
            end = start
        elif len(low_and_high) == 2:
            end = _int_or_name(low_and_high[1], bounds.names)
        else:
            raise ScheduleError(f"too many hyphens: {expr}")
    if len(range_and_step) == 1:
        step = 1
    elif len(range_and_step) == 2:
        step = _int(range_and_step[1])
        if len(low_and_high) == 1:
            end = bounds.high  # "N/step" means "N-max/step"
        if step > 1:
            star = False
    else:
        raise ScheduleError(f"too many slashes: {expr}")
    if start < bounds.low:
        raise ScheduleError(f"beginning of range ({start}) below minimum ({bounds.low}): {expr}")
    if end > bounds.high:
        raise ScheduleError(f"end of range ({end}) above maximum ({bounds.high}): {expr}")
    if start > end:
        raise ScheduleError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")
    if step == 0:
        raise ScheduleError(f"step of range should be a positive number: {expr}")
    return set(range(start, end + 1, step)), star


def _int_or_name(text: str, names: dict[str, int] | None) -> int:
    if names is not None and text.lower() in names:
        return names[text.lower()]
    return _int(text)


_GO_INT = re.compile(r"[+-]?[0-9]+")


def _int(text: str) -> int:
    """Go's ``strconv.Atoi`` with robfig's wording around its errors."""
    if not _GO_INT.fullmatch(text):
        raise ScheduleError(
            f'failed to parse int from {text}: strconv.Atoi: parsing "{text}": invalid syntax'
        )
    value = int(text)
    if not -(2**63) <= value < 2**63:
        raise ScheduleError(
            f'failed to parse int from {text}: strconv.Atoi: parsing "{text}": value out of range'
        )
    if value < 0:
        raise ScheduleError(f"negative number ({value}) not allowed: {text}")
    return value


_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_GO_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)([^0-9.]*)")


def parse_go_duration(text: str) -> float:
    """Seconds in a Go duration (``1h30m``, ``90s``, ``1.5h``); ``ValueError`` worded as Go's."""
    quoted = f'"{text}"'
    rest, sign = text, 1.0
    if rest[:1] in ("+", "-"):
        sign = -1.0 if rest[0] == "-" else 1.0
        rest = rest[1:]
    if rest == "0":
        return 0.0
    if not rest:
        raise ValueError(f"time: invalid duration {quoted}")
    total = 0.0
    while rest:
        match = _GO_PART.match(rest)
        number, unit = (match.group(1), match.group(2)) if match else ("", "")
        if number in ("", "."):
            raise ValueError(f"time: invalid duration {quoted}")
        if not unit:
            raise ValueError(f"time: missing unit in duration {quoted}")
        if unit not in _GO_UNITS:
            raise ValueError(f'time: unknown unit "{unit}" in duration {quoted}')
        total += float(number) * _GO_UNITS[unit]
        rest = rest[len(number) + len(unit) :]
    return sign * total


# -- time zones ------------------------------------------------------------------------------------


def load_zone(name: str) -> datetime.tzinfo:
    """An IANA zone as Go's ``time.LoadLocation`` finds it ("" and "UTC" are UTC, "Local" the local zone)."""
    if name in ("", "UTC"):
        return UTC
    if name == "Local":
        return local_zone()
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise ScheduleError(f"unknown time zone {name}") from None


@functools.cache
def local_zone() -> datetime.tzinfo:
    """The process's zone as Go's ``time.Local`` is set: ``$TZ``, else /etc/localtime, else UTC; read
    once (Go reads it once too), so schedules never touch the disk on the event loop."""
    name = os.environ.get("TZ")
    if name is not None:
        name = name.removeprefix(":")
        if name in ("", "UTC"):
            return UTC
        try:
            return zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
            return UTC
    try:
        with open("/etc/localtime", "rb") as file:
            return zoneinfo.ZoneInfo.from_file(file, key="Local")
    except (OSError, ValueError):
        return UTC


# -- clocks ----------------------------------------------------------------------------------------


class Clock(Protocol):
    """Where the CronJob controller reads the time: ``now()`` for schedules, ``time()``/``sleep()`` (a
    monotonic scale) for its work queue's delays, so a clock that jumps also wakes the queue."""

    def now(self) -> datetime.datetime:
        """The current wall-clock time, timezone-aware."""

    def time(self) -> float:
        """Seconds on a monotonic scale."""

    async def sleep(self, delay: float) -> None:
        """Return once ``time()`` has advanced by ``delay``."""


class SystemClock:
    """The real time: the system's wall clock and the monotonic clock."""

    def now(self) -> datetime.datetime:
        return datetime.datetime.now(UTC)

    def time(self) -> float:
        return time.monotonic()

    async def sleep(self, delay: float) -> None:
        await asyncio.sleep(delay)


class ManualClock:
    """Real time that a test can move forward: it runs at the normal pace from ``start`` (default: the
    real now), and :meth:`advance` jumps it ahead, waking every sleeper whose time has come. Retries
    and short timers keep working in real time; schedules minutes or months away are a jump away."""

    def __init__(self, start: datetime.datetime | None = None) -> None:
        self._wall0 = (start or datetime.datetime.now(UTC)).astimezone(UTC)
        self._mono0 = time.monotonic()
        self._offset = 0.0
        self._waiters: set[asyncio.Future[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def time(self) -> float:
        return time.monotonic() - self._mono0 + self._offset

    def now(self) -> datetime.datetime:
        return self._wall0 + datetime.timedelta(seconds=self.time())

    async def sleep(self, delay: float) -> None:
        deadline = self.time() + delay
        loop = self._loop = asyncio.get_running_loop()
        while (remaining := deadline - self.time()) > 0:
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.add(waiter)
            handle = loop.call_later(remaining, _resolve, waiter)
            try:
                await waiter
            finally:
                handle.cancel()
                self._waiters.discard(waiter)

    def advance(self, seconds: float) -> None:
        """Move the clock ``seconds`` forward (never back); safe to call from any thread."""
        if seconds < 0:
            raise ValueError("a clock only moves forward")
        self._offset += seconds
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake()
        else:  # a test thread driving a cluster that runs on its own loop (kbox.testing.Cluster)
            loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        for waiter in list(self._waiters):
            _resolve(waiter)

    def advance_to(self, when: datetime.datetime) -> None:
        """Move the clock forward to ``when`` (aware); no-op if it is already past."""
        self.advance(max(0.0, (when - self.now()).total_seconds()))


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
