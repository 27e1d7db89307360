"""REST: calendar."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Body, Query
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline.api.deps import ADMIN, Note, ServicesDep, SessionDep, UserDep, require
from hotline.errors import Invalid, NotFound
from hotline.fields import FIRST_DAY, LAST_DAY, Day
from hotline.models import (
    CalendarOverride,
    CalendarYear,
)
from hotline.services import Services, timing_changed
from routing.calendar import PACKAGE_YEARS

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
    if row is None:
        session.add(CalendarOverride(day=day, working=body.working, note=body.note))
    else:
        row.working, row.note = body.working, body.note
    session.commit()
    timing_changed(services, session)
    return _calendar_out(session, services, day.year)


@router.delete("/calendar/overrides/{day}", response_model=CalendarOut, tags=["calendar"])
def delete_override(day: Day, session: SessionDep, services: ServicesDep, actor: UserDep) -> CalendarOut:
    require(actor, *ADMIN)
    row = session.get(CalendarOverride, day)
    if row is None:
        raise NotFound(f"no override for {day.isoformat()}")
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
    if row is None:
        session.add(CalendarYear(year=year, note=(body.note if body else "")))
    elif body is not None:
        row.note = body.note
    session.commit()
    timing_changed(services, session)
    return _calendar_out(session, services, year)


@router.delete("/calendar/years/{year}", response_model=CalendarOut, tags=["calendar"])
def unmark_year(year: int, session: SessionDep, services: ServicesDep, actor: UserDep) -> CalendarOut:
    require(actor, *ADMIN)
    row = session.get(CalendarYear, year) if 1900 <= year <= 2200 else None
    if row is None:
        raise NotFound(f"year {year} is not marked as loaded")
    session.delete(row)
    session.commit()
    timing_changed(services, session)
    return _calendar_out(session, services, year)
