"""Edges of the availability range algebra, written to kill mutants that survived `make mutate`
(docs/mutation.md). Pure Python, no database: every case is a boundary a patient or a clinic would notice —
a slot offered that overlaps a booking or a buffer, a free slot not offered, an empty range in the output.

Ranges are half-open ``[start, end)``; every result is compared whole, so an extra empty range, a range cut
one step too early or a cut skipped shows up.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bookings.engine.availability import (
    ResourceCalendar,
    free_unit,
    inside,
    intersect,
    normalize,
    overlaps,
    prepare,
    subtract,
)

ALMATY = ZoneInfo("Asia/Almaty")
MIN = timedelta(minutes=1)


def at(hour, minute=0, day=2):
    """An instant on 2025-06-``day`` (a Monday for day=2), UTC."""
    return datetime(2025, 6, day, hour, minute, tzinfo=UTC)


def r(h1, h2, day=2):
    """[h1, h2) in hours (fractions allowed) on one day, UTC."""
    return at(0, day=day) + timedelta(hours=h1), at(0, day=day) + timedelta(hours=h2)


def cal(open_, busy=((),), before=timedelta(0), after=timedelta(0)):
    return ResourceCalendar(key="machine", open=list(open_), busy_units=[list(u) for u in busy],
                            buffer_before=before, buffer_after=after)


# --------------------------------------------------------------------------------- normalize


def test_normalize_keeps_gaps_and_drops_every_empty_range():
    assert normalize([r(9, 9), r(10, 10), r(12, 11)]) == []
    assert normalize([r(9, 10), r(10.5, 11), r(10, 10)]) == [r(9, 10), r(10.5, 11)]  # a gap stays a gap
    # a range inside the previous one does not shorten it
    assert normalize([r(9, 12), r(10, 11)]) == [r(9, 12)]
    assert normalize([r(9, 12), r(10, 11), r(11.5, 13)]) == [r(9, 13)]
    # merging looks at the last merged range, not at the first
    assert normalize([r(1, 2), r(3, 4), r(3.5, 5), r(4.5, 6)]) == [r(1, 2), r(3, 6)]


def test_normalize_reads_local_ranges_as_instants():
    local = (datetime(2025, 6, 2, 14, tzinfo=ALMATY), datetime(2025, 6, 2, 15, tzinfo=ALMATY))  # 09:00-10:00 UTC
    assert normalize([local, r(10, 11)]) == [r(9, 11)]
    assert all(s.tzinfo is UTC and e.tzinfo is UTC for s, e in normalize([local]))


# --------------------------------------------------------------------------------- subtract


@pytest.mark.parametrize(("minus", "left"), [
    ([r(9, 10)], [r(10, 17)]),  # a cut at the very start leaves no empty range behind
    ([r(16, 17)], [r(9, 16)]),  # ... nor at the very end
    ([r(8, 9)], [r(9, 17)]),  # a cut ending where the range starts takes nothing
    ([r(17, 18)], [r(9, 17)]),  # a cut starting where the range ends takes nothing
    ([r(8, 18)], []),
    ([r(9, 17)], []),
    ([r(10, 11), r(12, 13)], [r(9, 10), r(11, 12), r(13, 17)]),
    ([r(8, 8.5), r(10, 10.5)], [r(9, 10), r(10.5, 17)]),  # a cut before the range does not hide the next one
    ([r(8, 8.5), r(8.6, 8.7), r(10, 10.5)], [r(9, 10), r(10.5, 17)]),
    ([r(10, 10.5), r(10.5, 11)], [r(9, 10), r(11, 17)]),  # touching cuts act as one
])
def test_subtract_one_range(minus, left):
    assert subtract([r(9, 17)], minus) == left


def test_subtract_carries_on_to_later_ranges_after_a_cut_covers_one_to_its_end():
    assert subtract([r(9, 12), r(13, 17)], [r(11, 12.5)]) == [r(9, 11), r(13, 17)]
    assert subtract([r(9, 12), r(13, 17)], [r(11, 13.5)]) == [r(9, 11), r(13.5, 17)]
    assert subtract([r(9, 10), r(11, 12), r(13, 14)], [r(9.5, 11.5)]) == [r(9, 9.5), r(11.5, 12), r(13, 14)]
    # a long cut spanning several ranges, then one more cut in the last
    assert subtract([r(9, 10), r(11, 12), r(13, 17)], [r(8, 13), r(15, 16)]) == [r(13, 15), r(16, 17)]


def test_subtract_a_cut_reaching_past_one_range_is_used_again_for_the_next():
    assert subtract([r(9, 10), r(10.5, 12)], [r(9.5, 11)]) == [r(9, 9.5), r(11, 12)]


# --------------------------------------------------------------------------------- intersect


@pytest.mark.parametrize(("a", "b", "both"), [
    ([r(9, 10)], [r(10, 11)], []),  # touching ranges share no instant: no empty range
    ([r(9, 12)], [r(10, 11)], [r(10, 11)]),
    ([r(10, 11)], [r(9, 12)], [r(10, 11)]),
    ([r(9, 11)], [r(10, 12)], [r(10, 11)]),
    ([r(9, 10), r(11, 12), r(13, 14)], [r(9.5, 13.5)], [r(9.5, 10), r(11, 12), r(13, 13.5)]),
    ([r(9.5, 13.5)], [r(9, 10), r(11, 12), r(13, 14)], [r(9.5, 10), r(11, 12), r(13, 13.5)]),
    ([r(9, 10), r(11, 12)], [r(9, 10), r(11, 12)], [r(9, 10), r(11, 12)]),  # equal ends
    ([r(1, 2), r(3, 4), r(5, 6)], [r(1.5, 5.5)], [r(1.5, 2), r(3, 4), r(5, 5.5)]),
    ([r(1, 2), r(3, 4)], [r(0, 1.5), r(1.7, 3.5), r(3.8, 9)], [r(1, 1.5), r(1.7, 2), r(3, 3.5), r(3.8, 4)]),
    ([r(1, 2)], [], []),
])
def test_intersect(a, b, both):
    assert intersect(a, b) == both


# --------------------------------------------------------------------------------- overlaps


@pytest.mark.parametrize(("a", "b", "expected"), [
    (r(9, 10), r(10, 11), False),
    (r(10, 11), r(9, 10), False),
    (r(9, 10), r(9.5, 10.5), True),
    (r(9.5, 10.5), r(9, 10), True),
    (r(9, 12), r(10, 11), True),
    (r(10, 11), r(9, 12), True),
    (r(9.5, 9.5), r(9, 10), False),  # an empty range overlaps nothing, on either side
    (r(9, 10), r(9.5, 9.5), False),
    (r(10, 9), r(9, 10), False),  # nor does a reversed one
    (r(9, 10), r(10, 9), False),
    (r(9, 10), r(11, 12), False),
    (r(11, 12), r(9, 10), False),
])
def test_overlaps_half_open(a, b, expected):
    assert overlaps(a, b) is expected
    local_b = (b[0].astimezone(ALMATY), b[1].astimezone(ALMATY))
    assert overlaps(a, local_b) is expected


# --------------------------------------------------------------------------------- inside, free units


def test_inside_needs_one_open_range_holding_the_whole_session():
    opened = normalize([r(9, 12), r(13, 17)])
    assert inside(opened, at(9), at(12))  # the first range, to its last minute
    assert inside(opened, at(13), at(17))
    assert not inside(opened, at(11), at(14))  # across the lunch gap
    assert not inside(opened, at(8), at(10))
    assert not inside(opened, at(12, 30), at(12, 45))
    assert not inside(opened, at(16), at(17, 1))
    assert not inside([], at(9), at(10))


def test_free_unit_needs_the_session_inside_open_hours_and_not_empty():
    c = cal([r(9, 12), r(13, 17)])
    assert free_unit(c, r(9, 10)) == 0  # the first open range
    assert free_unit(c, r(11, 12)) == 0  # up to closing
    assert free_unit(c, r(11.5, 12.5)) is None
    assert free_unit(c, r(10, 10)) is None  # an empty session is no session
    assert free_unit(c, r(10, 9)) is None


def test_a_busy_unit_blocks_only_what_overlaps_it():
    c = cal([r(8, 18)], busy=[[r(10, 11), r(14, 15)]])
    assert free_unit(c, r(9, 10)) == 0  # ends as the booking starts
    assert free_unit(c, r(11, 12)) == 0  # starts as it ends
    assert free_unit(c, r(12, 14)) == 0  # between two bookings, touching both
    for session in (r(9.5, 10.5), r(10.5, 11.5), r(10.25, 10.75), r(9, 12), r(13.5, 14.5), r(14.9, 15.5)):
        assert free_unit(c, session) is None, session


def test_the_first_booking_of_a_unit_blocks_too():
    c = cal([r(8, 18)], busy=[[r(10, 11)]])
    assert free_unit(c, r(10.5, 11.5)) is None
    assert free_unit(c, r(9.5, 10.5)) is None
    assert free_unit(c, r(10, 11)) is None


def test_the_lowest_free_unit_is_taken():
    c = cal([r(8, 18)], busy=[[r(10, 11)], [r(12, 13)], []])
    assert free_unit(c, r(10, 11)) == 1
    assert free_unit(c, r(12, 13)) == 0
    assert free_unit(c, r(10.5, 12.5)) == 2
    full = cal([r(8, 18)], busy=[[r(10, 11)], [r(10, 11)]])
    assert free_unit(full, r(10, 11)) is None


def test_buffers_before_and_after_keep_their_distance():
    quarter = 15 * MIN
    before = cal([r(8, 18)], busy=[[r(9, 10)]], before=quarter)
    assert free_unit(before, r(10, 11)) is None  # its set-up would start inside the previous session
    assert free_unit(before, r(10.25, 11)) == 0
    after = cal([r(8, 18)], busy=[[r(11, 12)]], after=quarter)
    assert free_unit(after, (at(10), at(10, 50))) is None  # its clean-up would run into the next session
    assert free_unit(after, (at(10), at(10, 45))) == 0
    # buffers may reach outside open hours: only the session must be inside them
    edge = cal([r(9, 17)], before=quarter, after=quarter)
    assert free_unit(edge, r(9, 10)) == 0 and free_unit(edge, r(16, 17)) == 0


def test_an_unprepared_calendar_is_prepared_for_the_lookup():
    c = cal([r(13, 17), r(9, 12)], busy=[[r(15, 16), r(10, 11)]])
    assert free_unit(c, r(10.5, 11.5)) is None
    assert free_unit(c, r(14, 15)) == 0
    assert prepare(c).open == [r(9, 12), r(13, 17)] and prepare(prepare(c)) == prepare(c)
