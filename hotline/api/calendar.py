"""REST: calendar."""

from __future__ import annotations

import itertools
from datetime import date, datetime, time, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator
from pydantic_core import PydanticCustomError
from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline import audit
from hotline.api.deps import ADMIN, Note, ServicesDep, SessionDep, UserDep, require
from hotline.errors import Invalid, NotFound
from hotline.fields import FIRST_DAY, LAST_DAY, Day
from hotline.models import (
    CalendarOverride,
    CalendarYear,
    OfficeHoursRow,
)
from hotline.services import Services, timing_changed
from routing.calendar import PACKAGE_YEARS, holiday_name

router = APIRouter(prefix="/api")


class OverrideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    working: bool
    note: Note = ""


class OverrideOut(BaseModel):
    day: date
    working: bool
    note: str


class CalendarOut(BaseModel):
    known_years: list[int]
    package_years: list[int]
    loaded_years: list[int]
    warnings: list[str]
    overrides: list[OverrideOut]


def _calendar_out(session: Session, services: Services, year: int | None) -> CalendarOut:
    stmt = select(CalendarOverride).order_by(CalendarOverride.day)
    if year is not None:
        stmt = stmt.where(CalendarOverride.day >= date(year, 1, 1), CalendarOverride.day <= date(year, 12, 31))
    cal = services.timing.calendar
    return CalendarOut(
        known_years=sorted(cal.known_years()),
        package_years=sorted(PACKAGE_YEARS),
        loaded_years=sorted(session.scalars(select(CalendarYear.year))),
        warnings=cal.schedule_warnings(datetime.now(cal.tz).date()),
        overrides=[OverrideOut.model_validate(o, from_attributes=True) for o in session.scalars(stmt)],
    )


YearQuery = Annotated[int | None, Query(ge=FIRST_DAY.year, le=LAST_DAY.year)]


@router.get("/calendar", response_model=CalendarOut, tags=["calendar"])
def get_calendar(session: SessionDep, services: ServicesDep, actor: UserDep, year: YearQuery = None) -> CalendarOut:
    """Overrides, the years whose schedule is known, and the warnings ("2027年节假日安排未加载…")."""
    return _calendar_out(session, services, year)


@router.put("/calendar/overrides/{day}", response_model=CalendarOut, tags=["calendar"])
def put_override(day: Day, body: OverrideIn, session: SessionDep, services: ServicesDep, actor: UserDep
                 ) -> CalendarOut:
    """Make a day a working day (调休) or a day off (local holiday); new deadlines count with it at once."""
    require(actor, *ADMIN)
    row = session.get(CalendarOverride, day)
    before = audit.row_dict(row) if row is not None else None
    if row is None:
        row = CalendarOverride(day=day, working=body.working, note=body.note)
        session.add(row)
    else:
        row.working, row.note = body.working, body.note
    audit.record(session, actor, "update" if before else "create", "calendar_override", day.isoformat(),
                 before=before, after=audit.row_dict(row),
                 summary=f"{day.isoformat()} 设为{'工作日' if body.working else '休息日'}")
    session.commit()
    timing_changed(services, session)
    return _calendar_out(session, services, day.year)


@router.delete("/calendar/overrides/{day}", response_model=CalendarOut, tags=["calendar"])
def delete_override(day: Day, session: SessionDep, services: ServicesDep, actor: UserDep) -> CalendarOut:
    require(actor, *ADMIN)
    row = session.get(CalendarOverride, day)
    if row is None:
        raise NotFound(f"no override for {day.isoformat()}")
    audit.record(session, actor, "delete", "calendar_override", day.isoformat(), before=audit.row_dict(row),
                 summary=f"删除 {day.isoformat()} 的调整")
    session.delete(row)
    session.commit()
    timing_changed(services, session)
    return _calendar_out(session, services, day.year)


class YearIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: Note = ""


@router.put("/calendar/years/{year}", response_model=CalendarOut, tags=["calendar"])
def mark_year_loaded(year: int, session: SessionDep, services: ServicesDep, actor: UserDep,
                     body: Annotated[YearIn | None, Body()] = None) -> CalendarOut:
    """The admin has entered this year's whole State Council schedule as overrides: stop warning about it."""
    require(actor, *ADMIN)
    if not 1900 <= year <= 2200:
        raise Invalid("year must be between 1900 and 2200", field="year")
    row = session.get(CalendarYear, year)
    before = audit.row_dict(row) if row is not None else None
    if row is None:
        row = CalendarYear(year=year, note=(body.note if body else ""))
        session.add(row)
    elif body is not None:
        row.note = body.note
    session.flush()
    audit.record(session, actor, "update" if before else "create", "calendar_year", year, before=before,
                 after=audit.row_dict(row), summary=f"{year}年节假日安排标记为已录入")
    session.commit()
    timing_changed(services, session)
    return _calendar_out(session, services, year)


@router.delete("/calendar/years/{year}", response_model=CalendarOut, tags=["calendar"])
def unmark_year(year: int, session: SessionDep, services: ServicesDep, actor: UserDep) -> CalendarOut:
    require(actor, *ADMIN)
    row = session.get(CalendarYear, year) if 1900 <= year <= 2200 else None
    if row is None:
        raise NotFound(f"year {year} is not marked as loaded")
    audit.record(session, actor, "delete", "calendar_year", year, before=audit.row_dict(row),
                 summary=f"取消{year}年节假日安排的已录入标记")
    session.delete(row)
    session.commit()
    timing_changed(services, session)
    return _calendar_out(session, services, year)


class DayOut(BaseModel):
    day: date
    working: bool  # as deadlines count it: the State Council schedule with the city's overrides applied
    overridden: bool  # the city's own override decides this day
    holiday: str | None  # the statutory holiday of the day (国庆节), a day off or its 调休 working day


class MonthOut(BaseModel):
    year: int
    month: int
    known: bool  # the year's schedule is known (package or loaded): otherwise weekends only
    days: list[DayOut]


@router.get("/calendar/month", response_model=MonthOut, tags=["calendar"])
def get_month(services: ServicesDep, actor: UserDep, year: Annotated[int, Query(ge=1900, le=2200)],
              month: Annotated[int, Query(ge=1, le=12)]) -> MonthOut:
    """Every day of one month as the deadlines count it, for the admin's calendar view."""
    cal = services.timing.calendar
    first = date(year, month, 1)
    days = [first + timedelta(days=i) for i in range(31) if (first + timedelta(days=i)).month == month]
    overrides = cal.overrides
    return MonthOut(year=year, month=month, known=cal.is_year_known(year),
                    days=[DayOut(day=d, working=cal.is_working_day(d), overridden=d in overrides,
                                 holiday=holiday_name(d)) for d in days])


# --- office hours: data (one row), the setting HOTLINE_OFFICE_HOURS as the default -----------------------------


def _clock(value: str) -> str:
    """"8:30" or "08:30" -> "08:30"; a time of day or a Chinese 422."""
    hours, _, minutes = value.partition(":")
    if not (hours.isdigit() and minutes.isdigit() and len(minutes) == 2 and int(hours) < 24 and int(minutes) < 60):
        raise PydanticCustomError("clock_time", "“{value}”不是时刻，请写成 08:30 (not a time of day HH:MM)",
                                  {"value": value})
    return f"{int(hours):02d}:{minutes}"


Clock = Annotated[str, StringConstraints(strip_whitespace=True, max_length=5), AfterValidator(_clock)]


class PeriodIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    opens: Clock
    closes: Clock


class OfficeHoursIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    periods: list[PeriodIn] = Field(min_length=1, max_length=6)

    @field_validator("periods")
    @classmethod
    def _ascending_without_overlap(cls, periods: list[PeriodIn]) -> list[PeriodIn]:
        ordered = sorted(periods, key=lambda p: p.opens)
        for period in ordered:
            if period.closes <= period.opens:
                raise PydanticCustomError(
                    "period_reversed",
                    "时段 {opens}–{closes} 的结束时间须晚于开始时间 (a period must end after it opens)",
                    {"opens": period.opens, "closes": period.closes})
        for before, after in itertools.pairwise(ordered):
            if after.opens < before.closes:
                raise PydanticCustomError(
                    "periods_overlap", "时段 {a} 与 {b} 重叠，请调整 (office periods must not overlap)",
                    {"a": f"{before.opens}–{before.closes}", "b": f"{after.opens}–{after.closes}"})
        return ordered


class OfficeHoursOut(BaseModel):
    periods: list[tuple[str, str]]  # in force now: ("08:30", "12:00"), … city wall-clock time
    source: Literal["admin", "setting"]  # set on the admin desk, or the setting HOTLINE_OFFICE_HOURS
    default: list[tuple[str, str]]  # what the setting gives (restored by DELETE)
    day_minutes: int  # working time of one working day


def _hhmm(periods: tuple[tuple[time, time], ...]) -> list[tuple[str, str]]:
    return [(start.strftime("%H:%M"), end.strftime("%H:%M")) for start, end in periods]


def _office_hours_out(session: Session, services: Services) -> OfficeHoursOut:
    timing = services.timing
    return OfficeHoursOut(periods=_hhmm(timing.calendar.office_hours),
                          source="admin" if session.get(OfficeHoursRow, 1) is not None else "setting",
                          default=_hhmm(timing.default_office_hours),
                          day_minutes=round(timing.calendar.working_day_length.total_seconds() / 60))


def _hours_text(periods: list[tuple[str, str]] | list[list[str]]) -> str:
    return "、".join(f"{start}–{end}" for start, end in periods)


@router.get("/calendar/office-hours", response_model=OfficeHoursOut, tags=["calendar"])
def get_office_hours(session: SessionDep, services: ServicesDep, _actor: UserDep) -> OfficeHoursOut:
    """The working periods of a working day that deadlines count with, and where they come from."""
    return _office_hours_out(session, services)


@router.put("/calendar/office-hours", response_model=OfficeHoursOut, tags=["calendar"])
def put_office_hours(body: OfficeHoursIn, session: SessionDep, services: ServicesDep, actor: UserDep
                     ) -> OfficeHoursOut:
    """Admins: the city's office hours; deadlines computed from now on (in every process) count with them.
    Deadlines already set are not recomputed."""
    require(actor, *ADMIN)
    row = session.get(OfficeHoursRow, 1)
    before = audit.row_dict(row) if row is not None else None
    periods = [[p.opens, p.closes] for p in body.periods]
    if row is None:
        row = OfficeHoursRow(id=1, periods=periods)
        session.add(row)
    else:
        row.periods = periods
    session.flush()
    audit.record(session, actor, "update" if before else "create", "office_hours", 1, before=before,
                 after=audit.row_dict(row), summary=f"办公时间改为 {_hours_text(periods)}")
    session.commit()
    timing_changed(services, session)
    return _office_hours_out(session, services)


@router.delete("/calendar/office-hours", response_model=OfficeHoursOut, tags=["calendar"])
def reset_office_hours(session: SessionDep, services: ServicesDep, actor: UserDep) -> OfficeHoursOut:
    """Admins: back to the setting HOTLINE_OFFICE_HOURS."""
    require(actor, *ADMIN)
    row = session.get(OfficeHoursRow, 1)
    if row is None:
        raise NotFound("office hours are the setting's already", zh="办公时间已是系统默认设置")
    audit.record(session, actor, "delete", "office_hours", 1, before=audit.row_dict(row),
                 summary=f"办公时间恢复为默认 {_hours_text(_hhmm(services.timing.default_office_hours))}")
    session.delete(row)
    session.commit()
    timing_changed(services, session)
    return _office_hours_out(session, services)
