"""REST: units, areas, categories."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hotline import audit, directory
from hotline.api.deps import ADMIN, DESK, XLSX, Code, IdPath, Name, ServicesDep, SessionDep, UserDep, require
from hotline.auth import Actor
from hotline.errors import Conflict, Invalid, NotFound
from hotline.fields import Id, NoNul
from hotline.models import (
    AREA_LEVELS,
    Area,
    AreaLevel,
    CatalogueRule,
    Category,
    Unit,
    UnitKind,
)
from hotline.services import Services, directory_changed

router = APIRouter(prefix="/api")


class UnitOut(BaseModel):
    id: int
    code: str
    name: str
    short_name: str | None
    kind: str
    parent_id: int | None
    area_id: int | None
    phone: str | None
    active: bool

class AreaOut(BaseModel):
    id: int
    code: str
    name: str
    level: str
    parent_id: int | None
    aliases: list[str]
    active: bool


class CategoryOut(BaseModel):
    id: int
    code: str
    name: str
    parent_id: int | None
    level: int
    urgent: bool


@router.get("/units", response_model=list[UnitOut], tags=["directory"])
def list_units(session: SessionDep, _actor: UserDep) -> list[UnitOut]:
    units = session.scalars(select(Unit).order_by(Unit.code))
    return [UnitOut.model_validate(u, from_attributes=True) for u in units]


@router.get("/units/{unit_id}", response_model=UnitOut, tags=["directory"])
def get_unit(unit_id: IdPath, session: SessionDep, _actor: UserDep) -> UnitOut:
    unit = session.get(Unit, unit_id)
    if unit is None:
        raise NotFound(f"unit {unit_id} not found")
    return UnitOut.model_validate(unit, from_attributes=True)


@router.get("/areas", response_model=list[AreaOut], tags=["directory"])
def list_areas(session: SessionDep, _actor: UserDep) -> list[AreaOut]:
    return [AreaOut.model_validate(a, from_attributes=True) for a in session.scalars(select(Area).order_by(Area.code))]


@router.get("/categories", response_model=list[CategoryOut], tags=["directory"])
def list_categories(session: SessionDep, _actor: UserDep) -> list[CategoryOut]:
    cats = session.scalars(select(Category).where(Category.active).order_by(Category.code))
    return [CategoryOut.model_validate(c, from_attributes=True) for c in cats]


class AreaIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: Code
    name: Name
    level: AreaLevel
    parent_id: Id | None = None
    aliases: list[Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50), NoNul]] = (
        Field(default_factory=list, max_length=30)
    )
    active: bool = True




def _check_area(session: Session, body: AreaIn, area_id: int | None) -> None:
    levels = AREA_LEVELS
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
    session.flush()
    audit.record(session, actor, "create", "area", area.id, after=audit.row_dict(area), summary=f"新建地区 {area.name}")
    session.commit()
    directory_changed(services)
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
    before = audit.row_dict(area)
    for key, value in body.model_dump().items():
        setattr(area, key, value)
    session.flush()
    audit.record(session, actor, "update", "area", area.id, before=before, after=audit.row_dict(area),
                 summary=f"修改地区 {area.name}")
    session.commit()
    directory_changed(services)
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
    before = audit.row_dict(area)
    area.active = False
    audit.record(session, actor, "deactivate", "area", area.id, before=before, after=audit.row_dict(area),
                 summary=f"停用地区 {area.name}")
    session.commit()
    directory_changed(services)
    return AreaOut.model_validate(area, from_attributes=True)


class UnitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: Code
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NoNul]
    short_name: Name | None = None
    kind: UnitKind
    area_id: Id | None = None
    parent_id: Id | None = None
    phone: Annotated[str, StringConstraints(strip_whitespace=True, max_length=32), NoNul] | None = None
    active: bool = True


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
    session.flush()
    audit.record(session, actor, "create", "unit", unit.id, after=audit.row_dict(unit), summary=f"新建单位 {unit.name}")
    session.commit()
    directory_changed(services)
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
    before = audit.row_dict(unit)
    for key, value in body.model_dump().items():
        setattr(unit, key, value)
    session.flush()
    audit.record(session, actor, "update", "unit", unit.id, before=before, after=audit.row_dict(unit),
                 summary=f"修改单位 {unit.name}")
    session.commit()
    directory_changed(services)
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
    before = audit.row_dict(unit)
    unit.active = False
    audit.record(session, actor, "deactivate", "unit", unit.id, before=before, after=audit.row_dict(unit),
                 summary=f"停用单位 {unit.name}")
    session.commit()
    directory_changed(services)
    return UnitOut.model_validate(unit, from_attributes=True)


class ChangeOut(BaseModel):
    kind: str  # areas | units | rules
    change: str  # added | changed | removed (deactivated: an import never deletes)
    key: str  # the code, or "category code×area code" for a rule
    row: int | None  # its row in the file (header = row 1)
    before: dict[str, Any] | None
    after: dict[str, Any]


class ImportOut(BaseModel):
    dry_run: bool
    created: dict[str, int]
    updated: dict[str, int]
    changes: list[ChangeOut]


def _import(session: Session, services: Services, actor: Actor, tables: dict[str, list[directory.Row]],
            dry_run: bool) -> ImportOut:
    """``dry_run``: the preview — everything is checked and written, the changes listed, then rolled back."""
    report = directory.import_directory(session, tables, dry_run=dry_run)
    changes = [ChangeOut(**vars(c)) for c in report.changes]
    if not dry_run:
        audit.record(session, actor, "import", "directory", "", after={
            "created": report.created, "updated": report.updated,
            "changes": [c.model_dump() for c in changes[:1000]]},
            summary=f"导入目录：新增{sum(report.created.values())}行，更新{sum(report.updated.values())}行，"
                    f"实际变化{len(changes)}行")
        session.commit()
        directory_changed(services)
    return ImportOut(dry_run=dry_run, created=report.created, updated=report.updated, changes=changes)


@router.post("/directory/import.xlsx", response_model=ImportOut, tags=["directory"])
def import_xlsx(session: SessionDep, services: ServicesDep, actor: UserDep,
                body: Annotated[bytes, Body(media_type=XLSX)], dry_run: bool = False) -> ImportOut:
    """Upload the workbook as the request body (sheets 地区, 单位, 派单目录); all or nothing, errors by row."""
    require(actor, *ADMIN)
    return _import(session, services, actor, directory.read_xlsx(body), dry_run)


@router.post("/directory/import.csv", response_model=ImportOut, tags=["directory"])
def import_csv(session: SessionDep, services: ServicesDep, actor: UserDep,
               body: Annotated[bytes, Body(media_type="text/csv")],
               kind: Literal["areas", "units", "rules"], dry_run: bool = False) -> ImportOut:
    require(actor, *ADMIN)
    return _import(session, services, actor, directory.read_csv(kind, body), dry_run)


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
