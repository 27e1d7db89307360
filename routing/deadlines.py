"""Deadline policies (时限) for dispatched tickets: sign-for (签收) and reply (办结答复) deadlines.

Defaults follow DOMAIN.md "Deadlines"; a city overrides them per category subtree. All functions are pure:
the lead engineer stores policies and overrides in the database and passes them in.

Decisions:

- Both deadlines are measured from ``start`` = the dispatch moment (派单), not from signing: a unit that signs
  late does not gain time.
- Working-time policies count in :class:`~routing.calendar.WorkCalendar` working time; ``sign_days`` /
  ``reply_days`` are *working days* (× the calendar's office length, so they follow a change of office hours)
  and add to the ``sign`` / ``reply`` timedeltas. Clock-time policies (urgent: safety, water/power/gas outage)
  count real elapsed time, 7×24, and their ``*_days`` are 24-hour days.
- An urgent ticket always gets the urgent policy, whatever its category: a category override (e.g. "建议 about
  住房公积金: 15 working days") must never turn a gas leak into a 15-day case.
- Praise (表扬) has no statutory deadline in DOMAIN.md; it is forwarded to the praised unit, which signs
  within 1 working day and acknowledges within 5 working days (so the praise is not lost in a queue).
- A deadline is met when the reply is submitted *at or before* the due moment; "overdue" means ``now > due``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Literal

from routing.calendar import WorkCalendar, ensure_aware

__all__ = [
    "DEFAULT_POLICIES",
    "KINDS",
    "URGENT_POLICY",
    "DeadlineLight",
    "DeadlinePolicy",
    "Deadlines",
    "PolicyChoice",
    "PolicyTable",
    "callback_due",
    "compute_deadlines",
    "deadline_light",
    "extend",
    "remaining_fraction",
    "reminder_moment",
]

#: Kinds of request (DOMAIN/CONVENTIONS codes).
KINDS: tuple[str, ...] = ("consultation", "help", "complaint", "report", "suggestion", "praise")

DeadlineLight = Literal["green", "yellow", "red"]

#: Supervisors' yellow light: at most this fraction of the allowed time is left.
YELLOW_FRACTION = 0.25
#: The automatic reminder (催办) goes out when this fraction of the allowed time has elapsed.
REMINDER_ELAPSED = 0.75


@dataclass(frozen=True, slots=True)
class DeadlinePolicy:
    """How long a unit has to sign for and to reply to a ticket.

    ``sign``/``reply`` are working time unless ``clock_time``; ``sign_days``/``reply_days`` add whole
    working days (or 24-hour days under ``clock_time``). Keep days in ``*_days``: 3 working days is
    3 × 7.5 h today but must stay 3 days if the city changes its office hours.
    """

    sign: timedelta
    reply: timedelta
    clock_time: bool = False
    sign_days: int = 0
    reply_days: int = 0

    def __post_init__(self) -> None:
        for name in ("sign", "reply"):
            if getattr(self, name) < timedelta(0):
                raise ValueError(f"{name} must not be negative")
        for name in ("sign_days", "reply_days"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a non-negative int")


#: Urgent (紧急, any kind): sign within 30 minutes, reply within 24 hours, clock time.
URGENT_POLICY = DeadlinePolicy(sign=timedelta(minutes=30), reply=timedelta(hours=24), clock_time=True)

_TWO_HOURS = timedelta(hours=2)
_ZERO = timedelta(0)

#: Non-urgent defaults per kind, DOMAIN.md "Deadlines" (praise: see module docstring).
DEFAULT_POLICIES: Mapping[str, DeadlinePolicy] = MappingProxyType(
    {
        "consultation": DeadlinePolicy(sign=_TWO_HOURS, reply=_ZERO, reply_days=3),
        "help": DeadlinePolicy(sign=_TWO_HOURS, reply=_ZERO, reply_days=3),
        "complaint": DeadlinePolicy(sign=_TWO_HOURS, reply=_ZERO, reply_days=5),
        "report": DeadlinePolicy(sign=_TWO_HOURS, reply=_ZERO, reply_days=5),
        "suggestion": DeadlinePolicy(sign=_ZERO, reply=_ZERO, sign_days=1, reply_days=10),
        "praise": DeadlinePolicy(sign=_ZERO, reply=_ZERO, sign_days=1, reply_days=5),
    }
)


def _check_category(code: str) -> str:
    if not code or len(code) % 2 or not code.isdigit() or not code.isascii():
        raise ValueError(f"category code must be 2, 4 or 6… ASCII digits, got {code!r}")
    return code


@dataclass(frozen=True, slots=True)
class PolicyChoice:
    """A resolved policy and why it was chosen (for the ticket's audit trail)."""

    policy: DeadlinePolicy
    #: "urgent", "category" or "default"
    source: Literal["urgent", "category", "default"]
    #: the override's category code when ``source == "category"``
    category: str | None = None


class PolicyTable:
    """Defaults per kind, urgent policy, and per-category-subtree overrides (most specific code wins).

    Category codes are hierarchical, two digits per level: an override for ``"01"`` applies to ``"0101"``
    and ``"010101"`` unless ``"0101"`` or ``"010101"`` has its own. A category override replaces the kind
    default for every non-urgent kind in that subtree.
    """

    __slots__ = ("_defaults", "_overrides", "_urgent")

    def __init__(
        self,
        defaults: Mapping[str, DeadlinePolicy] = DEFAULT_POLICIES,
        overrides_by_category: Mapping[str, DeadlinePolicy] | None = None,
        urgent: DeadlinePolicy = URGENT_POLICY,
    ) -> None:
        missing = [k for k in KINDS if k not in defaults]
        if missing:
            raise ValueError(f"defaults lack kinds: {', '.join(missing)}")
        self._defaults: Mapping[str, DeadlinePolicy] = MappingProxyType(dict(defaults))
        self._overrides: Mapping[str, DeadlinePolicy] = MappingProxyType(
            {_check_category(c): p for c, p in (overrides_by_category or {}).items()}
        )
        self._urgent = urgent

    @property
    def defaults(self) -> Mapping[str, DeadlinePolicy]:
        return self._defaults

    @property
    def overrides_by_category(self) -> Mapping[str, DeadlinePolicy]:
        return self._overrides

    @property
    def urgent(self) -> DeadlinePolicy:
        return self._urgent

    def resolve(self, kind: str, category: str | None, urgent: bool = False) -> PolicyChoice:
        """Pick the policy: urgent first, then the most specific category override, then the kind default."""
        if kind not in self._defaults:
            raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
        if urgent:
            return PolicyChoice(self._urgent, "urgent")
        if category:
            code = _check_category(category)
            for n in range(len(code), 0, -2):
                policy = self._overrides.get(code[:n])
                if policy is not None:
                    return PolicyChoice(policy, "category", code[:n])
        return PolicyChoice(self._defaults[kind], "default")

    def policy_for(self, kind: str, category: str | None, urgent: bool = False) -> DeadlinePolicy:
        """Shortcut for ``resolve(...).policy``."""
        return self.resolve(kind, category, urgent).policy


@dataclass(frozen=True, slots=True)
class Deadlines:
    """Due moments of a dispatched ticket, in the calendar's zone."""

    sign_due: datetime
    reply_due: datetime


def _add(calendar: WorkCalendar, clock: bool, start: datetime, amount: timedelta) -> datetime:
    if clock:
        ensure_aware(start, "start")
        # Through UTC: aware + timedelta is wall-clock arithmetic, wrong across a DST change.
        return (start.astimezone(UTC) + amount).astimezone(calendar.tz)
    return calendar.add_working_time(start, amount)


def _between(calendar: WorkCalendar, clock: bool, a: datetime, b: datetime) -> timedelta:
    if clock:
        return ensure_aware(b, "b").astimezone(UTC) - ensure_aware(a, "a").astimezone(UTC)
    return calendar.working_time_between(a, b)


def _span(calendar: WorkCalendar, clock: bool, amount: timedelta, days: int) -> timedelta:
    return amount + (timedelta(days=days) if clock else days * calendar.working_day_length)


def compute_deadlines(calendar: WorkCalendar, policy: DeadlinePolicy, start: datetime) -> Deadlines:
    """Sign-for and reply deadlines of a ticket dispatched at ``start``."""
    clock = policy.clock_time
    sign = _span(calendar, clock, policy.sign, policy.sign_days)
    reply = _span(calendar, clock, policy.reply, policy.reply_days)
    if clock:
        return Deadlines(_add(calendar, True, start, sign), _add(calendar, True, start, reply))
    sign_due, reply_due = calendar.add_working_times(start, (sign, reply))
    return Deadlines(sign_due, reply_due)


def remaining_fraction(
    calendar: WorkCalendar, policy_is_clock: bool, start: datetime, due: datetime, now: datetime
) -> float:
    """Share of the allowed time (``start`` → ``due``) still left at ``now``.

    1.0 at (or before) the start, 0.25 when the yellow light comes on, 0.0 at the due moment, negative when
    overdue (−0.5 = overdue by half the allowed time). Note that in working time a ticket due at 17:30 still
    reads 0.0 at 20:00 although it is overdue: use :func:`deadline_light` (it compares ``now > due``).
    A zero-length allowance gives 1.0 before ``due`` and 0.0 at/after it.
    """
    total = _between(calendar, policy_is_clock, start, due)
    left = _between(calendar, policy_is_clock, now, due)
    if total <= timedelta(0):
        return 1.0 if left > timedelta(0) else 0.0
    return min(1.0, left / total)


def deadline_light(
    calendar: WorkCalendar, policy_is_clock: bool, start: datetime, due: datetime, now: datetime
) -> DeadlineLight:
    """Supervisor's light: red when overdue (``now > due``), yellow when ≤ 25 % is left, else green."""
    if ensure_aware(now, "now") > ensure_aware(due, "due"):
        return "red"
    if remaining_fraction(calendar, policy_is_clock, start, due, now) <= YELLOW_FRACTION:
        return "yellow"
    return "green"


def reminder_moment(
    calendar: WorkCalendar,
    policy_is_clock: bool,
    start: datetime,
    due: datetime,
    elapsed: float = REMINDER_ELAPSED,
) -> datetime:
    """When ``elapsed`` (default 75 %) of the allowed time has passed.

    Schedule the reminder (催办) for that moment instead of polling every ticket.
    """
    if not 0.0 <= elapsed <= 1.0:
        raise ValueError("elapsed must be within [0, 1]")
    total = _between(calendar, policy_is_clock, start, due)
    if total <= timedelta(0):
        return due.astimezone(calendar.tz)
    moment = _add(calendar, policy_is_clock, start, total * elapsed)
    return min(moment, due).astimezone(calendar.tz)


def extend(
    calendar: WorkCalendar,
    due: datetime,
    paused_from: datetime,
    paused_until: datetime,
    clock_time: bool = False,
) -> datetime:
    """New due moment after the clock stopped while the ticket waited for the citizen (待补充).

    The time that was left when the pause began is granted again from the resumption:
    ``add(paused_until, between(paused_from, due))``, which equals moving ``due`` by the working time
    (clock time for urgent tickets) that passed during the pause. A pause that begins after the deadline
    does not revive it (``due`` is returned unchanged), nor does an empty or inverted pause.
    """
    ensure_aware(due, "due")
    ensure_aware(paused_from, "paused_from")
    ensure_aware(paused_until, "paused_until")
    if paused_until <= paused_from or paused_from >= due:
        return due.astimezone(calendar.tz)
    left = _between(calendar, clock_time, paused_from, due)
    if left <= timedelta(0):
        return max(due, paused_until).astimezone(calendar.tz)
    return _add(calendar, clock_time, paused_until, left)


def callback_due(calendar: WorkCalendar, replied_at: datetime) -> datetime:
    """The callback (回访) to the citizen is due 1 working day after the unit's reply."""
    return calendar.add_working_days(replied_at, 1)
