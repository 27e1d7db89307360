"""Deadline policies: defaults, category overrides, reminders/lights, pauses (待补充), callbacks."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from hotline.services import Services
from hotline.settings import RuleSettings
from hotline.timing import Timing
from routing.calendar import WorkCalendar
from routing.deadlines import (
    DEFAULT_POLICIES,
    KINDS,
    URGENT_POLICY,
    DeadlinePolicy,
    PolicyTable,
    callback_due,
    compute_deadlines,
    deadline_light,
    extend,
    remaining_fraction,
    reminder_moment,
)

SH = ZoneInfo("Asia/Shanghai")
CAL = WorkCalendar()
H = timedelta(hours=1)


def sh(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=SH)


def test_defaults_follow_domain() -> None:
    assert set(DEFAULT_POLICIES) == set(KINDS)
    assert URGENT_POLICY.clock_time
    assert (URGENT_POLICY.sign, URGENT_POLICY.reply) == (timedelta(minutes=30), timedelta(hours=24))
    day = CAL.working_day_length
    expected = {  # kind: (sign, reply) in working time
        "consultation": (2 * H, 3 * day),
        "help": (2 * H, 3 * day),
        "complaint": (2 * H, 5 * day),
        "report": (2 * H, 5 * day),
        "suggestion": (day, 10 * day),
        "praise": (day, 5 * day),
    }
    start = sh(2026, 3, 2, 10)
    for kind, (sign, reply) in expected.items():
        policy = DEFAULT_POLICIES[kind]
        assert not policy.clock_time
        due = compute_deadlines(CAL, policy, start)
        assert CAL.working_time_between(start, due.sign_due) == sign, kind
        assert CAL.working_time_between(start, due.reply_due) == reply, kind


def test_complaint_dispatched_before_national_day() -> None:
    due = compute_deadlines(CAL, DEFAULT_POLICIES["complaint"], sh(2026, 9, 30, 16))
    assert due.sign_due == sh(2026, 10, 8, 9)  # 1.5 h on 30 Sep + 0.5 h after the holiday
    # 5 working days = 37.5 h: 30 Sep 1.5, 8/9/10(调休 Sat)/12 Oct 30, 13 Oct 6 h → 16:00
    assert due.reply_due == sh(2026, 10, 13, 16)


def test_urgent_counts_clock_time_through_the_holiday() -> None:
    due = compute_deadlines(CAL, URGENT_POLICY, sh(2026, 9, 30, 16))
    assert due.sign_due == sh(2026, 9, 30, 16, 30)
    assert due.reply_due == sh(2026, 10, 1, 16)
    assert due.reply_due.utcoffset() == timedelta(hours=8)
    utc = compute_deadlines(CAL, URGENT_POLICY, datetime(2026, 9, 30, 8, tzinfo=UTC))
    assert utc.reply_due == sh(2026, 10, 1, 16) and utc.reply_due.tzinfo is SH


def test_working_days_follow_office_hours() -> None:
    eight_hour_day = WorkCalendar(office_hours=[(time(9), time(17))])
    due = compute_deadlines(eight_hour_day, DEFAULT_POLICIES["help"], sh(2026, 3, 2, 10))
    assert due.reply_due == sh(2026, 3, 5, 10)  # still 3 working days, now of 8 h


def test_policy_table_most_specific_category_wins() -> None:
    housing = DeadlinePolicy(timedelta(hours=4), timedelta(0), reply_days=13)
    subsidy = DeadlinePolicy(timedelta(hours=1), timedelta(0), reply_days=2)
    table = PolicyTable(overrides_by_category={"14": housing, "1402": subsidy})
    assert table.policy_for("complaint", "14") is housing
    assert table.policy_for("consultation", "1401") is housing
    assert table.policy_for("complaint", "140201") is subsidy
    assert table.resolve("complaint", "140201").category == "1402"
    assert table.policy_for("complaint", "15") is DEFAULT_POLICIES["complaint"]
    assert table.policy_for("complaint", None) is DEFAULT_POLICIES["complaint"]
    assert table.resolve("complaint", "1502").source == "default"
    # urgent wins over any category override
    assert table.policy_for("complaint", "1402", urgent=True) is URGENT_POLICY
    assert table.resolve("help", "14", urgent=True).source == "urgent"
    with pytest.raises(ValueError):
        table.policy_for("gossip", "14")
    with pytest.raises(ValueError):
        table.policy_for("complaint", "140")
    with pytest.raises(ValueError):
        PolicyTable(overrides_by_category={"1a": housing})
    with pytest.raises(ValueError):
        PolicyTable(defaults={"complaint": housing})
    with pytest.raises(ValueError):
        DeadlinePolicy(timedelta(hours=-1), timedelta(0))


def test_remaining_fraction_lights_and_reminder() -> None:
    start = sh(2026, 3, 2, 8, 30)
    due = CAL.add_working_days(start, 2)  # Tue 17:30
    assert due == sh(2026, 3, 3, 17, 30)
    assert remaining_fraction(CAL, False, start, due, start) == 1.0
    assert remaining_fraction(CAL, False, start, due, sh(2026, 3, 1, 20)) == 1.0  # before start: capped
    assert remaining_fraction(CAL, False, start, due, sh(2026, 3, 2, 17, 30)) == 0.5
    assert remaining_fraction(CAL, False, start, due, sh(2026, 3, 2, 20)) == 0.5  # the clock stands still
    assert remaining_fraction(CAL, False, start, due, due) == 0.0
    assert remaining_fraction(CAL, False, start, due, sh(2026, 3, 4, 17, 30)) == -0.5
    remind = reminder_moment(CAL, False, start, due)
    assert remind == sh(2026, 3, 3, 13, 45)  # 75 % of 15 h = 11.25 h: Mon 7.5 h + Tue 3.5 h + 0.25 h
    assert deadline_light(CAL, False, start, due, sh(2026, 3, 3, 9)) == "green"
    assert deadline_light(CAL, False, start, due, remind) == "yellow"
    assert deadline_light(CAL, False, start, due, due) == "yellow"  # due moment itself is still in time
    assert deadline_light(CAL, False, start, due, sh(2026, 3, 3, 20)) == "red"  # 0.0 left but overdue


def test_clock_fraction_for_urgent() -> None:
    start = sh(2026, 10, 1, 0)
    due = start + timedelta(hours=24)
    assert remaining_fraction(CAL, True, start, due, sh(2026, 10, 1, 18)) == 0.25
    assert deadline_light(CAL, True, start, due, sh(2026, 10, 1, 18)) == "yellow"
    assert reminder_moment(CAL, True, start, due) == sh(2026, 10, 1, 18)


def test_extend_pause_for_citizen() -> None:
    due = sh(2026, 10, 13, 16)
    # paused Fri 9 Oct 10:00 → Mon 12 Oct 10:00: 6 + 7.5 (Sat 调休) + 1.5 = 15 working hours
    paused_from, paused_until = sh(2026, 10, 9, 10), sh(2026, 10, 12, 10)
    assert CAL.working_time_between(paused_from, paused_until) == timedelta(hours=15)
    new_due = extend(CAL, due, paused_from, paused_until)
    assert new_due == sh(2026, 10, 15, 16)  # 13 Oct 1.5 h + 14 Oct 7.5 h + 15 Oct 6 h
    assert new_due == CAL.add_working_time(due, timedelta(hours=15))
    # a pause over the weekend/holiday only (no working time) changes nothing
    assert extend(CAL, due, sh(2026, 10, 11, 9), sh(2026, 10, 11, 18)) == due
    # a pause that began after the deadline does not revive it; an empty pause changes nothing
    assert extend(CAL, due, sh(2026, 10, 14, 9), sh(2026, 10, 20, 9)) == due
    assert extend(CAL, due, paused_until, paused_from) == due
    # urgent: clock time
    u_due = sh(2026, 10, 2, 12)
    assert extend(CAL, u_due, sh(2026, 10, 1, 20), sh(2026, 10, 2, 8), clock_time=True) == sh(2026, 10, 3, 0)


def test_callback_due_one_working_day_after_reply() -> None:
    assert callback_due(CAL, sh(2026, 10, 9, 15)) == sh(2026, 10, 10, 15)  # Saturday 调休
    assert callback_due(CAL, sh(2026, 9, 30, 17, 30)) == sh(2026, 10, 8, 17, 30)
    with pytest.raises(ValueError):
        callback_due(CAL, datetime(2026, 9, 30, 17))


_starts = st.builds(
    lambda d, m: datetime.combine(d, time(0), tzinfo=SH) + timedelta(minutes=m),
    st.dates(date(2026, 1, 1), date(2026, 12, 31)),
    st.integers(0, 24 * 60 - 1),
)


@settings(max_examples=200, deadline=None)
@given(_starts, st.integers(1, 400), st.integers(0, 400), st.integers(1, 400))
def test_extend_moves_due_by_paused_working_time(start: datetime, a: int, b: int, c: int) -> None:
    """Pause inside the allowed window: due moves by exactly the working time that passed while paused."""
    q = timedelta(minutes=15)
    paused_from = CAL.add_working_time(start, a * q)
    paused_until = CAL.add_working_time(paused_from, b * q) if b else paused_from + timedelta(hours=1)
    due = CAL.add_working_time(start, (a + c) * q)
    new_due = extend(CAL, due, paused_from, paused_until)
    paused = CAL.working_time_between(paused_from, paused_until)
    expected = CAL.add_working_time(due, paused) if paused else due
    assert new_due == expected
    # the time left after resuming equals the time left when the pause began
    assert CAL.working_time_between(paused_until, new_due) == CAL.working_time_between(paused_from, due)


def test_the_citys_office_hours_are_a_setting(monkeypatch: pytest.MonkeyPatch, services: Services) -> None:
    monkeypatch.setenv("HOTLINE_OFFICE_HOURS", "09:00-12:00, 14:00-18:00")
    timing = Timing.from_database(services.sessions, "Asia/Shanghai")
    assert timing.calendar.office_hours == ((time(9), time(12)), (time(14), time(18)))
    for bad in ("9-12", "12:00-09:00", "09:00-12:00,11:00-13:00", "25:00-26:00"):
        monkeypatch.setenv("HOTLINE_OFFICE_HOURS", bad)
        with pytest.raises(ValidationError):
            RuleSettings()
