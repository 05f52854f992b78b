"""Tests for the pure availability engine (no Django needed).

Run in isolation with: python -m pytest tests/bookings/test_availability.py -p no:django
"""

import random
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bookings.engine.availability import (
    CourseOption,
    CoursePattern,
    ResourceCalendar,
    WeeklyHours,
    blocked_window,
    course_options,
    find_slots,
    free_unit,
    intersect,
    local_day_bounds,
    normalize,
    open_ranges,
    overlaps,
    prepare,
    subtract,
)

ALMATY = ZoneInfo("Asia/Almaty")
BERLIN = ZoneInfo("Europe/Berlin")
MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)


def utc(*args):
    return datetime(*args, tzinfo=UTC)


def local(tz, *args):
    return datetime(*args, tzinfo=tz)


def weekdays(start=time(9), end=time(17)):
    return [WeeklyHours(wd, start, end) for wd in range(5)]


def calendar(open_, busy=None, capacity=1, key="r", before=timedelta(0), after=timedelta(0)):
    units = [list(u) for u in busy] if busy is not None else [[] for _ in range(capacity)]
    return ResourceCalendar(key=key, open=open_, busy_units=units, buffer_before=before, buffer_after=after)


def local_starts(slots, tz=ALMATY):
    return [s.astimezone(tz).replace(tzinfo=None) for s, _ in slots]


def local_day(day, start, end, tz=ALMATY):
    """A local [start, end) on `day` as an aware range (for busy lists and closures)."""
    return datetime.combine(day, start, tzinfo=tz), datetime.combine(day, end, tzinfo=tz)


# --------------------------------------------------------------------------- range algebra, fixed


def test_normalize_merges_overlapping_and_touching_and_drops_empty():
    a = (utc(2025, 1, 1, 9), utc(2025, 1, 1, 10))
    b = (utc(2025, 1, 1, 10), utc(2025, 1, 1, 11))  # touches a
    c = (utc(2025, 1, 1, 10, 30), utc(2025, 1, 1, 12))  # overlaps b
    empty = (utc(2025, 1, 1, 13), utc(2025, 1, 1, 13))
    reversed_ = (utc(2025, 1, 1, 15), utc(2025, 1, 1, 14))
    d = (utc(2025, 1, 1, 14), utc(2025, 1, 1, 15))
    assert normalize([d, empty, c, reversed_, a, b]) == [(a[0], c[1]), d]


def test_normalize_outputs_utc_for_local_inputs():
    r = (local(ALMATY, 2025, 1, 1, 9), local(ALMATY, 2025, 1, 1, 10))
    [(s, e)] = normalize([r])
    assert s.tzinfo is UTC and e.tzinfo is UTC
    assert (s, e) == (utc(2025, 1, 1, 4), utc(2025, 1, 1, 5))


def test_naive_datetimes_are_rejected():
    with pytest.raises(ValueError):
        normalize([(datetime(2025, 1, 1, 9), datetime(2025, 1, 1, 10))])


def test_subtract_and_intersect_basic():
    day = [(utc(2025, 1, 1, 9), utc(2025, 1, 1, 17))]
    lunch = [(utc(2025, 1, 1, 12), utc(2025, 1, 1, 13))]
    assert subtract(day, lunch) == [
        (utc(2025, 1, 1, 9), utc(2025, 1, 1, 12)),
        (utc(2025, 1, 1, 13), utc(2025, 1, 1, 17)),
    ]
    assert intersect(day, lunch) == lunch
    assert subtract(lunch, day) == []
    assert intersect(day, []) == []


def test_overlaps_is_half_open():
    a = (utc(2025, 1, 1, 9), utc(2025, 1, 1, 10))
    assert not overlaps(a, (utc(2025, 1, 1, 10), utc(2025, 1, 1, 11)))
    assert overlaps(a, (utc(2025, 1, 1, 9, 59), utc(2025, 1, 1, 11)))
    assert not overlaps(a, (utc(2025, 1, 1, 9, 30), utc(2025, 1, 1, 9, 30)))  # empty overlaps nothing


# --------------------------------------------------------------------------- time zones


def test_almaty_is_utc_plus_5_from_march_2024():
    # tzdata 2024a: Kazakhstan unified on UTC+5 from 2024-03-01. Pins that the installed tzdata knows it.
    [(s, e)] = open_ranges(weekdays(), ALMATY, date(2024, 3, 4), date(2024, 3, 4))
    assert (s, e) == (utc(2024, 3, 4, 4), utc(2024, 3, 4, 12))


def test_almaty_was_utc_plus_6_before_march_2024():
    [(s, e)] = open_ranges(weekdays(), ALMATY, date(2024, 2, 26), date(2024, 2, 26))
    assert (s, e) == (utc(2024, 2, 26, 3), utc(2024, 2, 26, 11))


def test_open_ranges_across_the_almaty_change_use_each_dates_offset():
    ranges = open_ranges(weekdays(), ALMATY, date(2024, 2, 29), date(2024, 3, 1))
    assert ranges == [(utc(2024, 2, 29, 3), utc(2024, 2, 29, 11)), (utc(2024, 3, 1, 4), utc(2024, 3, 1, 12))]


def test_berlin_spring_forward_gives_right_instants():
    sat_sun = [WeeklyHours(5, time(9), time(12)), WeeklyHours(6, time(9), time(12))]
    ranges = open_ranges(sat_sun, BERLIN, date(2025, 3, 29), date(2025, 3, 30))
    assert ranges == [
        (utc(2025, 3, 29, 8), utc(2025, 3, 29, 11)),
        (utc(2025, 3, 30, 7), utc(2025, 3, 30, 10)),
    ]
    slots = find_slots([calendar(ranges)], HOUR, HOUR, utc(2025, 3, 29), utc(2025, 3, 31))
    assert [s.astimezone(BERLIN).hour for s, _ in slots] == [9, 10, 11, 9, 10, 11]


def test_nonexistent_local_time_moves_forward():
    # 2025-03-30 02:00 -> 03:00 in Berlin: 02:30 does not exist and becomes 03:30 CEST (01:30 UTC)
    ranges = open_ranges([WeeklyHours(6, time(2, 30), time(4))], BERLIN, date(2025, 3, 30), date(2025, 3, 30))
    assert ranges == [(utc(2025, 3, 30, 1, 30), utc(2025, 3, 30, 2))]
    # hours lying entirely in the gap vanish instead of crashing
    assert open_ranges([WeeklyHours(6, time(2), time(3))], BERLIN, date(2025, 3, 30), date(2025, 3, 30)) == []


def test_berlin_fall_back_gives_right_instants_and_takes_first_ambiguous_time():
    sunday = [WeeklyHours(6, time(9), time(12))]
    assert open_ranges(sunday, BERLIN, date(2025, 10, 26), date(2025, 10, 26)) == [
        (utc(2025, 10, 26, 8), utc(2025, 10, 26, 11))
    ]
    # 02:30 happens twice; fold=0 is the CEST one (00:30 UTC). 03:30 is CET (02:30 UTC): two real hours.
    night = [WeeklyHours(6, time(2, 30), time(3, 30))]
    ranges = open_ranges(night, BERLIN, date(2025, 10, 26), date(2025, 10, 26))
    assert ranges == [(utc(2025, 10, 26, 0, 30), utc(2025, 10, 26, 2, 30))]
    slots = find_slots([calendar(ranges)], 30 * MIN, 30 * MIN, utc(2025, 10, 26), utc(2025, 10, 27))
    assert len(slots) == 4


def test_local_day_bounds_follow_dst():
    s, e = local_day_bounds(date(2025, 3, 30), BERLIN)
    assert (s, e) == (utc(2025, 3, 29, 23), utc(2025, 3, 30, 22)) and e - s == 23 * HOUR
    s, e = local_day_bounds(date(2025, 10, 26), BERLIN)
    assert e - s == 25 * HOUR
    assert local_day_bounds(date(2024, 3, 4), ALMATY) == (utc(2024, 3, 3, 19), utc(2024, 3, 4, 19))


def test_weekly_hours_reject_midnight_end_and_bad_weekday():
    with pytest.raises(ValueError):
        WeeklyHours(0, time(9), time(0))
    with pytest.raises(ValueError):
        WeeklyHours(7, time(9), time(10))


# --------------------------------------------------------------------------- open hours and slots


MON = date(2025, 6, 2)  # a Monday; 2025-06-07/08 is the weekend


def test_slots_start_at_opening_in_multiples_of_step_and_respect_notice():
    cal = calendar(open_ranges(weekdays(time(9), time(11)), ALMATY, MON, MON))
    slots = find_slots([cal], HOUR, 30 * MIN, utc(2025, 6, 1), utc(2025, 6, 3))
    assert local_starts(slots) == [
        datetime(2025, 6, 2, 9),
        datetime(2025, 6, 2, 9, 30),
        datetime(2025, 6, 2, 10),
    ]
    assert all(s.tzinfo is UTC and e - s == HOUR for s, e in slots)
    # notice: earliest at 09:10 local -> first slot is the next aligned start, 09:30
    late = find_slots([cal], HOUR, 30 * MIN, local(ALMATY, 2025, 6, 2, 9, 10), utc(2025, 6, 3))
    assert local_starts(late)[0] == datetime(2025, 6, 2, 9, 30)
    # horizon: nothing starting at or after `latest`
    early = find_slots([cal], HOUR, 30 * MIN, utc(2025, 6, 1), local(ALMATY, 2025, 6, 2, 9, 30))
    assert local_starts(early) == [datetime(2025, 6, 2, 9)]


def test_closure_day_has_no_slots():
    closure = [local_day(date(2025, 6, 4), time(0), time(23, 59))]
    cal = calendar(open_ranges(weekdays(), ALMATY, MON, MON + timedelta(days=6), closed=closure))
    days = {s.date() for s in local_starts(find_slots([cal], HOUR, HOUR, utc(2025, 6, 1), utc(2025, 6, 9)))}
    assert days == {date(2025, 6, 2), date(2025, 6, 3), date(2025, 6, 5), date(2025, 6, 6)}


def test_partial_closure_removes_only_its_hours():
    maintenance = [local_day(MON, time(10), time(12))]
    cal = calendar(open_ranges(weekdays(time(9), time(13)), ALMATY, MON, MON, closed=maintenance))
    assert [
        s.hour for s in local_starts(find_slots([cal], HOUR, HOUR, utc(2025, 6, 1), utc(2025, 6, 3)))
    ] == [9, 12]


def test_extra_hours_add_a_saturday():
    saturday = date(2025, 6, 7)
    extra = [local_day(saturday, time(10), time(14))]
    cal = calendar(open_ranges(weekdays(), ALMATY, MON, MON + timedelta(days=6), extra=extra))
    slots = find_slots([cal], HOUR, HOUR, utc(2025, 6, 7), utc(2025, 6, 9))
    assert local_starts(slots) == [datetime(2025, 6, 7, h) for h in (10, 11, 12, 13)]


def test_buffers_push_the_next_slot():
    open_ = open_ranges(weekdays(time(9), time(13)), ALMATY, MON, MON)
    # an existing 09:00-10:00 allocation with its 30 min after-buffer already applied blocks 09:00-10:30
    busy = [[local_day(MON, time(9), time(10, 30))]]
    cal = calendar(open_, busy=busy, after=30 * MIN)
    slots = find_slots([cal], HOUR, 30 * MIN, utc(2025, 6, 1), utc(2025, 6, 3))
    assert [s.time() for s in local_starts(slots)] == [time(10, 30), time(11), time(11, 30), time(12)]
    # a before-buffer keeps a new session away from the end of the previous block too
    cal = calendar(open_, busy=busy, before=15 * MIN)
    slots = find_slots([cal], HOUR, 30 * MIN, utc(2025, 6, 1), utc(2025, 6, 3))
    assert local_starts(slots)[0].time() == time(11)
    assert blocked_window(cal, slots[0]) == (slots[0][0] - 15 * MIN, slots[0][1])


def test_buffers_may_reach_outside_open_hours():
    cal = calendar(open_ranges(weekdays(time(9), time(10)), ALMATY, MON, MON), before=HOUR, after=HOUR)
    assert len(find_slots([cal], HOUR, HOUR, utc(2025, 6, 1), utc(2025, 6, 3))) == 1


def test_multi_resource_slots_need_every_resource():
    machine = calendar(open_ranges(weekdays(time(8), time(18)), ALMATY, MON, MON), key="linac")
    physicist = calendar(
        open_ranges(weekdays(time(10), time(14)), ALMATY, MON, MON),
        busy=[[local_day(MON, time(11), time(12))]],
        key="physicist",
    )
    slots = find_slots([machine, physicist], HOUR, HOUR, utc(2025, 6, 1), utc(2025, 6, 3))
    assert [s.hour for s in local_starts(slots)] == [10, 12, 13]
    # the machine being busy at 12 removes that slot as well
    machine = calendar(machine.open, busy=[[local_day(MON, time(12), time(13))]], key="linac")
    slots = find_slots([machine, physicist], HOUR, HOUR, utc(2025, 6, 1), utc(2025, 6, 3))
    assert [s.hour for s in local_starts(slots)] == [10, 13]


def test_capacity_two_allows_two_overlapping_bookings_but_not_three():
    open_ = open_ranges(weekdays(), ALMATY, MON, MON)
    session = local_day(MON, time(10), time(11))
    overlapping = local_day(MON, time(10, 30), time(11, 30))
    cal = calendar(open_, capacity=2)
    assert free_unit(cal, session) == 0
    cal = calendar(open_, busy=[[session], []])
    assert free_unit(cal, overlapping) == 1
    cal = calendar(open_, busy=[[session], [overlapping]])
    assert free_unit(cal, local_day(MON, time(10, 15), time(11, 15))) is None
    assert free_unit(cal, local_day(MON, time(11, 30), time(12, 30))) == 0
    starts = local_starts(find_slots([cal], HOUR, 30 * MIN, utc(2025, 6, 1), utc(2025, 6, 3)))
    assert datetime(2025, 6, 2, 10) not in starts and datetime(2025, 6, 2, 9) in starts  # 09:00-10:00 touches


def test_free_unit_requires_session_inside_open_hours():
    cal = calendar(open_ranges(weekdays(time(9), time(12)), ALMATY, MON, MON))
    assert free_unit(cal, local_day(MON, time(11, 30), time(12, 30))) is None
    assert free_unit(cal, local_day(MON, time(8, 30), time(9, 30))) is None
    assert free_unit(cal, local_day(MON, time(11), time(12))) == 0


def test_free_unit_handles_unsorted_busy_lists():
    open_ = open_ranges(weekdays(), ALMATY, MON, MON)
    busy = [
        [
            local_day(MON, time(15), time(16)),
            local_day(MON, time(9), time(10)),
            local_day(MON, time(12), time(13)),
        ]
    ]
    cal = calendar(open_, busy=busy)
    assert free_unit(cal, local_day(MON, time(9, 30), time(10, 30))) is None
    assert free_unit(cal, local_day(MON, time(10), time(12))) == 0
    assert free_unit(prepare(cal), local_day(MON, time(12, 59), time(13, 30))) is None
    assert prepare(cal).busy_units[0] == sorted(normalize(busy[0]))


def test_resource_calendar_needs_capacity():
    with pytest.raises(ValueError):
        ResourceCalendar(key="x", open=[], busy_units=[])


# --------------------------------------------------------------------------- courses


THU = date(2025, 6, 5)
WEEKS = open_ranges(weekdays(), ALMATY, MON, MON + timedelta(days=27))


def thursday_10am_course(busy=None, pattern=None, closed=(), **kw):
    open_ = subtract(WEEKS, closed)
    cal = calendar(open_, busy=busy or [[]])
    pattern = pattern or CoursePattern(sessions=5, kind="consecutive_working_days")
    first = local(ALMATY, 2025, 6, 5, 10)
    return course_options([cal], HOUR, 30 * MIN, first, first + MIN, pattern, ALMATY, **kw)


MONDAY_CLOSURE = [local_day(date(2025, 6, 9), time(0), time(23, 59))]


def test_course_skips_weekend_and_closure_and_keeps_its_time():
    [option] = thursday_10am_course(closed=MONDAY_CLOSURE)
    assert isinstance(option, CourseOption)
    assert option.start == option.sessions[0][0] == local(ALMATY, 2025, 6, 5, 10)
    assert local_starts(option.sessions) == [
        datetime(2025, 6, d, 10) for d in (5, 6, 10, 11, 12)
    ]  # Thu, Fri, (weekend, closed Monday) Tue, Wed, Thu


def test_course_moves_within_the_time_window_preferring_closest_then_earliest():
    friday_taken = [[local_day(date(2025, 6, 6), time(10), time(11))]]
    [option] = thursday_10am_course(busy=friday_taken, closed=MONDAY_CLOSURE)
    # Friday: 09:30 and 10:30 collide; 09:00 and 11:00 are equally close -> the earlier one
    assert local_starts(option.sessions)[1] == datetime(2025, 6, 6, 9)
    assert [s.time() for s in local_starts(option.sessions)][2:] == [time(10)] * 3


def test_course_is_not_offered_when_one_day_is_full():
    wednesday_full = [[local_day(date(2025, 6, 11), time(0), time(23, 59))]]
    assert thursday_10am_course(busy=wednesday_full, closed=MONDAY_CLOSURE) == []


def test_course_is_not_offered_when_a_day_only_has_slots_outside_the_window():
    wednesday_morning = [[local_day(date(2025, 6, 11), time(9), time(11, 30))]]
    assert thursday_10am_course(busy=wednesday_morning) == []
    anytime = CoursePattern(sessions=5, kind="consecutive_working_days", time_window=None)
    [option] = thursday_10am_course(busy=wednesday_morning, pattern=anytime)
    assert local_starts(option.sessions)[4] == datetime(2025, 6, 11, 11, 30)  # Thu Fri Mon Tue *Wed*


def test_course_sessions_may_pass_latest_but_not_horizon_end():
    assert len(thursday_10am_course()) == 1  # default horizon is long enough
    # Thu..Wed needs the 4th session on Tuesday 10th: a horizon on Tuesday morning cuts it off
    assert thursday_10am_course(horizon_end=local(ALMATY, 2025, 6, 10, 9)) == []
    assert len(thursday_10am_course(horizon_end=local(ALMATY, 2025, 6, 12, 10, 30))) == 1


def test_days_pattern_uses_calendar_day_offsets():
    pattern = CoursePattern(sessions=3, kind="days", offsets=(0, 2, 5))
    cal = calendar(WEEKS)
    wed = local(ALMATY, 2025, 6, 4, 10)
    [option] = course_options([cal], HOUR, HOUR, wed, wed + MIN, pattern, ALMATY)
    assert local_starts(option.sessions) == [
        datetime(2025, 6, 4, 10),
        datetime(2025, 6, 6, 10),
        datetime(2025, 6, 9, 10),
    ]
    # from Monday, offset 5 is a closed Saturday: offsets are calendar days, nothing is skipped
    mon = local(ALMATY, 2025, 6, 2, 10)
    assert course_options([cal], HOUR, HOUR, mon, mon + MIN, pattern, ALMATY) == []


def test_one_course_option_per_start_date_at_its_earliest_time():
    busy = [[local_day(date(2025, 6, 3), time(9), time(10))]]
    cal = calendar(WEEKS, busy=busy)
    pattern = CoursePattern(sessions=3, kind="consecutive_working_days")
    options = course_options([cal], HOUR, HOUR, utc(2025, 6, 1), utc(2025, 6, 9), pattern, ALMATY)
    assert [local_starts([o.sessions[0]])[0] for o in options] == [
        datetime(2025, 6, 2, 9),
        datetime(2025, 6, 3, 10),
        datetime(2025, 6, 4, 9),
        datetime(2025, 6, 5, 9),
        datetime(2025, 6, 6, 9),
    ]
    # the Tuesday-10:00 course keeps 10:00 on Wednesday and Thursday
    assert [s.hour for s in local_starts(options[1].sessions)] == [10, 10, 10]
    # the Monday 09:00 course meets the taken Tuesday 09:00 and moves to 10:00
    assert [s.hour for s in local_starts(options[0].sessions)] == [9, 10, 9]


def test_single_pattern_offers_the_first_slot_of_each_day():
    cal = calendar(WEEKS)
    options = course_options(
        [cal], HOUR, HOUR, utc(2025, 6, 1), utc(2025, 6, 7), CoursePattern(1, "single"), ALMATY
    )
    assert [local_starts(o.sessions) for o in options] == [[datetime(2025, 6, d, 9)] for d in range(2, 7)]


def test_course_pattern_validation():
    with pytest.raises(ValueError):
        CoursePattern(3, "days", offsets=(0, 2))
    with pytest.raises(ValueError):
        CoursePattern(3, "days", offsets=(1, 2, 3))
    with pytest.raises(ValueError):
        CoursePattern(2, "weekly")


def test_month_of_35_session_courses_go_around_a_full_day():
    """The worst case for the course search (its speed is measured by `make bench`, slot search at scale)."""
    rng = random.Random(7)
    first_day = date(2025, 1, 6)
    open_ = open_ranges(weekdays(time(8), time(20)), ALMATY, first_day, first_day + timedelta(days=140))
    units = []
    for _ in range(2):
        busy = []
        for day in range(140):
            d = first_day + timedelta(days=day)
            for _ in range(rng.randint(0, 8)):
                h = rng.randint(8, 19)
                busy.append(local_day(d, time(h), time(h, 30)))
        units.append(busy)
    # a full day three weeks out makes every course starting before it fail late: the worst case
    full = local_day(first_day + timedelta(days=21), time(0), time(23, 59))
    units = [u + [full] for u in units]
    machine = calendar(open_, busy=units, key="linac")
    physicist = calendar(open_, capacity=3, key="physicist")
    pattern = CoursePattern(sessions=35, kind="consecutive_working_days")
    earliest = local(ALMATY, 2025, 1, 6)
    options = course_options(
        [machine, physicist], 30 * MIN, 15 * MIN, earliest, earliest + timedelta(days=31), pattern, ALMATY
    )
    assert all(len(o.sessions) == 35 for o in options)
    assert options  # courses starting after the full day still fit
    assert not any(s < full[1] and full[0] < e for o in options for s, e in o.sessions), "no session on the full day"


# --------------------------------------------------------------------------- property tests

BASE = utc(2025, 3, 1)


def minute(m):
    return BASE + m * MIN


ranges_st = st.lists(
    st.tuples(st.integers(0, 600), st.integers(-5, 120)).map(lambda t: (minute(t[0]), minute(t[0] + t[1]))),
    max_size=12,
)
# some ranges expressed in another zone, to check that the algebra works on instants
mixed_ranges_st = st.lists(
    st.tuples(st.integers(0, 600), st.integers(1, 120), st.sampled_from([UTC, ALMATY, BERLIN])).map(
        lambda t: (minute(t[0]).astimezone(t[2]), minute(t[0] + t[1]).astimezone(t[2]))
    ),
    max_size=12,
)


def covered(ranges, m):
    p = minute(m) + 30 * timedelta(seconds=1)
    return any(s <= p < e for s, e in ranges)


PROBES = range(-10, 740)


def is_normal(ranges):
    return all(s < e and s.tzinfo is UTC for s, e in ranges) and all(
        a[1] < b[0] for a, b in zip(ranges, ranges[1:], strict=False)
    )


@given(ranges_st | mixed_ranges_st)
def test_normalize_is_canonical(a):
    n = normalize(a)
    assert is_normal(n)
    assert normalize(n) == n
    assert all(covered(n, m) == covered([r for r in a if r[0] < r[1]], m) for m in PROBES)


@given(ranges_st | mixed_ranges_st, ranges_st | mixed_ranges_st)
def test_subtract_intersect_laws(a, b):
    diff, both = subtract(a, b), intersect(a, b)
    assert is_normal(diff) and is_normal(both)
    assert not any(overlaps(x, y) for x in diff for y in b)  # subtract(a, b) is disjoint from b
    assert normalize(diff + both) == normalize(a)  # a = (a - b) ∪ (a ∩ b)
    assert both == intersect(b, a)
    assert subtract(both, a) == [] and subtract(both, b) == []
    na, nb = normalize(a), normalize(b)
    for m in PROBES:
        assert covered(diff, m) == (covered(na, m) and not covered(nb, m))
        assert covered(both, m) == (covered(na, m) and covered(nb, m))


TZS = [ZoneInfo(n) for n in ("Asia/Almaty", "Europe/Berlin", "America/New_York", "UTC")]


@st.composite
def weekly_st(draw):
    wd = draw(st.integers(0, 6))
    start = draw(st.integers(0, 94))  # quarter hours
    end = draw(st.integers(start + 1, 95))
    return WeeklyHours(wd, time(start // 4, 15 * (start % 4)), time(end // 4, 15 * (end % 4)))


@st.composite
def scenario(draw):
    tz = draw(st.sampled_from(TZS))
    first_day = draw(st.dates(date(2024, 1, 1), date(2025, 12, 20)))
    n_days = draw(st.integers(1, 8))
    last_day = first_day + timedelta(days=n_days - 1)
    origin = local_day_bounds(first_day, tz)[0]
    span = n_days * 24 * 60

    def some_ranges(max_size, max_len):
        return draw(
            st.lists(
                st.tuples(st.integers(-120, span), st.integers(1, max_len)).map(
                    lambda t: (origin + t[0] * MIN, origin + (t[0] + t[1]) * MIN)
                ),
                max_size=max_size,
            )
        )

    calendars = []
    for k in range(draw(st.integers(1, 2))):
        weekly = draw(st.lists(weekly_st(), max_size=10))
        open_ = open_ranges(
            weekly, tz, first_day, last_day, extra=some_ranges(2, 600), closed=some_ranges(3, 1500)
        )
        capacity = draw(st.integers(1, 3))
        busy = [some_ranges(8, 240) for _ in range(capacity)]  # unsorted, may overlap
        before = draw(st.integers(0, 6)) * 5 * MIN
        after = draw(st.integers(0, 6)) * 5 * MIN
        calendars.append(calendar(open_, busy=busy, key=k, before=before, after=after))
    duration = draw(st.integers(1, 24)) * 5 * MIN
    step = draw(st.one_of(st.just(duration), st.integers(1, 24).map(lambda n: n * 5 * MIN)))
    earliest = origin + draw(st.integers(-600, span)) * MIN
    latest = earliest + draw(st.integers(0, span)) * MIN
    return tz, calendars, duration, step, earliest, latest


def brute_free(cal, s, e):
    """Reference check without bisect, sorting or merging."""
    if not any(o0 <= s and e <= o1 for o0, o1 in cal.open):
        return False
    ws, we = s - cal.buffer_before, e + cal.buffer_after
    return any(all(not (b0 < we and ws < b1) for b0, b1 in unit) for unit in cal.busy_units)


SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(scenario())
def test_slots_are_sound_and_complete(sc):
    _, calendars, duration, step, earliest, latest = sc
    slots = find_slots(calendars, duration, step, earliest, latest)
    for s, e in slots:
        assert s.tzinfo is UTC and e - s == duration
        assert earliest <= s < latest
        for cal in calendars:
            assert any(o0 <= s and e <= o1 for o0, o1 in cal.open)  # never outside open hours
            unit = free_unit(cal, (s, e))
            assert unit is not None
            ws, we = blocked_window(cal, (s, e))
            assert not any(overlaps((ws, we), b) for b in cal.busy_units[unit])
    starts = [s for s, _ in slots]
    assert starts == sorted(set(starts))
    if step == duration:
        assert all(a[1] <= b[0] for a, b in zip(slots, slots[1:], strict=False))
    # completeness: every aligned start in the common open hours that is really free is returned
    common = calendars[0].open
    for cal in calendars[1:]:
        common = intersect(common, cal.open)
    expected = []
    for rs, re_ in common:
        s = rs
        while s + duration <= re_:
            if earliest <= s < latest and all(brute_free(c, s, s + duration) for c in calendars):
                expected.append((s, s + duration))
            s += step
    assert slots == expected


@SETTINGS
@given(scenario(), st.data())
def test_free_unit_matches_brute_force(sc, data):
    _, calendars, duration, _, earliest, _ = sc
    cal = calendars[0]
    prepared = prepare(cal)
    for _ in range(10):
        s = earliest + data.draw(st.integers(-600, 3000)) * MIN
        e = s + duration
        unit = free_unit(prepared, (s, e))
        assert (unit is not None) == brute_free(cal, s, e)
        if unit is not None:
            ws, we = blocked_window(cal, (s, e))
            assert not any(overlaps((ws, we), b) for b in cal.busy_units[unit])
            assert all(any(overlaps((ws, we), b) for b in cal.busy_units[u]) for u in range(unit))


@SETTINGS
@given(scenario(), st.integers(1, 4), st.sampled_from([None, 0, 30, 90]))
def test_course_options_are_consistent(sc, sessions, window):
    tz, calendars, duration, step, earliest, latest = sc
    time_window = None if window is None else window * MIN
    pattern = CoursePattern(sessions=sessions, kind="consecutive_working_days", time_window=time_window)
    horizon = latest + timedelta(days=10)
    options = course_options(calendars, duration, step, earliest, latest, pattern, tz, horizon_end=horizon)
    free = set(find_slots(calendars, duration, step, earliest, horizon))
    first_dates = [o.start.astimezone(tz).date() for o in options]
    assert first_dates == sorted(set(first_dates))  # at most one option per local start date
    for o in options:
        assert len(o.sessions) == sessions and o.start == o.sessions[0][0]
        assert earliest <= o.start < latest
        assert all(x in free for x in o.sessions)
        locals_ = [s.astimezone(tz) for s, _ in o.sessions]
        assert [d.date() for d in locals_] == sorted({d.date() for d in locals_})
        if time_window is not None:
            t0 = datetime.combine(date.min, locals_[0].time())
            assert all(abs(datetime.combine(date.min, d.time()) - t0) <= time_window for d in locals_)
        # it is the earliest start of its local date that works
        day = o.start.astimezone(tz).date()
        for s, _ in free:
            if earliest <= s < o.start and s.astimezone(tz).date() == day:
                assert (
                    course_options(calendars, duration, step, s, s + MIN, pattern, tz, horizon_end=horizon)
                    == []
                )
