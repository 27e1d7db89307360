"""REST: knowledge base."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline import audit
from hotline.api.deps import IdPath, ServicesDep, SessionDep, UserDep, require
from hotline.errors import Invalid, NotFound
from hotline.fields import Id, NoNul
from hotline.models import (
    Category,
    KnowledgeArticle,
    Role,
)
from hotline.services import knowledge_changed

router = APIRouter(prefix="/api")


class ArticleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=200), NoNul]
    body: Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=20_000), NoNul]
    category_id: Id | None = None
    keywords: list[Annotated[str, StringConstraints(max_length=50), NoNul]] = Field(default_factory=list, max_length=30)


class ArticleOut(BaseModel):
    id: int
    title: str
    body: str
    category_id: int | None
    keywords: list[str]
    updated_at: datetime
    score: float | None = None


KB_EDITORS = (Role.admin, Role.supervisor)


@router.get("/knowledge", response_model=list[ArticleOut], tags=["knowledge"])
def search_knowledge(
    session: SessionDep,
    services: ServicesDep,
    _actor: UserDep,
    q: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> list[ArticleOut]:
    if q and q.strip():
        hits = services.knowledge_search(session, q, limit)
        articles = {a.id: a for a in session.scalars(select(KnowledgeArticle).where(
            KnowledgeArticle.id.in_([h[0] for h in hits]), KnowledgeArticle.active))}
        return [
            ArticleOut.model_validate(articles[i], from_attributes=True).model_copy(update={"score": s})
            for i, s in hits
            if i in articles
        ]
    rows = session.scalars(
        select(KnowledgeArticle).where(KnowledgeArticle.active).order_by(KnowledgeArticle.id).limit(limit)
    )
    return [ArticleOut.model_validate(a, from_attributes=True) for a in rows]


def _article(session: Session, article_id: int) -> KnowledgeArticle:
    article = session.get(KnowledgeArticle, article_id)
    if article is None or not article.active:
        raise NotFound(f"knowledge article {article_id} not found")
    return article


def _check_category(session: Session, category_id: int | None) -> None:
    if category_id is not None and session.get(Category, category_id) is None:
        raise Invalid(f"unknown category id {category_id}", field="category_id")


@router.get("/knowledge/{article_id}", response_model=ArticleOut, tags=["knowledge"])
def get_article(article_id: IdPath, session: SessionDep, _actor: UserDep) -> ArticleOut:
    return ArticleOut.model_validate(_article(session, article_id), from_attributes=True)


@router.post("/knowledge", response_model=ArticleOut, status_code=201, tags=["knowledge"])
def create_article(body: ArticleIn, session: SessionDep, services: ServicesDep, actor: UserDep) -> ArticleOut:
    require(actor, *KB_EDITORS)
    _check_category(session, body.category_id)
    article = KnowledgeArticle(**body.model_dump())
    session.add(article)
    session.flush()
    audit.record(session, actor, "create", "article", article.id, after=audit.row_dict(article),
                 summary=f"新建知识 {article.title}")
    session.commit()
    knowledge_changed(services)
    return ArticleOut.model_validate(article, from_attributes=True)


@router.put("/knowledge/{article_id}", response_model=ArticleOut, tags=["knowledge"])
def update_article(article_id: IdPath, body: ArticleIn, session: SessionDep, services: ServicesDep, actor: UserDep
) -> ArticleOut:
    require(actor, *KB_EDITORS)
    article = _article(session, article_id)
    _check_category(session, body.category_id)
    before = audit.row_dict(article)
    for key, value in body.model_dump().items():
        setattr(article, key, value)
    session.flush()
    audit.record(session, actor, "update", "article", article.id, before=before, after=audit.row_dict(article),
                 summary=f"修改知识 {article.title}")
    session.commit()
    knowledge_changed(services)
    return ArticleOut.model_validate(article, from_attributes=True)


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
