"""REST: knowledge base."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Self

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic_core import PydanticCustomError
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from hotline import audit
from hotline.api.deps import IdPath, ServicesDep, SessionDep, UserDep, require
from hotline.errors import Invalid, NotFound
from hotline.fields import Day, Id, NoNul
from hotline.knowledge import Validity, validity
from hotline.models import (
    Category,
    KnowledgeArticle,
    Role,
    Unit,
)
from hotline.services import Services, knowledge_changed

router = APIRouter(prefix="/api")


class ArticleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=200), NoNul]
    body: Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=20_000), NoNul]
    category_id: Id | None = None
    keywords: list[Annotated[str, StringConstraints(max_length=50), NoNul]] = Field(default_factory=list, max_length=30)
    valid_from: Day | None = None  # first day it may be offered (city calendar); None: from now on
    valid_to: Day | None = None  # last day it may be offered; None: until changed
    owner_unit_id: Id | None = None  # the unit that keeps it correct

    @model_validator(mode="after")
    def _dates_in_order(self) -> Self:
        if self.valid_from is not None and self.valid_to is not None and self.valid_to < self.valid_from:
            raise PydanticCustomError(
                "validity_reversed",
                "有效期的结束日期 {to} 早于开始日期 {since}，请检查 (valid_to is before valid_from)",
                {"to": self.valid_to.isoformat(), "since": self.valid_from.isoformat()},
            )
        return self


class ArticleOut(BaseModel):
    id: int
    title: str
    body: str
    category_id: int | None
    keywords: list[str]
    valid_from: date | None
    valid_to: date | None
    owner_unit_id: int | None
    owner_unit_name: str | None  # the unit's short name (as the desk names units), for the agent's panel
    validity: Validity  # today, in the city: current (offered), expired (已过期) or pending (未生效)
    updated_at: datetime
    score: float | None = None


KB_EDITORS = (Role.admin, Role.supervisor)


def _today(services: Services) -> date:
    return datetime.now(services.timing.zone).date()


def _outs(session: Session, services: Services, articles: list[KnowledgeArticle],
          scores: dict[int, float] | None = None) -> list[ArticleOut]:
    today = _today(services)
    owners = {u.id: u.short_name or u.name for u in session.scalars(
        select(Unit).where(Unit.id.in_({a.owner_unit_id for a in articles if a.owner_unit_id is not None})))}
    return [ArticleOut(id=a.id, title=a.title, body=a.body, category_id=a.category_id, keywords=a.keywords,
                       valid_from=a.valid_from, valid_to=a.valid_to, owner_unit_id=a.owner_unit_id,
                       owner_unit_name=owners.get(a.owner_unit_id) if a.owner_unit_id is not None else None,
                       validity=validity(a.valid_from, a.valid_to, today), updated_at=a.updated_at,
                       score=(scores or {}).get(a.id)) for a in articles]


def _out(session: Session, services: Services, article: KnowledgeArticle) -> ArticleOut:
    return _outs(session, services, [article])[0]


@router.get("/knowledge", response_model=list[ArticleOut], tags=["knowledge"])
def search_knowledge(
    session: SessionDep,
    services: ServicesDep,
    actor: UserDep,
    q: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> list[ArticleOut]:
    """Search as the agent's panel searches. Editors (admins, supervisors) see every article, each marked with
    its validity; everyone else only the articles in effect today."""
    editor = actor.role in KB_EDITORS
    if q and q.strip():
        hits = services.knowledge_search(session, q, limit, every_article=editor)
        found = {a.id: a for a in session.scalars(select(KnowledgeArticle).where(
            KnowledgeArticle.id.in_([h[0] for h in hits]), KnowledgeArticle.active))}
        return _outs(session, services, [found[i] for i, _ in hits if i in found], dict(hits))
    stmt = select(KnowledgeArticle).where(KnowledgeArticle.active).order_by(KnowledgeArticle.id)
    if not editor:
        today = _today(services)
        stmt = stmt.where(or_(KnowledgeArticle.valid_from.is_(None), KnowledgeArticle.valid_from <= today),
                          or_(KnowledgeArticle.valid_to.is_(None), KnowledgeArticle.valid_to >= today))
    return _outs(session, services, list(session.scalars(stmt.limit(limit))))


def _article(session: Session, article_id: int) -> KnowledgeArticle:
    article = session.get(KnowledgeArticle, article_id)
    if article is None or not article.active:
        raise NotFound(f"knowledge article {article_id} not found")
    return article


def _check_references(session: Session, body: ArticleIn) -> None:
    if body.category_id is not None and session.get(Category, body.category_id) is None:
        raise Invalid(f"unknown category id {body.category_id}", field="category_id",
                      zh=f"分类（编号 {body.category_id}）不存在")
    if body.owner_unit_id is not None:
        unit = session.get(Unit, body.owner_unit_id)
        if unit is None or not unit.active:
            raise Invalid(f"unknown or inactive unit id {body.owner_unit_id}", field="owner_unit_id",
                          zh=f"维护单位（编号 {body.owner_unit_id}）不存在或已停用")


@router.get("/knowledge/{article_id}", response_model=ArticleOut, tags=["knowledge"])
def get_article(article_id: IdPath, session: SessionDep, services: ServicesDep, _actor: UserDep) -> ArticleOut:
    """One article with its validity today: the agent's panel shows an article outside it marked, not to quote."""
    return _out(session, services, _article(session, article_id))


@router.post("/knowledge", response_model=ArticleOut, status_code=201, tags=["knowledge"])
def create_article(body: ArticleIn, session: SessionDep, services: ServicesDep, actor: UserDep) -> ArticleOut:
    require(actor, *KB_EDITORS)
    _check_references(session, body)
    article = KnowledgeArticle(**body.model_dump())
    session.add(article)
    session.flush()
    audit.record(session, actor, "create", "article", article.id, after=audit.row_dict(article),
                 summary=f"新建知识 {article.title}")
    session.commit()
    knowledge_changed(services)
    return _out(session, services, article)


@router.put("/knowledge/{article_id}", response_model=ArticleOut, tags=["knowledge"])
def update_article(article_id: IdPath, body: ArticleIn, session: SessionDep, services: ServicesDep, actor: UserDep
) -> ArticleOut:
    require(actor, *KB_EDITORS)
    article = _article(session, article_id)
    _check_references(session, body)
    before = audit.row_dict(article)
    for key, value in body.model_dump().items():
        setattr(article, key, value)
    session.flush()
    audit.record(session, actor, "update", "article", article.id, before=before, after=audit.row_dict(article),
                 summary=f"修改知识 {article.title}")
    session.commit()
    knowledge_changed(services)
    return _out(session, services, article)


@router.delete("/knowledge/{article_id}", status_code=204, tags=["knowledge"])
def delete_article(article_id: IdPath, session: SessionDep, services: ServicesDep, actor: UserDep) -> Response:
    """Articles are retired, not erased: answers already given cite them."""
    require(actor, *KB_EDITORS)
    article = _article(session, article_id)
    before = audit.row_dict(article)
    article.active = False
    audit.record(session, actor, "deactivate", "article", article.id, before=before, after=audit.row_dict(article),
                 summary=f"停用知识 {article.title}")
    session.commit()
    knowledge_changed(services)
    return Response(status_code=204)
