"""Working time in the Chinese calendar, for 12345 deadlines (时限).

Deadlines for dispatched tickets count *working* time: statutory holidays (法定节假日) stop the clock,
weekend days swapped into working days (调休) run it, and only office hours count. Citizens complain
about systems whose timers ignore this, so every deadline in the hotline goes through :class:`WorkCalendar`.

Sources, in order of precedence for "is this date a working day?":

1. admin overrides (``dict[date, bool]``, True = working day): a year's schedule the package does not
   know yet, a local holiday, a typhoon day off;
2. the ``chinesecalendar`` package (import name ``chinese_calendar``) for the years it knows;
3. for other years, Monday–Friday. :meth:`WorkCalendar.known_years` / :meth:`WorkCalendar.schedule_warnings`
   let the admin UI say "2028年节假日安排未加载" instead of silently mis-counting the Spring Festival.

Decisions (the contract the tests check):

- **Time zones.** Every public method refuses naive datetimes with :class:`ValueError`: a naive value from a
  server clock in UTC would silently shift deadlines by 8 hours. Aware datetimes in any zone are accepted;
  results are returned in the calendar's zone (default ``Asia/Shanghai``; a zoneinfo name or a tzinfo with
  standard wall-clock semantics, not pytz). Office hours are wall-clock times in that zone (China has no
  DST; for other zones, office hours must not straddle a DST change).
- **The working clock** ``W(t)`` is the working time elapsed up to ``t``: it runs during office periods of
  working days and stands still otherwise. Everything is defined through it, in whole microseconds, so
  arithmetic is exact.
- ``working_time_between(a, b) = W(b) - W(a)``: *signed* — negative when ``b`` is before ``a`` (so "time left"
  goes negative when overdue), zero when both fall in the same closed period.
- ``add_working_time(start, d)`` for ``d > 0`` is the *earliest* moment ``t >= start`` with
  ``W(t) = W(start) + d``. Consequences: counting starts at the next working moment when ``start`` is outside
  office hours; a deadline that ends exactly when an office period closes stays there (12:00 stays 12:00,
  not 13:30; 17:30 stays 17:30, not 08:30 next working day). So a positive result is always inside an office
  period or exactly at its end. ``d == 0`` returns ``start`` unchanged (converted to the calendar's zone).
  ``d < 0`` goes backwards and returns the *latest* moment ``t <= start`` with that clock value, i.e. it lands
  on the opening of an office period rather than the closing of the previous one.
- ``next_working_moment(t)`` is ``t`` itself when the clock is running at ``t`` (office periods are half-open,
  ``[08:30, 12:00)``), otherwise the next opening: 12:00 → 13:30, 17:30 → 08:30 of the next working day.
- A working day has the same office hours every day (no half days); ``add_working_days(start, n)`` adds
  ``n`` × the day's office length, so 3 working days from Monday 10:00 is Thursday 10:00 and 1 working day
  from Monday 08:30 is Monday 17:30.

Speed: per year, a cumulative count of working days is built once (lazily, ~365 look-ups) and cached; each
call then costs a handful of list look-ups plus one loop step per calendar year crossed — never a loop
over days. See ``bench/routing_calendar.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, tzinfo
from types import MappingProxyType
from zoneinfo import ZoneInfo

from chinese_calendar import constants as _cc

__all__ = [
    "DEFAULT_OFFICE_HOURS",
    "DEFAULT_TZ",
    "PACKAGE_YEARS",
    "WorkCalendar",
    "ensure_aware",
    "holiday_name",
]

DEFAULT_TZ = "Asia/Shanghai"
#: 08:30–12:00 and 13:30–17:30, 7.5 working hours a day: the usual office hours of a Chinese city government.
DEFAULT_OFFICE_HOURS: tuple[tuple[time, time], ...] = (
    (time(8, 30), time(12, 0)),
    (time(13, 30), time(17, 30)),
)

_US_PER_SECOND = 1_000_000
_US_PER_DAY = 86_400 * _US_PER_SECOND

_PKG_HOLIDAYS: Mapping[date, object] = _cc.holidays
_PKG_WORKDAYS: Mapping[date, object] = _cc.workdays
#: Years the installed ``chinesecalendar`` package has the State Council schedule for.
PACKAGE_YEARS: frozenset[int] = frozenset(range(min(_PKG_HOLIDAYS).year, max(_PKG_HOLIDAYS).year + 1))
#: the package's holiday names (English) in Chinese: "National Day" -> 国庆节
_HOLIDAY_CHINESE: Mapping[str, str] = {str(h.value): str(h.chinese) for h in _cc.Holiday}


def holiday_name(d: date) -> str | None:
    """The statutory holiday ``d`` belongs to in the State Council schedule, in Chinese (国庆节): a day off of
    that holiday or a weekend worked in its place (调休); None for an ordinary day or a year the package lacks."""
    name = _PKG_HOLIDAYS.get(d) or _PKG_WORKDAYS.get(d)
    if name is None:
        return None
    english = str(getattr(name, "value", name))
    return _HOLIDAY_CHINESE.get(english, english)


def ensure_aware(value: datetime, name: str = "datetime") -> datetime:
    """Return ``value`` unchanged if it is timezone-aware, else raise :class:`ValueError`.

    Deadlines are legal commitments to citizens; a naive datetime is ambiguous by 8 hours between a UTC
    server clock and Beijing time, so we refuse it instead of guessing.
    """
    if not isinstance(value, datetime):
        raise TypeError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")
    return value


def _us(d: timedelta) -> int:
    return (d.days * 86_400 + d.seconds) * _US_PER_SECOND + d.microseconds


def _us_of_time(t: time) -> int:
    return ((t.hour * 60 + t.minute) * 60 + t.second) * _US_PER_SECOND + t.microsecond


@dataclass(frozen=True, slots=True)
class _Year:
    """Cumulative working-day index for one calendar year."""

    jan1: int  # proleptic ordinal of 1 January
    cum: list[int]  # cum[i] = working days among the first i days of the year (len = days + 1)
    workdays: list[int]  # ordinals of the working days, ascending
    total: int  # working *microseconds* in the year


class WorkCalendar:
    """Working days and office hours of one city, with exact working-time arithmetic.

    Immutable after construction (overrides are copied), so one instance can be shared by all requests
    and threads; the per-year index is filled lazily and idempotently.
    """

    __slots__ = (
        "_day_len",
        "_day_td",
        "_epoch",
        "_loaded_years",
        "_overrides",
        "_periods",
        "_tz",
        "_years",
    )

    def __init__(
        self,
        overrides: Mapping[date, bool] | None = None,
        office_hours: Sequence[tuple[time, time]] = DEFAULT_OFFICE_HOURS,
        tz: str | tzinfo = DEFAULT_TZ,
        loaded_years: Iterable[int] = (),
    ) -> None:
        """Build a calendar.

        :param overrides: admin decisions per date, True = working day, False = day off; they win over the
            package and over the Monday–Friday fallback.
        :param office_hours: ascending, non-overlapping ``(open, close)`` wall-clock periods of a working day.
        :param tz: zone name or tzinfo of the city; results are returned in it.
        :param loaded_years: years whose full schedule the admin has entered as overrides (so
            :meth:`known_years` stops warning about them even though the package does not know them).
        """
        self._tz: tzinfo = ZoneInfo(tz) if isinstance(tz, str) else tz
        self._overrides: Mapping[date, bool] = MappingProxyType(
            {self._check_date(d): bool(v) for d, v in (overrides or {}).items()}
        )
        self._periods: tuple[tuple[int, int], ...] = self._check_periods(office_hours)
        self._day_len: int = sum(e - s for s, e in self._periods)
        self._day_td = timedelta(microseconds=self._day_len)
        self._loaded_years: frozenset[int] = frozenset(int(y) for y in loaded_years)
        self._years: dict[int, _Year] = {}
        self._epoch = datetime(1, 1, 1, tzinfo=self._tz)  # ordinal 1, local midnight

    # ------------------------------------------------------------------ configuration
    @staticmethod
    def _check_date(d: object) -> date:
        if isinstance(d, datetime) or not isinstance(d, date):
            raise TypeError(f"override keys must be dates, got {d!r}")
        return d

    @staticmethod
    def _check_periods(office_hours: Sequence[tuple[time, time]]) -> tuple[tuple[int, int], ...]:
        periods: list[tuple[int, int]] = []
        last_end = -1
        for opening, closing in office_hours:
            if opening.tzinfo is not None or closing.tzinfo is not None:
                raise ValueError("office hours are wall-clock times of the calendar's zone; drop tzinfo")
            s, e = _us_of_time(opening), _us_of_time(closing)
            if not s < e:
                raise ValueError(f"office period {opening}–{closing} must open before it closes")
            if s < last_end:
                raise ValueError("office periods must be ascending and must not overlap")
            periods.append((s, e))
            last_end = e
        if not periods:
            raise ValueError("at least one office period is needed")
        return tuple(periods)

    @property
    def tz(self) -> tzinfo:
        """The city's zone; every result is expressed in it."""
        return self._tz

    @property
    def office_hours(self) -> tuple[tuple[time, time], ...]:
        """The office periods of a working day, as configured."""
        return tuple((_time_of_us(s), _time_of_us(e)) for s, e in self._periods)

    @property
    def overrides(self) -> Mapping[date, bool]:
        """Read-only view of the admin overrides."""
        return self._overrides

    @property
    def working_day_length(self) -> timedelta:
        """Office time in one working day (7.5 h with the default hours)."""
        return self._day_td

    def known_years(self) -> frozenset[int]:
        """Years whose holiday schedule is known: the package's years plus ``loaded_years``."""
        return PACKAGE_YEARS | self._loaded_years

    def is_year_known(self, year: int) -> bool:
        """False when ``year`` is counted with the Monday–Friday fallback (plus any overrides)."""
        return year in PACKAGE_YEARS or year in self._loaded_years

    def schedule_warnings(self, today: date, years_ahead: int = 1) -> list[str]:
        """Chinese warnings for the admin UI about unknown years from ``today.year`` to ``+years_ahead``.

        The State Council publishes next year's schedule around November; until the package or an admin
        loads it, deadlines running into that year ignore its holidays, and supervisors must know.
        """
        return [
            f"{y}年节假日安排未加载，暂按周一至周五为工作日计算时限，请在管理后台录入调休安排。"
            for y in range(today.year, today.year + years_ahead + 1)
            if not self.is_year_known(y)
        ]

    # ------------------------------------------------------------------ days
    def is_working_day(self, d: date) -> bool:
        """True when offices work on ``d``: override, else package (holidays/调休), else Monday–Friday."""
        if isinstance(d, datetime):
            raise TypeError("is_working_day takes a date; use d.astimezone(calendar.tz).date() first")
        override = self._overrides.get(d)
        if override is not None:
            return override
        if d.year in PACKAGE_YEARS:
            return d in _PKG_WORKDAYS or (d.weekday() < 5 and d not in _PKG_HOLIDAYS)
        return d.weekday() < 5

    def _year(self, year: int) -> _Year:
        data = self._years.get(year)
        if data is None:
            first = date(year, 1, 1)
            jan1 = first.toordinal()
            days = date(year, 12, 31).toordinal() - jan1 + 1
            cum = [0] * (days + 1)
            workdays: list[int] = []
            n = 0
            for i in range(days):
                if self.is_working_day(date.fromordinal(jan1 + i)):
                    n += 1
                    workdays.append(jan1 + i)
                cum[i + 1] = n
            data = _Year(jan1=jan1, cum=cum, workdays=workdays, total=n * self._day_len)
            self._years[year] = data
        return data

    # ------------------------------------------------------------------ the working clock
    def _local(self, t: datetime, name: str) -> datetime:
        # Fast path: already in the city's zone (hence aware; zoneinfo always yields an offset).
        if getattr(t, "tzinfo", None) is self._tz:
            return t
        return ensure_aware(t, name).astimezone(self._tz)

    def _worked_in_day(self, tod: int) -> int:
        worked = 0
        for s, e in self._periods:
            if tod <= s:
                break
            worked += (e if tod >= e else tod) - s
        return worked

    def _pos(self, t: datetime, name: str) -> tuple[int, int]:
        """(year, working microseconds elapsed in that year up to ``t``)."""
        local = self._local(t, name)
        year = local.year
        y = self._years.get(year) or self._year(year)
        doy = local.toordinal() - y.jan1
        cum = y.cum
        before = cum[doy]
        pos = before * self._day_len
        if cum[doy + 1] != before:  # ``local`` is on a working day
            tod = ((local.hour * 60 + local.minute) * 60 + local.second) * _US_PER_SECOND + local.microsecond
            pos += self._worked_in_day(tod)
        return year, pos

    def _at(self, year: int, pos: int, end_bias: bool) -> datetime:
        """The moment whose working clock reads ``pos`` (relative to ``year``).

        ``end_bias`` picks the closing of an office period when the clock value sits exactly on a boundary
        (earliest such moment); otherwise the opening of the next one (latest such moment).
        """
        y = self._years.get(year) or self._year(year)
        while pos < 0:
            year -= 1
            y = self._year(year)
            pos += y.total
        if end_bias:
            while pos > y.total:
                pos -= y.total
                year += 1
                y = self._year(year)
            # pos > 0 here: end bias is only used for positive durations from a clock value >= 0.
            k = (pos - 1) // self._day_len
            rem = pos - k * self._day_len  # in (0, day_len]
        else:
            while pos >= y.total:
                pos -= y.total
                year += 1
                y = self._year(year)
            k, rem = divmod(pos, self._day_len)  # rem in [0, day_len)
        # Wall-clock arithmetic on an aware datetime keeps the zone and yields local wall time (fold=0),
        # which is what office hours are; cheaper than building the datetime from its fields.
        return self._epoch + timedelta(days=y.workdays[k] - 1, microseconds=self._tod_for(rem, end_bias))

    def _tod_for(self, rem: int, end_bias: bool) -> int:
        for s, e in self._periods:
            length = e - s
            if rem < length or (end_bias and rem == length):
                return s + rem
            rem -= length
        # Unreachable: rem is bounded by the day length.
        raise AssertionError("working offset beyond the working day")

    # ------------------------------------------------------------------ public arithmetic
    def is_working_time(self, t: datetime) -> bool:
        """True when the clock runs at ``t``: a working day, inside a half-open office period."""
        local = self._local(t, "t")
        if not self.is_working_day(local.date()):
            return False
        tod = _us_of_time(local.time())
        return any(s <= tod < e for s, e in self._periods)

    def next_working_moment(self, t: datetime) -> datetime:
        """``t`` itself if the clock runs at ``t``, else the next opening of an office period."""
        year, pos = self._pos(t, "t")
        return self._at(year, pos, end_bias=False)

    def add_working_time(self, start: datetime, duration: timedelta) -> datetime:
        """The deadline ``duration`` of working time after ``start`` (see module docstring for boundaries).

        Example: 2026-09-30 16:00 + 8 working hours = 2026-10-08 16:30 (1.5 h on 30 Sept, National Day
        1–7 Oct off, 3.5 h + 3 h on 8 Oct).
        """
        if not isinstance(duration, timedelta):
            raise TypeError("duration must be a timedelta")
        amount = _us(duration)
        if amount == 0:
            return self._local(start, "start")
        year, pos = self._pos(start, "start")
        return self._at(year, pos + amount, end_bias=amount > 0)

    def add_working_days(self, start: datetime, days: int) -> datetime:
        """``days`` working days after ``start`` = ``days`` × the office length of a working day."""
        if isinstance(days, bool) or not isinstance(days, int):
            raise TypeError("days must be an int")
        amount = days * self._day_len
        if amount == 0:
            return self._local(start, "start")
        year, pos = self._pos(start, "start")
        return self._at(year, pos + amount, end_bias=amount > 0)

    def add_working_times(self, start: datetime, durations: Iterable[timedelta]) -> tuple[datetime, ...]:
        """``add_working_time(start, d)`` for each ``d``, locating ``start`` once (sign + reply deadlines)."""
        year, pos = self._pos(start, "start")
        out: list[datetime] = []
        for duration in durations:
            if not isinstance(duration, timedelta):
                raise TypeError("durations must be timedeltas")
            amount = _us(duration)
            out.append(self._at(year, pos + amount, amount > 0) if amount else self._local(start, "start"))
        return tuple(out)

    def working_time_between(self, a: datetime, b: datetime) -> timedelta:
        """Signed working time from ``a`` to ``b``: ``W(b) - W(a)``; negative when ``b`` is before ``a``."""
        ya, pa = self._pos(a, "a")
        yb, pb = self._pos(b, "b")
        if ya == yb:
            return timedelta(microseconds=pb - pa)
        sign = 1
        if yb < ya:
            ya, pa, yb, pb, sign = yb, pb, ya, pa, -1
        total = pb - pa
        for year in range(ya, yb):
            total += self._year(year).total
        return timedelta(microseconds=sign * total)

    def working_days_between(self, a: date, b: date) -> int:
        """Number of working days ``d`` with ``a <= d < b`` (negative if ``b < a``); for reports."""
        if b < a:
            return -self.working_days_between(b, a)
        ya, yb = self._year(a.year), self._year(b.year)
        n = yb.cum[b.toordinal() - yb.jan1] - ya.cum[a.toordinal() - ya.jan1]
        for year in range(a.year, b.year):
            n += len(self._year(year).workdays)
        return n


def _time_of_us(us: int) -> time:
    hours, rest = divmod(us, 3_600 * _US_PER_SECOND)
    minutes, rest = divmod(rest, 60 * _US_PER_SECOND)
    seconds, micros = divmod(rest, _US_PER_SECOND)
    return time(hours, minutes, seconds, micros)
