"""Availability engine: pure range algebra, free slots and multi-session courses.

Everything here is plain Python (stdlib only, no Django/ORM) so it can be property-tested
in isolation and reused by the booking service, the API and the Celery jobs.

The model follows cal.com's approach:

    weekly rules + extra hours - closures  ->  open ranges (UTC)       [open_ranges]
    open ranges of every resource          ->  common open ranges     [intersect]
    common open ranges walked by `step`    ->  candidate starts
    candidate kept if every resource has a free unit of capacity      [free_unit]
    slots indexed by local date            ->  multi-session courses  [course_options]

Conventions
-----------
* A ``Range`` is ``(start, end)`` meaning the half-open interval ``[start, end)``.
* All datetimes must be timezone-aware (naive ones raise ``ValueError``). Every range this
  module returns is expressed in UTC (``datetime.timezone.utc``).
* Local wall-clock rules are converted with ``zoneinfo`` for the concrete date, never with a
  fixed offset, so tzdata changes (Asia/Almaty moved from UTC+6 to UTC+5 on 2024-03-01) and DST
  are honoured. A local time that does not exist (DST gap) moves forward by the size of the
  gap; an ambiguous one (DST fold) takes its first occurrence (``fold=0``).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import reduce

Range = tuple[datetime, datetime]

__all__ = [
    "UTC",
    "CourseOption",
    "CoursePattern",
    "Range",
    "ResourceCalendar",
    "WeeklyHours",
    "blocked_window",
    "course_options",
    "find_slots",
    "free_unit",
    "intersect",
    "local_day_bounds",
    "local_instant",
    "normalize",
    "open_ranges",
    "overlaps",
    "prepare",
    "subtract",
]


def _start(r: Range) -> datetime:
    return r[0]


def _utc(dt: datetime) -> datetime:
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"naive datetime not allowed: {dt!r}")
    return dt.astimezone(UTC)


# --------------------------------------------------------------------------- range algebra


def normalize(ranges: Iterable[Range]) -> list[Range]:
    """Convert to UTC, drop empty ranges, sort, and merge overlapping *and touching* ranges.

    The result is sorted, pairwise disjoint and has a gap between any two neighbours, so both
    the starts and the ends are strictly increasing (which is what makes bisect lookups valid).
    """
    items = sorted((s, e) for s, e in ((_utc(a), _utc(b)) for a, b in ranges) if s < e)
    merged: list[Range] = []
    for s, e in items:
        if merged and s <= merged[-1][1]:
            if e > merged[-1][1]:
                merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    return merged


def subtract(ranges: Iterable[Range], minus: Iterable[Range]) -> list[Range]:
    """Points of ``ranges`` that are not in ``minus`` (normalized)."""
    base = normalize(ranges)
    cut = normalize(minus)
    out: list[Range] = []
    j = 0
    for s, e in base:
        # skip cuts that end before this range starts (they cannot affect later ranges either)
        while j < len(cut) and cut[j][1] <= s:
            j += 1
        cur = s
        k = j
        while k < len(cut) and cut[k][0] < e:
            cs, ce = cut[k]
            if cs > cur:
                out.append((cur, cs))
            cur = max(cur, ce)
            if cur >= e:
                break
            k += 1
        if cur < e:
            out.append((cur, e))
    return out


def intersect(a: Iterable[Range], b: Iterable[Range]) -> list[Range]:
    """Points that are in both ``a`` and ``b`` (normalized)."""
    x = normalize(a)
    y = normalize(b)
    out: list[Range] = []
    i = j = 0
    while i < len(x) and j < len(y):
        s = max(x[i][0], y[j][0])
        e = min(x[i][1], y[j][1])
        if s < e:
            out.append((s, e))
        if x[i][1] < y[j][1]:
            i += 1
        else:
            j += 1
    return out


def overlaps(a: Range, b: Range) -> bool:
    """True when the half-open ranges share at least one instant (empty ranges overlap nothing)."""
    a0, a1 = _utc(a[0]), _utc(a[1])
    b0, b1 = _utc(b[0]), _utc(b[1])
    return a0 < a1 and b0 < b1 and a0 < b1 and b0 < a1


# --------------------------------------------------------------------------- local time


def local_instant(day: date, wall: time, tz: tzinfo) -> datetime:
    """The UTC instant of local wall-clock ``wall`` on ``day`` in ``tz``.

    Uses PEP 495 semantics with ``fold=0``: in a DST gap the nonexistent wall time is read with
    the pre-transition offset, which lands *after* the gap (02:30 -> 03:30 on a spring-forward
    night); in a DST fold the first (summer-time) occurrence is taken.
    """
    naive = datetime.combine(day, wall.replace(tzinfo=None, fold=0))
    return naive.replace(tzinfo=tz).astimezone(UTC)


def local_day_bounds(day: date, tz: tzinfo) -> Range:
    """``[local midnight of day, local midnight of the next day)`` in UTC (23/24/25 hours long)."""
    return local_instant(day, time(0, 0), tz), local_instant(day + timedelta(days=1), time(0, 0), tz)


@dataclass(frozen=True)
class WeeklyHours:
    """A recurring opening interval on one weekday, in the resource's local wall-clock time."""

    weekday: int  # 0 = Monday (date.weekday())
    start: time
    end: time  # > start; midnight as an end is not allowed (use 23:59 or an `extra` range)

    def __post_init__(self) -> None:
        if not 0 <= self.weekday <= 6:
            raise ValueError(f"weekday must be 0..6, got {self.weekday}")
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("WeeklyHours times are local wall-clock times and must be naive")
        if not self.end > self.start:
            raise ValueError(f"end {self.end} must be after start {self.start} (midnight end not allowed)")


def open_ranges(
    weekly: Iterable[WeeklyHours],
    tz: tzinfo,
    first_day: date,
    last_day: date,
    extra: Iterable[Range] = (),
    closed: Iterable[Range] = (),
) -> list[Range]:
    """Concrete open ranges (UTC) for local days ``first_day..last_day`` inclusive.

    Each ``WeeklyHours`` of a day's weekday becomes ``[local start, local end)`` converted with
    ``zoneinfo`` for that very date; the result is united with ``extra`` (one-off extra opening
    hours, used as given, not clipped to the day window) and then ``closed`` (closures,
    maintenance) is subtracted. Normalized.
    """
    by_weekday: dict[int, list[WeeklyHours]] = {}
    for wh in weekly:
        by_weekday.setdefault(wh.weekday, []).append(wh)
    ranges: list[Range] = []
    day = first_day
    one = timedelta(days=1)
    while day <= last_day:
        for wh in by_weekday.get(day.weekday(), ()):
            ranges.append((local_instant(day, wh.start, tz), local_instant(day, wh.end, tz)))
        day += one
    ranges.extend(extra)
    return subtract(ranges, closed)


# --------------------------------------------------------------------------- resources


@dataclass(frozen=True)
class ResourceCalendar:
    """Open hours and existing allocations of one bookable resource (machine, physicist, room).

    ``busy_units`` has one list per unit of capacity; each list holds the blocked ranges of the
    live allocations on that unit, *already including their buffers*. ``free_unit`` relies on
    normalized (sorted, merged) lists for its O(log n) bisect lookups: build calendars with
    ``prepare(cal)`` (``find_slots``/``course_options`` do it for you); an unprepared calendar
    passed to ``free_unit`` is prepared on the fly (correct, but O(n log n) for that call).
    """

    key: object
    open: list[Range]
    busy_units: list[list[Range]]
    buffer_before: timedelta = timedelta(0)
    buffer_after: timedelta = timedelta(0)
    # set by prepare(); a calendar built with prepared=True is trusted to be normalized already
    prepared: bool = field(default=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if len(self.busy_units) < 1:
            raise ValueError("a resource needs capacity >= 1 (one busy list per unit)")
        if self.buffer_before < timedelta(0) or self.buffer_after < timedelta(0):
            raise ValueError("buffers must not be negative")

    @property
    def capacity(self) -> int:
        return len(self.busy_units)


def prepare(cal: ResourceCalendar) -> ResourceCalendar:
    """Return a copy with ``open`` and every busy list normalized, ready for bisect lookups."""
    if cal.prepared:
        return cal
    return replace(
        cal,
        open=normalize(cal.open),
        busy_units=[normalize(unit) for unit in cal.busy_units],
        prepared=True,
    )


def blocked_window(cal: ResourceCalendar, session: Range) -> Range:
    """What a session occupies on the resource: ``[start - buffer_before, end + buffer_after)`` (UTC)."""
    return _utc(session[0]) - cal.buffer_before, _utc(session[1]) + cal.buffer_after


def inside(ranges: list[Range], s: datetime, e: datetime) -> bool:
    """``[s, e)`` lies inside one range of the normalized ``ranges``."""
    i = bisect_right(ranges, s, key=_start) - 1
    return i >= 0 and ranges[i][1] >= e


def _clear(busy: list[Range], s: datetime, e: datetime) -> bool:
    """``[s, e)`` overlaps nothing in the normalized ``busy`` list.

    Only the last busy range starting before ``e`` can overlap: ends grow with starts.
    """
    i = bisect_left(busy, e, key=_start) - 1
    return i < 0 or busy[i][1] <= s


def _free_unit(cal: ResourceCalendar, s: datetime, e: datetime) -> int | None:
    # cal is prepared; s, e are UTC
    if not (s < e and inside(cal.open, s, e)):
        return None
    ws, we = s - cal.buffer_before, e + cal.buffer_after
    for idx, busy in enumerate(cal.busy_units):
        if _clear(busy, ws, we):
            return idx
    return None


def free_unit(cal: ResourceCalendar, session: Range) -> int | None:
    """Lowest unit index that can take ``session``, or ``None``.

    The session itself must lie inside one open range; its blocked window (session plus this
    resource's buffers, which may reach outside open hours) must not overlap any busy range of
    the unit. O(capacity * log n) on a prepared calendar.
    """
    return _free_unit(prepare(cal), _utc(session[0]), _utc(session[1]))


# --------------------------------------------------------------------------- slots


def _common_open(cals: Sequence[ResourceCalendar]) -> list[Range]:
    return reduce(intersect, (c.open for c in cals[1:]), cals[0].open)


def _candidate_starts(
    common: list[Range], duration: timedelta, step: timedelta, earliest: datetime, latest: datetime
) -> Iterable[datetime]:
    """Starts aligned to ``step`` from each common range's start, with notice/horizon/fit applied."""
    for rs, re_ in common:
        if rs >= latest:
            break
        s = rs
        if s < earliest:
            s = rs + step * -((rs - earliest) // step)  # first aligned start >= earliest
        while s < latest and s + duration <= re_:
            yield s
            s += step


def _check_args(calendars: Sequence[ResourceCalendar], duration: timedelta, step: timedelta) -> None:
    if not calendars:
        raise ValueError("at least one resource calendar is required")
    if duration <= timedelta(0):
        raise ValueError("duration must be positive")
    if step <= timedelta(0):
        raise ValueError("step must be positive")


def find_slots(
    calendars: Sequence[ResourceCalendar],
    duration: timedelta,
    step: timedelta,
    earliest: datetime,
    latest: datetime,
) -> list[Range]:
    """Free ``[s, s + duration)`` slots (UTC) where *every* calendar has a free unit.

    Candidate starts walk each range of the intersection of all calendars' open ranges from its
    start in multiples of ``step``; kept when ``s >= earliest``, ``s < latest`` and the session
    ends inside that range. Sorted, without duplicates.
    """
    _check_args(calendars, duration, step)
    cals = [prepare(c) for c in calendars]
    earliest, latest = _utc(earliest), _utc(latest)
    return [
        (s, s + duration)
        for s in _candidate_starts(_common_open(cals), duration, step, earliest, latest)
        if all(_free_unit(c, s, s + duration) is not None for c in cals)
    ]


# --------------------------------------------------------------------------- courses


_KINDS = ("single", "consecutive_working_days", "days")


@dataclass(frozen=True)
class CoursePattern:
    """Shape of a multi-session course (e.g. 25 radiotherapy fractions on consecutive working days)."""

    sessions: int
    kind: str  # "single" | "consecutive_working_days" | "days"
    offsets: tuple[int, ...] = ()  # "days": calendar-day offsets from the first session, offsets[0] == 0
    time_window: timedelta | None = timedelta(hours=1)  # ± the first session's local time; None = any

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"unknown course kind {self.kind!r}")
        if self.sessions < 1:
            raise ValueError("a course needs at least one session")
        if self.kind == "single" and self.sessions != 1:
            raise ValueError("a 'single' course has exactly one session")
        if self.kind == "days":
            offs = tuple(self.offsets)
            if len(offs) != self.sessions or offs[0] != 0:
                raise ValueError("'days' needs one offset per session, starting with 0")
            if any(b <= a for a, b in zip(offs, offs[1:], strict=False)):
                raise ValueError("'days' offsets must be strictly increasing")
        if self.time_window is not None and self.time_window < timedelta(0):
            raise ValueError("time_window must not be negative")

    def default_span(self) -> timedelta:
        """How far past the booking horizon later sessions may reach when no horizon_end is given."""
        if self.kind == "single":
            return timedelta(0)
        if self.kind == "days":
            return timedelta(days=self.offsets[-1] + 1)
        # generous: enough for at least one working day per week
        return timedelta(days=7 * self.sessions)


@dataclass(frozen=True)
class CourseOption:
    start: datetime
    sessions: tuple[Range, ...]


@dataclass
class _Day:
    slots: list[Range]  # free slots starting this local day, in time order
    secs: list[int] = field(default_factory=list)  # wall-clock seconds since local midnight, ascending
    by_secs: list[Range] = field(default_factory=list)  # slots in the order of `secs`

    def index(self, tz: tzinfo) -> None:
        # sorted by wall time (a DST fold can repeat wall times; ties go to the earlier instant)
        pairs = sorted((_wall_seconds(s.astimezone(tz)), s, e) for s, e in self.slots)
        self.secs = [p[0] for p in pairs]
        self.by_secs = [(p[1], p[2]) for p in pairs]


def _wall_seconds(local: datetime) -> int:
    return local.hour * 3600 + local.minute * 60 + local.second


def _pick(day: _Day | None, target: int, window: int | None) -> Range | None:
    """Free slot of ``day`` closest to local time ``target`` (ties: the earlier), within ``window``."""
    if day is None:
        return None
    secs = day.secs
    i = bisect_left(secs, target)
    best: int | None = None
    for j in (i - 1, i):  # nearest below, then nearest at/above: a tie keeps the earlier one
        if 0 <= j < len(secs) and (best is None or abs(secs[j] - target) < abs(secs[best] - target)):
            best = j
    if best is None or (window is not None and abs(secs[best] - target) > window):
        return None
    return day.by_secs[best]


def course_options(
    calendars: Sequence[ResourceCalendar],
    duration: timedelta,
    step: timedelta,
    earliest: datetime,
    latest: datetime,
    pattern: CoursePattern,
    tz: tzinfo,
    horizon_end: datetime | None = None,
) -> list[CourseOption]:
    """Whole-course options whose first session starts in ``[earliest, latest)``.

    Later sessions may start after ``latest`` but must start before ``horizon_end`` (default:
    ``latest + pattern.default_span()``); nothing at all is offered at or after ``horizon_end``.
    Session k lands on the k-th next *working day* ("consecutive_working_days") or on
    ``first_date + offsets[k]`` ("days"), at the free slot whose local wall-clock start is closest
    to the first session's (ties: earlier), within ``±time_window``. A working day is a local day
    on which the common open hours admit at least one step-aligned session of ``duration``
    (regardless of bookings): weekends/closures are skipped, but a fully booked open day breaks
    the course. All-or-nothing; at most one option per local start date (its earliest start).

    Slots for the whole horizon are computed once and indexed by local date.
    """
    _check_args(calendars, duration, step)
    cals = [prepare(c) for c in calendars]
    earliest, latest = _utc(earliest), _utc(latest)
    horizon = _utc(horizon_end) if horizon_end is not None else latest + pattern.default_span()

    # One pass over the horizon: working days (from open hours alone) and free slots by local date.
    days: dict[date, _Day] = {}
    working: list[date] = []
    for s in _candidate_starts(_common_open(cals), duration, step, earliest, horizon):
        d = s.astimezone(tz).date()
        if not working or working[-1] < d:  # (a fold at midnight could step a date back)
            working.append(d)
        e = s + duration
        if all(_free_unit(c, s, e) is not None for c in cals):
            days.setdefault(d, _Day([])).slots.append((s, e))
    for day in days.values():
        day.index(tz)
    working_index = {d: i for i, d in enumerate(working)}

    window = None if pattern.time_window is None else int(pattern.time_window.total_seconds())
    gap_before = max(c.buffer_before for c in cals)
    gap_after = max(c.buffer_after for c in cals)
    memo: dict[tuple[date, int], Range | None] = {}

    def pick(d: date, target: int) -> Range | None:
        key = (d, target)
        if key not in memo:
            memo[key] = _pick(days.get(d), target, window)
        return memo[key]

    def later_dates(d: date) -> list[date] | None:
        if pattern.sessions == 1:
            return []
        if pattern.kind == "days":
            return [d + timedelta(days=o) for o in pattern.offsets[1:]]
        i = working_index[d]
        nxt = working[i + 1 : i + pattern.sessions]
        return nxt if len(nxt) == pattern.sessions - 1 else None  # horizon too short

    def build(first: Range, d: date) -> CourseOption | None:
        dates = later_dates(d)
        if dates is None:
            return None
        target = _wall_seconds(first[0].astimezone(tz))
        sessions = [first]
        for ld in dates:
            slot = pick(ld, target)
            if slot is None:
                return None
            sessions.append(slot)
        # Sessions of one course must not collide with each other (only conceivable when sessions or
        # buffers span midnight): be conservative and reject such a course.
        for a, b in zip(sessions, sessions[1:], strict=False):
            if a[1] + gap_after > b[0] - gap_before:
                return None
        return CourseOption(start=first[0], sessions=tuple(sessions))

    options: list[CourseOption] = []
    for d in sorted(days):
        for first in days[d].slots:
            if first[0] >= latest:
                break
            option = build(first, d)
            if option is not None:
                options.append(option)
                break  # one option per local start date: its earliest workable start
    return options
