"""REST: catalogue rules."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline import audit
from hotline.api.deps import ADMIN, DESK, IdPath, IdQuery, Note, ServicesDep, SessionDep, UserDep, require
from hotline.errors import Conflict, Invalid, NotFound
from hotline.fields import Id, NoNul
from hotline.models import (
    Area,
    CatalogueRule,
    Category,
    Unit,
)
from hotline.routing_snapshot import RoutingSnapshot
from hotline.services import directory_changed
from routing.catalogue import category_path

router = APIRouter(prefix="/api")


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
    snapshot = RoutingSnapshot.load(session)
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
    session.flush()
    audit.record(session, actor, "create", "rule", rule.id, after=audit.row_dict(rule),
                 summary=f"新建派单规则 #{rule.id}")
    session.commit()
    directory_changed(services)
    return _rule_out(session, [rule])[0]


@router.put("/catalogue/{rule_id}", response_model=RuleOut, tags=["directory"])
def update_rule(rule_id: IdPath, body: RuleIn, session: SessionDep, services: ServicesDep, actor: UserDep) -> RuleOut:
    require(actor, *ADMIN)
    rule = session.get(CatalogueRule, rule_id)
    if rule is None:
        raise NotFound(f"catalogue rule {rule_id} not found")
    _check_rule(session, body, rule_id)
    before = audit.row_dict(rule)
    for key, value in body.model_dump().items():
        setattr(rule, key, value)
    session.flush()
    audit.record(session, actor, "update", "rule", rule.id, before=before, after=audit.row_dict(rule),
                 summary=f"修改派单规则 #{rule.id}")
    session.commit()
    directory_changed(services)
    return _rule_out(session, [rule])[0]


@router.delete("/catalogue/{rule_id}", response_model=RuleOut, tags=["directory"])
def deactivate_rule(rule_id: IdPath, session: SessionDep, services: ServicesDep, actor: UserDep) -> RuleOut:
    """Rules are deactivated, not erased: past routing explanations cite their ids."""
    require(actor, *ADMIN)
    rule = session.get(CatalogueRule, rule_id)
    if rule is None:
        raise NotFound(f"catalogue rule {rule_id} not found")
    before = audit.row_dict(rule)
    rule.active = False
    audit.record(session, actor, "deactivate", "rule", rule.id, before=before, after=audit.row_dict(rule),
                 summary=f"停用派单规则 #{rule.id}")
    session.commit()
    directory_changed(services)
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
    snapshot = RoutingSnapshot.load(session)
    if category_id not in snapshot.category_codes:
        raise NotFound(f"category {category_id} not found (or inactive)")
    if area_id is not None and area_id not in snapshot.area_paths:
        raise NotFound(f"area {area_id} not found")
    decision, candidates = snapshot.explain(category_id, area_id)

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


class SuggestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=5000), NoNul]
    location: Annotated[str, StringConstraints(strip_whitespace=True, max_length=300), NoNul] | None = None


@router.post("/route/suggest", tags=["directory"])
def suggest_route(body: SuggestIn, session: SessionDep, services: ServicesDep, actor: UserDep) -> dict[str, Any]:
    """"Which unit would get this?": the analysis intake would make of a typed request (category, place, unit and
    the catalogue rule chosen), without creating anything."""
    require(actor, *DESK)
    suggestion = services.suggester.suggest(session, "", body.text, body.location, datetime.now(UTC))
    return suggestion.to_json()
