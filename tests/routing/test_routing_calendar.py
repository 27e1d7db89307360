"""WorkCalendar: fixed 2026 holiday cases and hypothesis properties.

The 2026 facts below are what chinesecalendar 1.11 ships (State Council schedule for 2026):
Spring Festival 15–23 Feb off, make-up Saturdays 14 Feb and 28 Feb; National Day (with Mid-Autumn on
25 Sep) 1–7 Oct off, make-up Sunday 20 Sep and Saturday 10 Oct; New Year 1–3 Jan off, make-up Sunday 4 Jan.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import chinese_calendar
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from routing.calendar import DEFAULT_OFFICE_HOURS, PACKAGE_YEARS, WorkCalendar

SH = ZoneInfo("Asia/Shanghai")
CAL = WorkCalendar()
H = timedelta(hours=1)


def sh(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=SH)


# ---------------------------------------------------------------- the package's 2026 schedule
def test_package_knows_2026_spring_festival_and_national_day() -> None:
    assert 2026 in PACKAGE_YEARS
    for day in range(15, 24):
        assert chinese_calendar.is_holiday(date(2026, 2, day)), day
        assert not CAL.is_working_day(date(2026, 2, day))
    for day in range(1, 8):
        assert not CAL.is_working_day(date(2026, 10, day))
    # make-up working weekend days (调休)
    for d in (date(2026, 1, 4), date(2026, 2, 14), date(2026, 2, 28), date(2026, 9, 20), date(2026, 10, 10)):
        assert d.weekday() >= 5
        assert CAL.is_working_day(d), d
    assert not CAL.is_working_day(date(2026, 10, 11))  # plain Sunday
    assert CAL.is_working_day(date(2026, 10, 8))


# ---------------------------------------------------------------- fixed cases
def test_brief_example_national_day() -> None:
    due = CAL.add_working_time(sh(2026, 9, 30, 16), timedelta(hours=8))
    assert due.isoformat() == "2026-10-08T16:30:00+08:00"
    assert CAL.working_time_between(sh(2026, 9, 30, 16), due) == timedelta(hours=8)
    assert CAL.working_time_between(due, sh(2026, 9, 30, 16)) == -timedelta(hours=8)


def test_national_day_three_working_days_uses_makeup_saturday() -> None:
    # 30 Sep 1.5 h, 8 Oct 7.5, 9 Oct 7.5, Sat 10 Oct (调休) 6 h → 16:00
    assert CAL.add_working_days(sh(2026, 9, 30, 16), 3) == sh(2026, 10, 10, 16)
    # Friday after the holiday, 17:00 + 1 h lands on the make-up Saturday morning
    assert CAL.add_working_time(sh(2026, 10, 9, 17), H) == sh(2026, 10, 10, 9)
    # after the make-up Saturday comes an ordinary Sunday off
    assert CAL.add_working_time(sh(2026, 10, 10, 17, 30), H / 2) == sh(2026, 10, 12, 9)


def test_spring_festival_2026() -> None:
    # Fri 13 Feb 16:00: 1.5 h, Sat 14 Feb (调休) 7.5 h, 15–23 Feb off, Tue 24 Feb
    assert CAL.add_working_time(sh(2026, 2, 13, 16), 8 * H) == sh(2026, 2, 14, 16, 30)
    assert CAL.add_working_time(sh(2026, 2, 13, 16), 16 * H) == sh(2026, 2, 24, 17)
    assert CAL.next_working_moment(sh(2026, 2, 15, 10)) == sh(2026, 2, 24, 8, 30)
    assert CAL.working_time_between(sh(2026, 2, 14, 17, 30), sh(2026, 2, 24, 8, 30)) == timedelta(0)
    assert CAL.working_days_between(date(2026, 2, 14), date(2026, 3, 2)) == 1 + 4 + 1  # 14, 24–27, 28


def test_boundary_rules() -> None:
    monday = sh(2026, 3, 2, 8, 30)
    assert CAL.add_working_time(monday, timedelta(hours=3.5)) == sh(2026, 3, 2, 12)  # stays 12:00
    assert CAL.add_working_time(monday, timedelta(hours=7.5)) == sh(2026, 3, 2, 17, 30)  # stays 17:30
    assert CAL.add_working_days(monday, 1) == sh(2026, 3, 2, 17, 30)
    assert CAL.add_working_days(sh(2026, 3, 2, 10), 3) == sh(2026, 3, 5, 10)
    # outside office hours: counting starts at the next working moment
    assert CAL.add_working_time(sh(2026, 3, 2, 12, 15), H) == sh(2026, 3, 2, 14, 30)
    assert CAL.add_working_time(sh(2026, 3, 6, 20), H) == sh(2026, 3, 9, 9, 30)  # Friday evening → Monday
    assert CAL.next_working_moment(sh(2026, 3, 2, 12)) == sh(2026, 3, 2, 13, 30)
    assert CAL.next_working_moment(sh(2026, 3, 2, 17, 30)) == sh(2026, 3, 3, 8, 30)
    assert CAL.next_working_moment(sh(2026, 9, 30, 17, 30)) == sh(2026, 10, 8, 8, 30)
    assert CAL.next_working_moment(sh(2026, 3, 2, 9)) == sh(2026, 3, 2, 9)
    assert CAL.add_working_time(sh(2026, 3, 7, 10), timedelta(0)) == sh(2026, 3, 7, 10)  # zero: identity
    # negative durations land on an opening, not a closing
    assert CAL.add_working_time(sh(2026, 3, 3, 8, 30), -H) == sh(2026, 3, 2, 16, 30)
    assert CAL.add_working_time(sh(2026, 3, 3, 9), -timedelta(minutes=30)) == sh(2026, 3, 3, 8, 30)
    assert CAL.working_day_length == timedelta(hours=7.5)


def test_year_boundary_and_unknown_year() -> None:
    assert 2027 not in CAL.known_years()
    # 31 Dec 2026 (Thu) 16:00 + 8 h: 1 Jan 2027 is Monday–Friday fallback (schedule not loaded)
    assert CAL.add_working_time(sh(2026, 12, 31, 16), 8 * H) == sh(2027, 1, 1, 16, 30)
    warnings = CAL.schedule_warnings(date(2026, 12, 1))
    assert len(warnings) == 1 and warnings[0].startswith("2027年节假日安排未加载")
    loaded = WorkCalendar(overrides={date(2027, 1, 1): False}, loaded_years=[2027])
    assert loaded.schedule_warnings(date(2026, 12, 1)) == []
    assert 2027 in loaded.known_years()
    assert loaded.add_working_time(sh(2026, 12, 31, 16), 8 * H) == sh(2027, 1, 4, 16, 30)
    # across several years: between is additive over whole years
    span = CAL.working_time_between(sh(2024, 1, 1), sh(2027, 1, 1))
    days = sum(CAL.working_days_between(date(y, 1, 1), date(y + 1, 1, 1)) for y in (2024, 2025, 2026))
    assert span == days * CAL.working_day_length


def test_overrides_win_over_package_and_fallback() -> None:
    cal = WorkCalendar(
        overrides={
            date(2026, 10, 8): False,  # local holiday right after National Day
            date(2026, 10, 3): True,  # a (hypothetical) extra working Saturday inside the holiday
            date(2028, 1, 26): False,  # Spring Festival 2028, schedule not in the package
        }
    )
    assert not cal.is_working_day(date(2026, 10, 8))
    assert cal.is_working_day(date(2026, 10, 3))
    assert not cal.is_working_day(date(2028, 1, 26)) and CAL.is_working_day(date(2028, 1, 26))
    assert cal.add_working_time(sh(2026, 9, 30, 16), 8 * H) == sh(2026, 10, 3, 16, 30)
    only_local = WorkCalendar(overrides={date(2026, 10, 8): False})
    assert only_local.add_working_time(sh(2026, 9, 30, 16), 8 * H) == sh(2026, 10, 9, 16, 30)


def test_time_zones_and_naive_refused() -> None:
    utc_start = datetime(2026, 9, 30, 8, tzinfo=UTC)
    due = CAL.add_working_time(utc_start, 8 * H)
    assert due == sh(2026, 10, 8, 16, 30) and due.utcoffset() == timedelta(hours=8)
    for call in (
        lambda: CAL.add_working_time(datetime(2026, 9, 30, 16), H),
        lambda: CAL.working_time_between(datetime(2026, 9, 30, 16), sh(2026, 10, 8)),
        lambda: CAL.next_working_moment(datetime(2026, 9, 30, 16)),
        lambda: CAL.add_working_days(datetime(2026, 9, 30, 16), 1),
    ):
        with pytest.raises(ValueError, match="timezone-aware"):
            call()


def test_custom_office_hours_and_validation() -> None:
    cal = WorkCalendar(office_hours=[(time(9), time(17))])
    assert cal.working_day_length == timedelta(hours=8)
    assert cal.add_working_days(sh(2026, 3, 2, 9), 1) == sh(2026, 3, 2, 17)
    assert cal.add_working_time(sh(2026, 3, 2, 12), 8 * H) == sh(2026, 3, 3, 12)
    with pytest.raises(ValueError):
        WorkCalendar(office_hours=[(time(9), time(12)), (time(11), time(17))])
    with pytest.raises(ValueError):
        WorkCalendar(office_hours=[(time(12), time(9))])
    with pytest.raises(ValueError):
        WorkCalendar(office_hours=[])
    with pytest.raises(TypeError):
        WorkCalendar(overrides={datetime(2026, 1, 1): True})  # a datetime is a date subclass: refused
    assert CAL.office_hours == DEFAULT_OFFICE_HOURS


# ---------------------------------------------------------------- hypothesis
_BOUNDARY_TIMES = [time(h, m) for h, m in ((0, 0), (8, 30), (12, 0), (13, 30), (17, 30), (23, 59))]


@st.composite
def moments(draw: st.DrawFn, lo: date = date(2025, 10, 1), hi: date = date(2027, 3, 31)) -> datetime:
    """Aware moments around the 2026 holidays and into 2027 (fallback year); often on period edges."""
    day = draw(st.dates(min_value=lo, max_value=hi))
    on_edge = draw(st.booleans())
    clock = draw(st.sampled_from(_BOUNDARY_TIMES)) if on_edge else draw(st.times())
    local = datetime.combine(day, clock, tzinfo=SH)
    return local.astimezone(UTC) if draw(st.booleans()) else local


durations = st.one_of(
    st.integers(1, 40 * 15).map(lambda n: timedelta(minutes=30 * n)),  # hits period ends exactly
    st.integers(1, 40 * 27_000 * 10**6).map(lambda n: timedelta(microseconds=n)),
)


def _in_office(cal: WorkCalendar, t: datetime, *, closing_ok: bool) -> bool:
    local = t.astimezone(cal.tz)
    tod = local.time()
    return cal.is_working_day(local.date()) and any(
        (s < tod <= e) if closing_ok else (s <= tod < e) for s, e in cal.office_hours
    )


def reference_add(cal: WorkCalendar, start: datetime, duration: timedelta) -> datetime:
    """Day-by-day walk, independent of the cumulative index."""
    local = start.astimezone(cal.tz).replace(tzinfo=None)
    cursor, left = local, duration
    day = local.date()
    while True:
        if cal.is_working_day(day):
            for s, e in cal.office_hours:
                begin = max(datetime.combine(day, s), cursor)
                end = datetime.combine(day, e)
                if begin < end:
                    if left <= end - begin:
                        return (begin + left).replace(tzinfo=cal.tz)
                    left -= end - begin
        day += timedelta(days=1)
        cursor = datetime.combine(day, time(0))


SETTINGS = settings(max_examples=300, deadline=None)


@SETTINGS
@given(moments(), durations)
def test_add_lands_inside_office_hours_on_working_days(start: datetime, d: timedelta) -> None:
    due = CAL.add_working_time(start, d)
    assert due > start
    assert due.tzinfo is CAL.tz
    assert _in_office(CAL, due, closing_ok=True), due
    assert due.year not in PACKAGE_YEARS or chinese_calendar.is_workday(due.date())


@SETTINGS
@given(moments(), durations)
def test_add_matches_day_by_day_reference(start: datetime, d: timedelta) -> None:
    assume(d <= timedelta(days=8))  # keep the slow reference short
    assert CAL.add_working_time(start, d) == reference_add(CAL, start, d)


@SETTINGS
@given(moments(), durations, durations)
def test_add_is_strictly_monotonic_and_composes(start: datetime, d1: timedelta, d2: timedelta) -> None:
    a, b = CAL.add_working_time(start, d1), CAL.add_working_time(start, d2)
    assert CAL.add_working_times(start, (d1, d2, timedelta(0), -d1)) == (
        a,
        b,
        CAL.add_working_time(start, timedelta(0)),
        CAL.add_working_time(start, -d1),
    )
    assert (a < b) == (d1 < d2) and (a == b) == (d1 == d2)
    assert CAL.add_working_time(a, d2) == CAL.add_working_time(start, d1 + d2)


@SETTINGS
@given(moments(), durations)
def test_round_trip_with_between(start: datetime, d: timedelta) -> None:
    due = CAL.add_working_time(start, d)
    assert CAL.working_time_between(start, due) == d
    # outside office hours counting starts at the next working moment
    assert CAL.add_working_time(CAL.next_working_moment(start), d) == due
    # and going back lands on the next working moment, not before it
    assert CAL.add_working_time(due, -d) == CAL.next_working_moment(start)
    if _in_office(CAL, start, closing_ok=False):
        assert CAL.add_working_time(due, -d) == start


@SETTINGS
@given(moments(), moments(), moments())
def test_between_is_signed_and_additive(a: datetime, b: datetime, c: datetime) -> None:
    ab, bc = CAL.working_time_between(a, b), CAL.working_time_between(b, c)
    assert CAL.working_time_between(b, a) == -ab
    assert ab + bc == CAL.working_time_between(a, c)
    assert (ab > timedelta(0)) <= (b > a)
    # add(a, between(a, b)) never passes b, and equals it when b is inside office hours
    if ab > timedelta(0):
        reached = CAL.add_working_time(a, ab)
        assert reached <= b
        if _in_office(CAL, b, closing_ok=True):
            assert reached == b


@SETTINGS
@given(moments())
def test_next_working_moment(t: datetime) -> None:
    n = CAL.next_working_moment(t)
    assert n >= t
    assert CAL.is_working_time(n)
    assert CAL.working_time_between(t, n) == timedelta(0)
    assert (n == t) == CAL.is_working_time(t)


@SETTINGS
@given(
    st.dictionaries(st.dates(date(2026, 9, 1), date(2026, 11, 30)), st.booleans(), max_size=40),
    moments(date(2026, 9, 1), date(2026, 10, 31)),
    st.integers(1, 20 * 15).map(lambda n: timedelta(minutes=30 * n)),
)
def test_overrides_always_win(overrides: dict[date, bool], start: datetime, d: timedelta) -> None:
    cal = WorkCalendar(overrides=overrides)
    for day, working in overrides.items():
        assert cal.is_working_day(day) is working
    due = cal.add_working_time(start, d)
    assert overrides.get(due.date(), True)
    assert _in_office(cal, due, closing_ok=True)
    assert cal.working_time_between(start, due) == d
    assert due == reference_add(cal, start, d)
