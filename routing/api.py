"""REST endpoints for the directory, dispatch catalogue, calendar, deadline policies, supervision, accountability
and unit scorecards. Mounted by ``hotline.app`` when this module exists.

Editing rules (admins) takes effect at once, without a restart: after a directory or catalogue change the suggester
is refreshed (``services.suggester.refresh()``), after a calendar or policy change ``services.timing.reload``
rebuilds the calendar and policy table. New deadlines follow the new policies; deadlines already given to units
are commitments and are not recomputed. In a deployment with several API processes each reloads on its own
changes only; the others pick changes up at their next start (see the report for the bus-based follow-up).

Visibility: supervisors, dispatchers and admins see every supervision order, accountability case and scorecard;
a unit handler only its own unit's; agents get 403 for these lists.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hotline.api import IdPath, IdQuery, ServicesDep, SessionDep, UserDep, require
from hotline.auth import Actor
from hotline.errors import Conflict, Forbidden, Invalid, NotFound
from hotline.fields import Id, NoNul
from hotline.models import (
    KIND_LABELS,
    AccountabilityCase,
    Area,
    CalendarOverride,
    CalendarYear,
    CatalogueRule,
    Category,
    DeadlinePolicyRow,
    Role,
    SupervisionOrder,
    Ticket,
    Unit,
)
from hotline.services import Services, announce_config_change, refresh_routing
from hotline.timing import row_policy
from routing import directory, scorecards
from routing.calendar import PACKAGE_YEARS
from routing.catalogue import category_path
from routing.deadlines import KINDS, DeadlinePolicy, compute_deadlines

router = APIRouter(prefix="/api")
ADMIN = (Role.admin,)
DESK = (Role.agent, Role.dispatcher, Role.supervisor, Role.admin)
OVERSIGHT = (Role.supervisor, Role.dispatcher, Role.admin)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), NoNul]
Code = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9_.\-]{1,64}$"), NoNul]
Note = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000), NoNul]


def _refresh_routing(services: Services) -> None:
    """Routing uses the change at once: this process rebuilds its directory and catalogue now, every other API
    process when the bus brings it the notice (``hotline.services.follow_config_changes``)."""
    refresh_routing(services)
    announce_config_change(services, "directory")


def _reload_timing(services: Services, session: Session) -> None:
    services.timing.reload(session)
    announce_config_change(services, "timing")


# --- areas and units -------------------------------------------------------------------------------------------


class AreaIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: Code
    name: Name
    level: Literal["city", "district", "street", "community"]
    parent_id: Id | None = None
    aliases: list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50), NoNul]] = (
        Field(default_factory=list, max_length=30)
    )
    active: bool = True


class AreaOut(BaseModel):
    id: int
    code: str
    name: str
    level: str
    parent_id: int | None
    aliases: list[str]
    active: bool


def _check_area(session: Session, body: AreaIn, area_id: int | None) -> None:
    levels = directory.AREA_LEVELS
    if body.parent_id is None:
        if body.level != "city":
            raise Invalid(f"a {body.level} needs a parent area (parent_id)", field="parent_id")
    else:
        parent = session.get(Area, body.parent_id)
        if parent is None:
            raise Invalid(f"unknown parent area {body.parent_id}", field="parent_id")
        if parent.id == area_id:
            raise Invalid("an area cannot be its own parent", field="parent_id")
        if parent.level not in levels or levels.index(parent.level) != levels.index(body.level) - 1:
            raise Invalid(f"the parent of a {body.level} must be one level up, not a {parent.level}",
                          field="parent_id")
    clash = session.scalar(select(Area.id).where(Area.code == body.code, Area.id != (area_id or 0)))
    if clash is not None:
        raise Conflict(f"area code '{body.code}' is already used by area {clash}")


@router.post("/areas", response_model=AreaOut, status_code=201, tags=["directory"])
def create_area(body: AreaIn, session: SessionDep, services: ServicesDep, actor: UserDep) -> AreaOut:
    require(actor, *ADMIN)
    _check_area(session, body, None)
    area = Area(**body.model_dump())
    session.add(area)
    session.commit()
    _refresh_routing(services)
    return AreaOut.model_validate(area, from_attributes=True)


@router.put("/areas/{area_id}", response_model=AreaOut, tags=["directory"])
def update_area(area_id: IdPath, body: AreaIn, session: SessionDep, services: ServicesDep, actor: UserDep) -> AreaOut:
    require(actor, *ADMIN)
    area = session.get(Area, area_id)
    if area is None:
        raise NotFound(f"area {area_id} not found")
    _check_area(session, body, area_id)
    children = session.scalar(select(func.count()).where(Area.parent_id == area_id)) or 0
    if children and body.level != area.level:
        raise Conflict(f"area {area.code} has {children} sub-areas; its level cannot change")
    for key, value in body.model_dump().items():
        setattr(area, key, value)
    session.commit()
    _refresh_routing(services)
    return AreaOut.model_validate(area, from_attributes=True)


@router.delete("/areas/{area_id}", response_model=AreaOut, tags=["directory"])
def deactivate_area(area_id: IdPath, session: SessionDep, services: ServicesDep, actor: UserDep) -> AreaOut:
    """Areas are deactivated, never deleted: tickets and rules keep naming them."""
    require(actor, *ADMIN)
    area = session.get(Area, area_id)
    if area is None:
        raise NotFound(f"area {area_id} not found")
    children = list(session.scalars(select(Area.code).where(Area.parent_id == area_id, Area.active)))
    if children:
        raise Conflict(f"deactivate the sub-areas first: {', '.join(children[:20])}", sub_areas=children)
    area.active = False
    session.commit()
    _refresh_routing(services)
    return AreaOut.model_validate(area, from_attributes=True)


class UnitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: Code
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NoNul]
    short_name: Name | None = None
    kind: Literal["government", "bureau", "street_office", "community", "enterprise", "hotline"]
    area_id: Id | None = None
    parent_id: Id | None = None
    phone: Annotated[str, StringConstraints(strip_whitespace=True, max_length=32), NoNul] | None = None
    active: bool = True


class UnitOut(BaseModel):
    id: int
    code: str
    name: str
    short_name: str | None
    kind: str
    area_id: int | None
    parent_id: int | None
    phone: str | None
    active: bool


def _check_unit(session: Session, body: UnitIn, unit_id: int | None) -> None:
    if body.area_id is not None and session.get(Area, body.area_id) is None:
        raise Invalid(f"unknown area {body.area_id}", field="area_id")
    if body.parent_id is not None:
        seen = {unit_id} if unit_id else set()
        cur: int | None = body.parent_id
        while cur is not None:
            if cur in seen:
                raise Invalid("the parent unit chain would loop back to this unit", field="parent_id")
            seen.add(cur)
            parent = session.get(Unit, cur)
            if parent is None:
                raise Invalid(f"unknown parent unit {cur}", field="parent_id")
            cur = parent.parent_id
    clash = session.scalar(select(Unit.id).where(Unit.code == body.code, Unit.id != (unit_id or 0)))
    if clash is not None:
        raise Conflict(f"unit code '{body.code}' is already used by unit {clash}")


def _lead_rules(session: Session, unit_id: int) -> list[int]:
    return list(session.scalars(
        select(CatalogueRule.id).where(CatalogueRule.lead_unit_id == unit_id, CatalogueRule.active)
    ))


@router.post("/units", response_model=UnitOut, status_code=201, tags=["directory"])
def create_unit(body: UnitIn, session: SessionDep, services: ServicesDep, actor: UserDep) -> UnitOut:
    require(actor, *ADMIN)
    _check_unit(session, body, None)
    unit = Unit(**body.model_dump())
    session.add(unit)
    session.commit()
    _refresh_routing(services)
    return UnitOut.model_validate(unit, from_attributes=True)


@router.put("/units/{unit_id}", response_model=UnitOut, tags=["directory"])
def update_unit(unit_id: IdPath, body: UnitIn, session: SessionDep, services: ServicesDep, actor: UserDep) -> UnitOut:
    require(actor, *ADMIN)
    unit = session.get(Unit, unit_id)
    if unit is None:
        raise NotFound(f"unit {unit_id} not found")
    _check_unit(session, body, unit_id)
    if not body.active and unit.active and (rules := _lead_rules(session, unit_id)):
        raise Conflict(f"unit leads active catalogue rules {rules}; reassign them first", rule_ids=rules)
    for key, value in body.model_dump().items():
        setattr(unit, key, value)
    session.commit()
    _refresh_routing(services)
    return UnitOut.model_validate(unit, from_attributes=True)


@router.delete("/units/{unit_id}", response_model=UnitOut, tags=["directory"])
def deactivate_unit(unit_id: IdPath, session: SessionDep, services: ServicesDep, actor: UserDep) -> UnitOut:
    """A unit that still leads catalogue rules is refused (409 listing them): tickets would silently go unrouted."""
    require(actor, *ADMIN)
    unit = session.get(Unit, unit_id)
    if unit is None:
        raise NotFound(f"unit {unit_id} not found")
    rules = _lead_rules(session, unit_id)
    if rules:
        raise Conflict(f"unit leads active catalogue rules {rules}; reassign them first", rule_ids=rules)
    unit.active = False
    session.commit()
    _refresh_routing(services)
    return UnitOut.model_validate(unit, from_attributes=True)


# --- catalogue rules -------------------------------------------------------------------------------------------


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    category_id: Id
    area_id: Id
    lead_unit_id: Id
    co_unit_ids: list[Id] = Field(default_factory=list, max_length=20)
    note: Note = ""
    active: bool = True


class RuleOut(BaseModel):
    id: int
    category_id: int
    category_code: str | None
    category_name: str | None
    area_id: int
    area_code: str | None
    area_name: str | None
    lead_unit_id: int
    lead_unit_name: str | None
    co_unit_ids: list[int]
    note: str
    active: bool


class CatalogueOut(BaseModel):
    rules: list[RuleOut]
    conflicts: list[list[int]]


def _rule_out(session: Session, rules: list[CatalogueRule]) -> list[RuleOut]:
    cats = {c.id: c for c in session.scalars(select(Category))}
    areas = {a.id: a for a in session.scalars(select(Area))}
    units = {uid: name for uid, name in session.execute(select(Unit.id, Unit.name))}
    out = []
    for r in rules:
        cat, area = cats.get(r.category_id), areas.get(r.area_id)
        out.append(RuleOut(
            id=r.id, category_id=r.category_id, category_code=cat.code if cat else None,
            category_name=cat.name if cat else None, area_id=r.area_id, area_code=area.code if area else None,
            area_name=area.name if area else None, lead_unit_id=r.lead_unit_id,
            lead_unit_name=units.get(r.lead_unit_id), co_unit_ids=list(r.co_unit_ids or []), note=r.note,
            active=r.active,
        ))
    return out


def _check_rule(session: Session, body: RuleIn, rule_id: int | None) -> None:
    category = session.get(Category, body.category_id)
    if category is None or not category.active:
        raise Invalid(f"unknown or inactive category {body.category_id}", field="category_id")
    if session.get(Area, body.area_id) is None:
        raise Invalid(f"unknown area {body.area_id}", field="area_id")
    ids = [body.lead_unit_id, *body.co_unit_ids]
    active = set(session.scalars(select(Unit.id).where(Unit.id.in_(ids), Unit.active)))
    missing = [u for u in ids if u not in active]
    if missing:
        raise Invalid(f"unknown or inactive unit id(s): {missing}", field="lead_unit_id")
    if body.lead_unit_id in body.co_unit_ids:
        raise Invalid("the lead unit cannot also be a co-unit", field="co_unit_ids")
    if body.active:
        clash = session.scalar(select(CatalogueRule.id).where(
            CatalogueRule.category_id == body.category_id, CatalogueRule.area_id == body.area_id,
            CatalogueRule.active, CatalogueRule.id != (rule_id or 0)))
        if clash is not None:
            raise Conflict(f"rule #{clash} already covers this category × area; edit it instead", rule_id=clash)


@router.get("/catalogue", response_model=CatalogueOut, tags=["directory"])
def list_rules(session: SessionDep, actor: UserDep, active: bool | None = True) -> CatalogueOut:
    require(actor, *DESK)
    stmt = select(CatalogueRule).order_by(CatalogueRule.id)
    if active is not None:
        stmt = stmt.where(CatalogueRule.active == active)
    snapshot = directory.RoutingSnapshot.load(session)
    return CatalogueOut(
        rules=_rule_out(session, list(session.scalars(stmt))),
        conflicts=[list(c) for c in snapshot.catalogue.conflicts()],
    )


@router.post("/catalogue", response_model=RuleOut, status_code=201, tags=["directory"])
def create_rule(body: RuleIn, session: SessionDep, services: ServicesDep, actor: UserDep) -> RuleOut:
    require(actor, *ADMIN)
    _check_rule(session, body, None)
    rule = CatalogueRule(**body.model_dump())
    session.add(rule)
    session.commit()
    _refresh_routing(services)
    return _rule_out(session, [rule])[0]


@router.put("/catalogue/{rule_id}", response_model=RuleOut, tags=["directory"])
def update_rule(rule_id: IdPath, body: RuleIn, session: SessionDep, services: ServicesDep, actor: UserDep) -> RuleOut:
    require(actor, *ADMIN)
    rule = session.get(CatalogueRule, rule_id)
    if rule is None:
        raise NotFound(f"catalogue rule {rule_id} not found")
    _check_rule(session, body, rule_id)
    for key, value in body.model_dump().items():
        setattr(rule, key, value)
    session.commit()
    _refresh_routing(services)
    return _rule_out(session, [rule])[0]


@router.delete("/catalogue/{rule_id}", response_model=RuleOut, tags=["directory"])
def deactivate_rule(rule_id: IdPath, session: SessionDep, services: ServicesDep, actor: UserDep) -> RuleOut:
    """Rules are deactivated, not erased: past routing explanations cite their ids."""
    require(actor, *ADMIN)
    rule = session.get(CatalogueRule, rule_id)
    if rule is None:
        raise NotFound(f"catalogue rule {rule_id} not found")
    rule.active = False
    session.commit()
    _refresh_routing(services)
    return _rule_out(session, [rule])[0]


class UnitRef(BaseModel):
    id: int
    code: str
    name: str


class RouteOut(BaseModel):
    category_id: int
    category_path: list[str]
    area_id: int | None
    area_path: list[str]
    unit: UnitRef | None
    co_units: list[UnitRef]
    source: str
    rule_id: int | None
    specificity: tuple[int, int] | None
    conflicting_rule_ids: list[int]
    explanation: str
    candidates: list[dict[str, Any]]


@router.get("/route", response_model=RouteOut, tags=["directory"])
def explain_route(session: SessionDep, actor: UserDep, category_id: Annotated[int, Query(ge=1, le=2**31 - 1)],
                  area_id: IdQuery = None) -> RouteOut:
    """Where the catalogue sends a category × area and why: the rule used and every other rule that covered it."""
    require(actor, *DESK)
    snapshot = directory.RoutingSnapshot.load(session)
    if category_id not in snapshot.category_codes:
        raise NotFound(f"category {category_id} not found (or inactive)")
    if area_id is not None and area_id not in snapshot.area_paths:
        raise NotFound(f"area {area_id} not found")
    decision, candidates = snapshot.route(category_id, area_id)

    def ref(code: str) -> UnitRef:
        u = snapshot.units_by_code[code]
        return UnitRef(id=u.id, code=u.code, name=u.name)

    return RouteOut(
        category_id=category_id,
        category_path=list(category_path(snapshot.category_codes[category_id])),
        area_id=area_id,
        area_path=snapshot.area_path(area_id),
        unit=ref(decision.lead) if decision.lead else None,
        co_units=[ref(c) for c in decision.co],
        source=decision.source,
        rule_id=decision.rule_id,
        specificity=decision.specificity,
        conflicting_rule_ids=list(decision.conflicting_rule_ids),
        explanation=decision.explanation,
        candidates=candidates,
    )


# --- directory files -------------------------------------------------------------------------------------------


class ImportOut(BaseModel):
    dry_run: bool
    created: dict[str, int]
    updated: dict[str, int]


def _import(session: Session, services: Services, tables: dict[str, list[directory.Row]], dry_run: bool
            ) -> ImportOut:
    report = directory.import_directory(session, tables, dry_run=dry_run)
    if not dry_run:
        session.commit()
        _refresh_routing(services)
    return ImportOut(dry_run=dry_run, created=report.created, updated=report.updated)


@router.post("/directory/import.xlsx", response_model=ImportOut, tags=["directory"])
def import_xlsx(session: SessionDep, services: ServicesDep, actor: UserDep,
                body: Annotated[bytes, Body(media_type=XLSX)], dry_run: bool = False) -> ImportOut:
    """Upload the workbook as the request body (sheets 地区, 单位, 派单目录); all or nothing, errors by row."""
    require(actor, *ADMIN)
    return _import(session, services, directory.read_xlsx(body), dry_run)


@router.post("/directory/import.csv", response_model=ImportOut, tags=["directory"])
def import_csv(session: SessionDep, services: ServicesDep, actor: UserDep,
               body: Annotated[bytes, Body(media_type="text/csv")],
               kind: Literal["areas", "units", "rules"], dry_run: bool = False) -> ImportOut:
    require(actor, *ADMIN)
    return _import(session, services, directory.read_csv(kind, body), dry_run)


@router.get("/directory/export.xlsx", tags=["directory"], response_class=Response)
def export_xlsx(session: SessionDep, actor: UserDep) -> Response:
    require(actor, *DESK)
    return Response(directory.export_xlsx(session), media_type=XLSX,
                    headers={"Content-Disposition": 'attachment; filename="directory.xlsx"'})


@router.get("/directory/export.csv", tags=["directory"], response_class=Response)
def export_csv(session: SessionDep, actor: UserDep, kind: Literal["areas", "units", "rules"]) -> Response:
    require(actor, *DESK)
    return Response(directory.export_csv(session, kind), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{kind}.csv"'})


# --- calendar --------------------------------------------------------------------------------------------------


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


YearQuery = Annotated[int | None, Query(ge=1900, le=2200)]


@router.get("/calendar", response_model=CalendarOut, tags=["calendar"])
def get_calendar(session: SessionDep, services: ServicesDep, actor: UserDep, year: YearQuery = None) -> CalendarOut:
    """Overrides, the years whose schedule is known, and the warnings ("2027年节假日安排未加载…")."""
    return _calendar_out(session, services, year)


def _check_day(day: date) -> None:
    if not 1900 <= day.year <= 2200:
        raise Invalid("day must be between 1900 and 2200", field="day")


@router.put("/calendar/overrides/{day}", response_model=CalendarOut, tags=["calendar"])
def put_override(day: date, body: OverrideIn, session: SessionDep, services: ServicesDep, actor: UserDep
                 ) -> CalendarOut:
    """Make a day a working day (调休) or a day off (local holiday); new deadlines count with it at once."""
    require(actor, *ADMIN)
    _check_day(day)
    row = session.get(CalendarOverride, day)
    if row is None:
        session.add(CalendarOverride(day=day, working=body.working, note=body.note))
    else:
        row.working, row.note = body.working, body.note
    session.commit()
    _reload_timing(services, session)
    return _calendar_out(session, services, day.year)


@router.delete("/calendar/overrides/{day}", response_model=CalendarOut, tags=["calendar"])
def delete_override(day: date, session: SessionDep, services: ServicesDep, actor: UserDep) -> CalendarOut:
    require(actor, *ADMIN)
    _check_day(day)
    row = session.get(CalendarOverride, day)
    if row is None:
        raise NotFound(f"no override for {day.isoformat()}")
    session.delete(row)
    session.commit()
    _reload_timing(services, session)
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
    _reload_timing(services, session)
    return _calendar_out(session, services, year)


@router.delete("/calendar/years/{year}", response_model=CalendarOut, tags=["calendar"])
def unmark_year(year: int, session: SessionDep, services: ServicesDep, actor: UserDep) -> CalendarOut:
    require(actor, *ADMIN)
    row = session.get(CalendarYear, year) if 1900 <= year <= 2200 else None
    if row is None:
        raise NotFound(f"year {year} is not marked as loaded")
    session.delete(row)
    session.commit()
    _reload_timing(services, session)
    return _calendar_out(session, services, year)


# --- deadline policies -----------------------------------------------------------------------------------------


class PolicyIn(BaseModel):
    """``scope``: kind (non-urgent default of ``kind``), urgent (any kind, or ``kind`` only) or category (non-urgent
    tickets of ``category_id``'s subtree, any kind). Durations are working time unless ``clock_time``."""

    model_config = ConfigDict(extra="forbid")
    scope: Literal["kind", "urgent", "category"]
    kind: Literal["consultation", "help", "complaint", "report", "suggestion", "praise"] | None = None
    category_id: Id | None = None
    sign_minutes: int = Field(default=0, ge=0, le=60 * 24 * 60)
    sign_days: int = Field(default=0, ge=0, le=366)
    reply_minutes: int = Field(default=0, ge=0, le=60 * 24 * 60)
    reply_days: int = Field(default=0, ge=0, le=366)
    clock_time: bool = False
    note: Note = ""

    @model_validator(mode="after")
    def _scope_fields(self) -> PolicyIn:
        if self.scope == "kind" and (self.kind is None or self.category_id is not None):
            raise ValueError("scope 'kind' needs kind and no category_id")
        if self.scope == "category" and (self.category_id is None or self.kind is not None):
            raise ValueError("scope 'category' needs category_id and no kind (it applies to every kind)")
        if self.scope == "urgent" and self.category_id is not None:
            raise ValueError("scope 'urgent' takes no category_id (urgent tickets never follow category rules)")
        if self.reply_minutes == 0 and self.reply_days == 0:
            raise ValueError("a reply deadline of zero would make every ticket overdue at dispatch")
        return self

    def scope_key(self) -> str:
        if self.scope == "category":
            return f"category:{self.category_id}"
        return f"{self.scope}:{self.kind or '*'}"


class PolicyOut(BaseModel):
    id: int | None
    scope_key: str
    kind: str | None
    urgent: bool
    category_id: int | None
    sign_minutes: int
    sign_days: int
    reply_minutes: int
    reply_days: int
    clock_time: bool
    note: str


class PoliciesOut(BaseModel):
    rows: list[PolicyOut]
    effective: dict[str, dict[str, Any]]


def _policy_dict(p: DeadlinePolicy) -> dict[str, Any]:
    return {"sign_minutes": int(p.sign.total_seconds() // 60), "sign_days": p.sign_days,
            "reply_minutes": int(p.reply.total_seconds() // 60), "reply_days": p.reply_days,
            "clock_time": p.clock_time}


def _policies_out(session: Session, services: Services) -> PoliciesOut:
    rows = [PolicyOut.model_validate(r, from_attributes=True)
            for r in session.scalars(select(DeadlinePolicyRow).order_by(DeadlinePolicyRow.scope_key))]
    timing = services.timing
    effective: dict[str, dict[str, Any]] = {
        f"kind:{k}": {"label": KIND_LABELS[k], **_policy_dict(timing.policies.defaults[k])} for k in KINDS
    }
    effective["urgent:*"] = {"label": "紧急", **_policy_dict(timing.policies.urgent)}
    for k, p in timing.urgent_by_kind.items():
        effective[f"urgent:{k}"] = {"label": f"紧急{KIND_LABELS[k]}", **_policy_dict(p)}
    for code, p in timing.policies.overrides_by_category.items():
        effective[f"category_code:{code}"] = {"label": f"分类{code}", **_policy_dict(p)}
    return PoliciesOut(rows=rows, effective=effective)


@router.get("/deadline-policies", response_model=PoliciesOut, tags=["calendar"])
def list_policies(session: SessionDep, services: ServicesDep, actor: UserDep) -> PoliciesOut:
    """Admin rows and the effective table (built-in defaults with the rows applied)."""
    return _policies_out(session, services)


@router.put("/deadline-policies", response_model=PoliciesOut, tags=["calendar"])
def put_policy(body: PolicyIn, session: SessionDep, services: ServicesDep, actor: UserDep) -> PoliciesOut:
    """Create or replace the policy of one scope; it applies to tickets dispatched from now on."""
    require(actor, *ADMIN)
    if body.category_id is not None and session.get(Category, body.category_id) is None:
        raise Invalid(f"unknown category {body.category_id}", field="category_id")
    key = body.scope_key()
    row = session.scalar(select(DeadlinePolicyRow).where(DeadlinePolicyRow.scope_key == key))
    if row is None:
        row = DeadlinePolicyRow(scope_key=key)
        session.add(row)
    row.kind, row.urgent, row.category_id = body.kind, body.scope == "urgent", body.category_id
    row.sign_minutes, row.sign_days = body.sign_minutes, body.sign_days
    row.reply_minutes, row.reply_days = body.reply_minutes, body.reply_days
    row.clock_time, row.note = body.clock_time, body.note
    row_policy(row)  # validates
    session.commit()
    _reload_timing(services, session)
    return _policies_out(session, services)


@router.delete("/deadline-policies/{policy_id}", response_model=PoliciesOut, tags=["calendar"])
def delete_policy(policy_id: IdPath, session: SessionDep, services: ServicesDep, actor: UserDep) -> PoliciesOut:
    """Back to the built-in default for that scope."""
    require(actor, *ADMIN)
    row = session.get(DeadlinePolicyRow, policy_id)
    if row is None:
        raise NotFound(f"deadline policy {policy_id} not found")
    session.delete(row)
    session.commit()
    _reload_timing(services, session)
    return _policies_out(session, services)


class PreviewOut(BaseModel):
    source: str
    category: str | None
    policy: dict[str, Any]
    start: datetime
    sign_due: datetime
    reply_due: datetime
    warnings: list[str]


@router.get("/deadline-policies/preview", response_model=PreviewOut, tags=["calendar"])
def preview_deadlines(
    session: SessionDep, services: ServicesDep, actor: UserDep,
    kind: Literal["consultation", "help", "complaint", "report", "suggestion", "praise"] = "help",
    urgent: bool = False, category_id: IdQuery = None, start: datetime | None = None,
) -> PreviewOut:
    """The deadlines a ticket dispatched at ``start`` would get, and which policy gives them."""
    if start is not None and start.tzinfo is None:
        raise Invalid("start needs a time zone, e.g. 2026-09-30T16:00:00+08:00", field="start")
    code = session.scalar(select(Category.code).where(Category.id == category_id)) if category_id else None
    if category_id is not None and code is None:
        raise Invalid(f"unknown category {category_id}", field="category_id")
    timing = services.timing
    choice = timing.choose(kind, urgent, code)
    moment = start or datetime.now(UTC)
    try:
        result = compute_deadlines(timing.calendar, choice.policy, moment)
    except (OverflowError, ValueError) as exc:
        raise Invalid(f"cannot compute deadlines from {moment.isoformat()}: {exc}", field="start") from exc
    years = {moment.astimezone(timing.zone).year, result.reply_due.year}
    warnings = [w for y in sorted(years) for w in timing.calendar.schedule_warnings(date(y, 1, 1), 0)]
    return PreviewOut(source=choice.source, category=choice.category, policy=_policy_dict(choice.policy),
                      start=moment, sign_due=result.sign_due, reply_due=result.reply_due, warnings=warnings)


# --- supervision and accountability ----------------------------------------------------------------------------


def _scope_unit(actor: Actor, unit_id: int | None) -> int | None:
    """Oversight roles may filter by any unit; a unit handler always sees only its own."""
    if actor.role == Role.unit_handler:
        if unit_id is not None and unit_id != actor.unit_id:
            raise Forbidden("a unit sees only its own supervision orders, cases and scorecard")
        return actor.unit_id
    require(actor, *OVERSIGHT)
    return unit_id


class SupervisionOut(BaseModel):
    id: int
    ticket_id: int
    ticket_number: str
    unit_id: int
    unit_name: str | None
    state: str
    overdue: bool
    note: str
    issued_at: datetime
    due_at: datetime
    responded_at: datetime | None
    response: str | None


@router.get("/supervision", response_model=list[SupervisionOut], tags=["supervision"])
def list_supervision(
    session: SessionDep, actor: UserDep,
    state: Literal["open", "responded", "overdue", "all"] = "open",
    unit_id: IdQuery = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[SupervisionOut]:
    """督办 orders; ``overdue`` = open and past their due date. Oldest due first."""
    unit_id = _scope_unit(actor, unit_id)
    now = datetime.now(UTC)
    stmt = (
        select(SupervisionOrder, Ticket.number, Unit.name)
        .join(Ticket, Ticket.id == SupervisionOrder.ticket_id)
        .outerjoin(Unit, Unit.id == SupervisionOrder.unit_id)
        .order_by(SupervisionOrder.due_at, SupervisionOrder.id)
        .limit(limit)
    )
    if state in ("open", "responded"):
        stmt = stmt.where(SupervisionOrder.state == state)
    elif state == "overdue":
        stmt = stmt.where(SupervisionOrder.state == "open", SupervisionOrder.due_at < now)
    if unit_id is not None:
        stmt = stmt.where(SupervisionOrder.unit_id == unit_id)
    return [
        SupervisionOut(
            id=o.id, ticket_id=o.ticket_id, ticket_number=number, unit_id=o.unit_id, unit_name=name, state=o.state,
            overdue=o.state == "open" and o.due_at < now, note=o.note, issued_at=o.issued_at, due_at=o.due_at,
            responded_at=o.responded_at, response=o.response,
        )
        for o, number, name in session.execute(stmt)
    ]


class CaseOut(BaseModel):
    id: int
    ticket_id: int
    ticket_number: str
    unit_id: int
    unit_name: str | None
    state: str
    rule: str
    reason: str
    opened_at: datetime
    explained_at: datetime | None
    explanation: str | None
    decided_at: datetime | None
    decision_note: str | None


@router.get("/accountability", response_model=list[CaseOut], tags=["supervision"])
def list_accountability(
    session: SessionDep, actor: UserDep,
    state: Literal["opened", "explained", "upheld", "dismissed", "open", "all"] = "open",
    unit_id: IdQuery = None,
    rule: Literal["manual", "overdue", "refused_returns", "closed_unsolved"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[CaseOut]:
    """问责 cases; ``open`` = opened or explained (waiting for the unit or for a decision). Oldest first."""
    unit_id = _scope_unit(actor, unit_id)
    stmt = (
        select(AccountabilityCase, Ticket.number, Unit.name)
        .join(Ticket, Ticket.id == AccountabilityCase.ticket_id)
        .outerjoin(Unit, Unit.id == AccountabilityCase.unit_id)
        .order_by(AccountabilityCase.opened_at, AccountabilityCase.id)
        .limit(limit)
    )
    if state == "open":
        stmt = stmt.where(AccountabilityCase.state.in_(("opened", "explained")))
    elif state != "all":
        stmt = stmt.where(AccountabilityCase.state == state)
    if unit_id is not None:
        stmt = stmt.where(AccountabilityCase.unit_id == unit_id)
    if rule is not None:
        stmt = stmt.where(AccountabilityCase.rule == rule)
    return [
        CaseOut(
            id=c.id, ticket_id=c.ticket_id, ticket_number=number, unit_id=c.unit_id, unit_name=name, state=c.state,
            rule=c.rule, reason=c.reason, opened_at=c.opened_at, explained_at=c.explained_at,
            explanation=c.explanation, decided_at=c.decided_at, decision_note=c.decision_note,
        )
        for c, number, name in session.execute(stmt)
    ]


# --- scorecards ------------------------------------------------------------------------------------------------

Weight = Annotated[float | None, Query(ge=0, le=100, description="default: the city's HOTLINE_SCORE_WEIGHTS")]


class ScorecardOut(BaseModel):
    rank: int
    unit_id: int
    unit_name: str
    figures: dict[str, Any]


class ScorecardsOut(BaseModel):
    period_from: date
    period_to: date
    weights: dict[str, float]
    units: list[ScorecardOut]


class TicketFigureOut(BaseModel):
    ticket_id: int
    number: str
    title: str
    outcome: str
    event_id: int | None
    value: Any
    dispatched_at: datetime


class FigureTicketsOut(BaseModel):
    unit_id: int
    figure: str
    label: str
    period_from: date
    period_to: date
    counts: dict[str, int]
    tickets: list[TicketFigureOut]


def _period(services: Services, start: date | None, end: date | None) -> tuple[date, date, datetime, datetime]:
    today = datetime.now(services.timing.zone).date()
    end = end or today
    start = start or end.replace(day=1)
    if start > end:
        raise Invalid("'from' must not be after 'to'", field="from")
    if (end - start) > timedelta(days=366):
        raise Invalid("a scorecard period is at most one year", field="to")
    lo, hi = scorecards.period_bounds(start, end, services.timing.zone)
    return start, end, lo, hi


def _weights(services: Services, w_response: float | None, w_resolution: float | None,
             w_satisfaction: float | None) -> dict[str, float]:
    """The city's weights (HOTLINE_SCORE_WEIGHTS), each replaced by the request's where it names one."""
    given = {"response": w_response, "resolution": w_resolution, "satisfaction": w_satisfaction}
    return scorecards.request_weights(given, services.settings.score_weights)


FromQuery = Annotated[date | None, Query(alias="from")]
ToQuery = Annotated[date | None, Query(alias="to")]


@router.get("/scorecards", response_model=ScorecardsOut, tags=["scorecards"])
def list_scorecards(
    session: SessionDep, services: ServicesDep, actor: UserDep,
    period_from: FromQuery = None, period_to: ToQuery = None,
    w_response: Weight = None, w_resolution: Weight = None, w_satisfaction: Weight = None,
) -> ScorecardsOut:
    """Ranking of units dispatched to in the period (days inclusive; default: this month), best score first."""
    require(actor, *OVERSIGHT)
    start, end, lo, hi = _period(services, period_from, period_to)
    weights = _weights(services, w_response, w_resolution, w_satisfaction)
    cards, _ = scorecards.compute_scorecards(session, services.timing.calendar, lo, hi, datetime.now(UTC),
                                             weights=weights)
    return ScorecardsOut(
        period_from=start, period_to=end, weights=weights,
        units=[ScorecardOut(rank=i, unit_id=c.unit_id, unit_name=c.unit_name, figures=c.figures())
               for i, c in enumerate(cards, start=1)],
    )


@router.get("/scorecards.xlsx", tags=["scorecards"], response_class=Response)
def export_scorecards(
    session: SessionDep, services: ServicesDep, actor: UserDep,
    period_from: FromQuery = None, period_to: ToQuery = None,
    w_response: Weight = None, w_resolution: Weight = None, w_satisfaction: Weight = None,
) -> Response:
    """The ranking and one line per ticket and unit behind it, with Chinese headers."""
    require(actor, *OVERSIGHT)
    start, end, lo, hi = _period(services, period_from, period_to)
    cards, info = scorecards.compute_scorecards(
        session, services.timing.calendar, lo, hi, datetime.now(UTC),
        weights=_weights(services, w_response, w_resolution, w_satisfaction),
    )
    data = scorecards.scorecards_xlsx(cards, info, start, end, services.timing.zone)
    name = f"scorecards_{start.isoformat()}_{end.isoformat()}.xlsx"
    return Response(data, media_type=XLSX, headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _unit_card(session: Session, services: Services, actor: Actor, unit_id: int, start: date | None,
               end: date | None, weights: dict[str, float] | None = None
               ) -> tuple[date, date, scorecards.Scorecard, dict[int, tuple[str, str]]]:
    _scope_unit(actor, unit_id)
    if session.get(Unit, unit_id) is None:
        raise NotFound(f"unit {unit_id} not found")
    d0, d1, lo, hi = _period(services, start, end)
    cards, info = scorecards.compute_scorecards(
        session, services.timing.calendar, lo, hi, datetime.now(UTC), unit_ids=[unit_id],
        weights=weights or scorecards.DEFAULT_WEIGHTS,
    )
    return d0, d1, cards[0], info


@router.get("/scorecards/{unit_id}", response_model=ScorecardsOut, tags=["scorecards"])
def unit_scorecard(
    unit_id: IdPath, session: SessionDep, services: ServicesDep, actor: UserDep,
    period_from: FromQuery = None, period_to: ToQuery = None,
    w_response: Weight = None, w_resolution: Weight = None, w_satisfaction: Weight = None,
) -> ScorecardsOut:
    """One unit's figures (a unit handler may read its own)."""
    weights = _weights(services, w_response, w_resolution, w_satisfaction)
    start, end, card, _ = _unit_card(session, services, actor, unit_id, period_from, period_to, weights)
    return ScorecardsOut(period_from=start, period_to=end, weights=weights, units=[
        ScorecardOut(rank=0, unit_id=card.unit_id, unit_name=card.unit_name, figures=card.figures())])


@router.get("/scorecards/{unit_id}/tickets", response_model=FigureTicketsOut, tags=["scorecards"])
def figure_tickets(
    unit_id: IdPath, session: SessionDep, services: ServicesDep, actor: UserDep,
    figure: Literal["dispatched", "response_rate", "on_time_rate", "overdue", "resolution_rate",
                    "satisfaction_rate", "send_backs", "send_backs_refused", "handling_time"],
    period_from: FromQuery = None, period_to: ToQuery = None,
    outcome: Literal["met", "missed", "pending", "na"] | None = None,
) -> FigureTicketsOut:
    """The tickets behind one figure, each with its outcome and the event that decided it.

    For a rate, ``met`` tickets are the numerator, ``met`` + ``missed`` the denominator, ``pending`` not yet
    decided; for a count (overdue, send-backs) the ``met`` tickets are the ones counted.
    """
    start, end, card, info = _unit_card(session, services, actor, unit_id, period_from, period_to)
    rows: list[TicketFigureOut] = []
    counts: dict[str, int] = {}
    for a in card.assignments:
        result, event_id, value = a.outcome(figure)
        counts[result] = counts.get(result, 0) + 1
        if outcome is not None and result != outcome:
            continue
        if outcome is None and result == "na" and figure in ("overdue", "send_backs", "send_backs_refused",
                                                              "handling_time"):
            continue  # counts list only what they count
        number, title = info.get(a.ticket_id, (str(a.ticket_id), ""))
        rows.append(TicketFigureOut(ticket_id=a.ticket_id, number=number, title=title, outcome=result,
                                    event_id=event_id, value=value, dispatched_at=a.dispatched_at))
    return FigureTicketsOut(unit_id=unit_id, figure=figure, label=scorecards.FIGURES[figure], period_from=start,
                            period_to=end, counts=counts, tickets=rows)
