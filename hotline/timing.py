"""Deadlines for the workflow, in the city's working time (routing.calendar + routing.deadlines).

The workflow asks four questions and never does calendar arithmetic itself: the deadlines of a fresh dispatch,
how far a pause for the citizen (待补充) moves a deadline, what an approved extension gives, and when the callback
is due. Calendar overrides, loaded years and deadline policies come from the database (admins edit them), so
``reload`` rebuilds the calendar and the policy table; the objects are immutable and swapped whole, so a request
that is computing a deadline meanwhile finishes with the old, consistent pair.

The escalation threshold (overdue by N working days) is the setting ``HOTLINE_ESCALATE_AFTER_DAYS``
(``hotline.settings.RuleSettings``). ``from_database`` — the production path, in the API and in the worker alike —
reads it from the environment unless told explicitly, so the API that arms the thresholds at dispatch and the
worker that words the escalation agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, time, timedelta, tzinfo

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from hotline.models import CalendarOverride, CalendarYear, Category, DeadlinePolicyRow, OfficeHoursRow
from hotline.settings import DEFAULT_ESCALATE_AFTER_DAYS, RuleSettings
from routing.calendar import WorkCalendar
from routing.deadlines import (
    DEFAULT_POLICIES,
    URGENT_POLICY,
    DeadlinePolicy,
    PolicyChoice,
    PolicyTable,
    callback_due,
    compute_deadlines,
    extend,
    reminder_moment,
)


class Timing:
    def __init__(
        self,
        calendar: WorkCalendar,
        policies: PolicyTable | None = None,
        escalate_after_days: int = DEFAULT_ESCALATE_AFTER_DAYS,
    ) -> None:
        if escalate_after_days < 1:
            raise ValueError("escalate_after_days must be at least one working day")
        self.calendar = calendar
        self.policies = policies or PolicyTable()
        self.escalate_after_days = escalate_after_days
        #: the office hours when admins have set none (``HOTLINE_OFFICE_HOURS``); an ``office_hours`` row wins
        self.default_office_hours = calendar.office_hours
        #: urgent policy of one kind (``urgent:<kind>`` rows); ``policies.urgent`` covers the other kinds.
        self.urgent_by_kind: dict[str, DeadlinePolicy] = {}

    @property
    def zone(self) -> tzinfo:
        return self.calendar.tz

    @classmethod
    def from_database(
        cls, sessions: sessionmaker[Session], timezone: str, *, escalate_after_days: int | None = None
    ) -> Timing:
        """The city's timing: office hours as admins set them, else ``HOTLINE_OFFICE_HOURS``;
        ``escalate_after_days`` defaults to the setting ``HOTLINE_ESCALATE_AFTER_DAYS``."""
        rules = RuleSettings()
        if escalate_after_days is None:
            escalate_after_days = rules.escalate_after_days
        timing = cls(WorkCalendar(tz=timezone, office_hours=rules.office_periods),
                     escalate_after_days=escalate_after_days)
        with sessions() as session:
            timing.reload(session)
        return timing

    def reload(self, session: Session) -> None:
        """Rebuild the calendar (overrides, loaded years, office hours) and the policies from the database, after an
        admin edit."""
        overrides = {o.day: o.working for o in session.scalars(select(CalendarOverride))}
        years = list(session.scalars(select(CalendarYear.year)))
        row = session.get(OfficeHoursRow, 1)
        hours = periods_of(row.periods) if row is not None else self.default_office_hours
        calendar = WorkCalendar(overrides=overrides, office_hours=hours, tz=self.calendar.tz, loaded_years=years)
        rows = session.execute(
            select(DeadlinePolicyRow, Category.code).outerjoin(Category, Category.id == DeadlinePolicyRow.category_id)
        ).all()
        policies, urgent_by_kind = policy_table(
            (row.scope_key, row.kind, code, row_policy(row)) for row, code in rows
        )
        self.calendar, self.policies, self.urgent_by_kind = calendar, policies, urgent_by_kind

    def choose(self, kind: str, urgent: bool, category_code: str | None) -> PolicyChoice:
        """The policy of a ticket and where it comes from (urgent of its kind, urgent, category or default)."""
        if urgent and kind in self.urgent_by_kind:
            return PolicyChoice(self.urgent_by_kind[kind], "urgent")
        return self.policies.resolve(kind, category_code, urgent)

    def deadlines(
        self, kind: str, urgent: bool, category_code: str | None, start: datetime
    ) -> tuple[datetime, datetime]:
        policy = self.choose(kind, urgent, category_code).policy
        result = compute_deadlines(self.calendar, policy, start)
        return result.sign_due, result.reply_due

    def shift_for_pause(self, due: datetime, paused_from: datetime, paused_until: datetime, *, clock: bool) -> datetime:
        return extend(self.calendar, due, paused_from, paused_until, clock_time=clock)

    def extend(self, due: datetime, working_hours: float, *, clock: bool) -> datetime:
        if clock:
            return due + timedelta(hours=working_hours)
        return self.calendar.add_working_time(due, timedelta(hours=working_hours))

    def sweep_thresholds(self, start: datetime, due: datetime, *, clock: bool) -> tuple[datetime, datetime]:
        """When the 75 % reminder is due, and when an overdue ticket escalates (N working days late)."""
        warn_at = reminder_moment(self.calendar, clock, start, due)
        return warn_at, self.calendar.add_working_days(due, self.escalate_after_days)

    def callback_due(self, replied_at: datetime) -> datetime:
        return callback_due(self.calendar, replied_at)


def periods_of(stored: Iterable[Iterable[str]]) -> tuple[tuple[time, time], ...]:
    """The ``office_hours`` row's [["08:30", "12:00"], …] as wall-clock periods."""
    return tuple((time.fromisoformat(start), time.fromisoformat(end)) for start, end in stored)


def row_policy(row: DeadlinePolicyRow) -> DeadlinePolicy:
    return DeadlinePolicy(
        sign=timedelta(minutes=row.sign_minutes),
        reply=timedelta(minutes=row.reply_minutes),
        clock_time=row.clock_time,
        sign_days=row.sign_days,
        reply_days=row.reply_days,
    )


def policy_table(
    rows: Iterable[tuple[str, str | None, str | None, DeadlinePolicy]],
) -> tuple[PolicyTable, dict[str, DeadlinePolicy]]:
    """Merge admin rows ``(scope_key, kind, category code, policy)`` over the built-in defaults.

    A category row whose category is gone (code None) is ignored rather than breaking every deadline.
    """
    defaults = dict(DEFAULT_POLICIES)
    urgent = URGENT_POLICY
    urgent_by_kind: dict[str, DeadlinePolicy] = {}
    by_category: dict[str, DeadlinePolicy] = {}
    for scope_key, kind, category_code, policy in rows:
        scope = scope_key.split(":", 1)[0]
        if scope == "kind" and kind in defaults:
            defaults[kind] = policy
        elif scope == "urgent" and kind is None:
            urgent = policy
        elif scope == "urgent" and kind is not None:
            urgent_by_kind[kind] = policy
        elif scope == "category" and category_code:
            by_category[category_code] = policy
    return PolicyTable(defaults, by_category, urgent), urgent_by_kind
