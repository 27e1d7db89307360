"""The REST API. Endpoints are thin: parse, call the domain, commit once, shape the answer.

Errors carry their status (``hotline.errors``): 401 no/expired token, 403 wrong role, 404 unknown ticket or another
unit's, 409 illegal transition or stale version, 422 bad payload naming the field.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from hotline import action_forms, auth, intake, views, workflow
from hotline.errors import Forbidden, Invalid, NotFound, Unauthorized
from hotline.fields import MAX_ID, Id, NoNul
from hotline.models import (
    Area,
    Category,
    KnowledgeArticle,
    Role,
    Status,
    Ticket,
    TicketCoUnit,
    Unit,
    User,
)
from hotline.services import Services

router = APIRouter(prefix="/api")
IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
IdQuery = Annotated[int | None, Query(ge=1, le=MAX_ID)]
_bearer = HTTPBearer(auto_error=False)


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


def get_session(services: ServicesDep) -> Iterator[Session]:
    session = services.sessions()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


SessionDep = Annotated[Session, Depends(get_session)]


def get_actor(
    services: ServicesDep,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> auth.Actor:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorized("请先登录 (missing bearer token)")
    return auth.actor_from_token(session, services.settings, credentials.credentials)


ActorDep = Annotated[auth.Actor, Depends(get_actor)]


def get_user_actor(actor: ActorDep) -> auth.Actor:
    if actor.user_id is None:
        raise Forbidden("channel keys may only submit to /api/intake")
    return actor


UserDep = Annotated[auth.Actor, Depends(get_user_actor)]


def require(actor: auth.Actor, *roles: str) -> None:
    if actor.role not in roles:
        raise Forbidden(f"this needs one of the roles: {', '.join(roles)}")


# --- auth -------------------------------------------------------------------------------------------------------


class LoginIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64), NoNul]
    password: Annotated[str, StringConstraints(min_length=1, max_length=200), NoNul]


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class MeOut(BaseModel):
    id: int | None
    username: str
    name: str
    role: str | None
    unit_id: int | None


@router.post("/auth/login", response_model=TokenOut, tags=["auth"])
def login(body: LoginIn, session: SessionDep, services: ServicesDep) -> TokenOut:
    user = auth.authenticate(session, body.username, body.password)
    token, ttl = auth.issue_token(services.settings, user)
    return TokenOut(access_token=token, expires_in=ttl)


@router.get("/me", response_model=MeOut, tags=["auth"])
def me(actor: UserDep) -> MeOut:
    return MeOut(id=actor.user_id, username=actor.username, name=actor.name, role=actor.role, unit_id=actor.unit_id)


# --- intake -----------------------------------------------------------------------------------------------------


@router.post("/intake", response_model=views.TicketOut, status_code=201, tags=["intake"])
def submit_intake(
    body: intake.IntakeRequest, response: Response, session: SessionDep, services: ServicesDep, actor: ActorDep
) -> views.TicketOut:
    """The one intake point over HTTP. A repeated (channel, external_id) answers 200 with the same ticket."""
    if actor.user_id is not None:
        require(actor, Role.agent, Role.dispatcher, Role.supervisor)
    ticket, created = intake.submit(
        session,
        body,
        actor,
        suggester=services.suggester,
        timing=services.timing,
        max_text_chars=services.settings.max_text_chars,
        auto_dispatch=services.settings.auto_dispatch,
    )
    session.commit()
    if not created:
        response.status_code = 200
    loaded = session.scalars(select(Ticket).where(Ticket.id == ticket.id).options(*views.ticket_load_options())).one()
    return views.ticket_out(loaded, actor)


# --- tickets ----------------------------------------------------------------------------------------------------


class TicketPage(BaseModel):
    items: list[views.TicketOut]
    total: int
    page: int
    page_size: int


OVERDUE_STATES = (Status.dispatched, Status.signed, Status.returned, Status.reopened)


def visible_tickets(actor: auth.Actor) -> Select[Any]:
    stmt = select(Ticket)
    if actor.is_unit:
        co = select(TicketCoUnit.ticket_id).where(TicketCoUnit.unit_id == actor.unit_id)
        stmt = stmt.where(or_(Ticket.lead_unit_id == actor.unit_id, Ticket.id.in_(co)))
    elif not actor.sees_everything:
        stmt = stmt.where(Ticket.id == -1)
    return stmt


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@router.get("/tickets", response_model=TicketPage, tags=["tickets"])
def list_tickets(
    session: SessionDep,
    services: ServicesDep,
    actor: UserDep,
    status: Annotated[list[Status] | None, Query(description="one or more states")] = None,
    unit_id: IdQuery = None,
    category_id: IdQuery = None,
    area_id: IdQuery = None,
    channel: str | None = None,
    overdue: bool | None = None,
    urgent: bool | None = None,
    q: Annotated[str | None, Query(max_length=100, description="free text in number, title or text")] = None,
    received_from: date | None = None,
    received_to: date | None = None,
    citizen_id: IdQuery = None,
    sort: Literal["newest", "oldest", "deadline"] = "newest",
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=200)] = 50,
) -> TicketPage:
    stmt = visible_tickets(actor)
    if status:
        stmt = stmt.where(Ticket.status.in_([s.value for s in status]))
    if unit_id is not None:
        stmt = stmt.where(Ticket.lead_unit_id == unit_id)
    if category_id is not None:
        codes = select(Category.code).where(Category.id == category_id).scalar_subquery()
        sub = select(Category.id).where(Category.code.startswith(codes))
        stmt = stmt.where(Ticket.category_id.in_(sub))
    if area_id is not None:
        stmt = stmt.where(Ticket.area_id == area_id)
    if channel:
        stmt = stmt.where(Ticket.channel == channel)
    if urgent is not None:
        stmt = stmt.where(Ticket.urgent == urgent)
    if citizen_id is not None:
        stmt = stmt.where(Ticket.citizen_id == citizen_id)
    now = datetime.now(UTC)
    if overdue is True:
        stmt = stmt.where(Ticket.status.in_(OVERDUE_STATES), Ticket.reply_due < now)
    elif overdue is False:
        stmt = stmt.where(or_(Ticket.reply_due.is_(None), Ticket.reply_due >= now))
    if q:
        pattern = f"%{_escape_like(q.strip())}%"
        stmt = stmt.where(
            or_(Ticket.number.like(pattern, escape="\\"), Ticket.title.like(pattern, escape="\\"),
                Ticket.text.like(pattern, escape="\\"))
        )
    zone = services.timing.zone
    if received_from is not None:
        stmt = stmt.where(Ticket.received_at >= datetime.combine(received_from, time.min, zone))
    if received_to is not None:
        stmt = stmt.where(Ticket.received_at < datetime.combine(received_to + timedelta(days=1), time.min, zone))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    order: Any = {
        "newest": (Ticket.received_at.desc(), Ticket.id.desc()),
        "oldest": (Ticket.received_at.asc(), Ticket.id.asc()),
        "deadline": (Ticket.reply_due.is_(None), Ticket.reply_due.asc(), Ticket.id.asc()),
    }[sort]
    rows = session.scalars(
        stmt.options(*views.ticket_load_options()).order_by(*order).offset((page - 1) * page_size).limit(page_size)
    ).all()
    return TicketPage(items=[views.ticket_out(t, actor) for t in rows], total=total, page=page, page_size=page_size)


@router.get("/tickets/{ticket_id}", response_model=views.TicketDetail, tags=["tickets"])
def get_ticket(ticket_id: IdPath, session: SessionDep, actor: UserDep) -> views.TicketDetail:
    return views.ticket_detail(session, ticket_id, actor)


@router.post("/tickets/{ticket_id}/actions/{action}", response_model=views.TicketDetail, tags=["tickets"])
def act_on_ticket(ticket_id: IdPath,
    action: str,
    session: SessionDep,
    services: ServicesDep,
    actor: UserDep,
    body: Annotated[dict[str, Any] | None, Body()] = None,
) -> views.TicketDetail:
    """Every workflow action: dispatch, sign, return, reply, callback, … (see ``GET /api/actions``)."""
    try:
        data = workflow.parse_input(action, body or {})
    except ValidationError as exc:
        raise Invalid(
            "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()),
            errors=[{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()],
        ) from exc
    workflow.perform(session, ticket_id, action, actor, data, services.timing)
    session.commit()
    return views.ticket_detail(session, ticket_id, actor)


@router.get("/actions", response_model=list[action_forms.ActionOut], tags=["tickets"])
def list_actions() -> list[action_forms.ActionOut]:
    """The transition table, as data: which action leads from which states to which, for whom, with which form."""
    return action_forms.describe_actions()


# --- units, areas, categories -----------------------------------------------------------------------------------


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


# --- users (admin) ----------------------------------------------------------------------------------------------


class UserOut(BaseModel):
    id: int
    username: str
    display_name: str
    role: str
    unit_id: int | None
    active: bool


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9_.\-]{2,64}$"), NoNul]
    display_name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), NoNul]
    password: Annotated[str, StringConstraints(min_length=8, max_length=200), NoNul]
    role: Role
    unit_id: Id | None = None


@router.get("/users", response_model=list[UserOut], tags=["admin"])
def list_users(session: SessionDep, actor: UserDep) -> list[UserOut]:
    require(actor, Role.admin)
    return [UserOut.model_validate(u, from_attributes=True) for u in session.scalars(select(User).order_by(User.id))]


@router.post("/users", response_model=UserOut, status_code=201, tags=["admin"])
def create_user(body: UserIn, session: SessionDep, actor: UserDep) -> UserOut:
    require(actor, Role.admin)
    user = users_create(session, body)
    session.commit()
    return UserOut.model_validate(user, from_attributes=True)


def users_create(session: Session, body: UserIn) -> User:
    """Shared by the API and the CLI: a unit handler needs a unit, nobody else has one."""
    if body.role == Role.unit_handler:
        if body.unit_id is None or session.get(Unit, body.unit_id) is None:
            raise Invalid("a unit_handler needs an existing unit_id", field="unit_id")
    elif body.unit_id is not None:
        raise Invalid("only unit handlers belong to a unit", field="unit_id")
    if session.scalar(select(User.id).where(User.username == body.username)) is not None:
        raise Invalid(f"username '{body.username}' is taken", field="username")
    user = User(
        username=body.username,
        display_name=body.display_name,
        password_hash=auth.hash_password(body.password),
        role=body.role,
        unit_id=body.unit_id,
    )
    session.add(user)
    session.flush()
    return user


# --- knowledge base ---------------------------------------------------------------------------------------------


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
    session.commit()
    services.knowledge_changed()
    return ArticleOut.model_validate(article, from_attributes=True)


@router.put("/knowledge/{article_id}", response_model=ArticleOut, tags=["knowledge"])
def update_article(article_id: IdPath, body: ArticleIn, session: SessionDep, services: ServicesDep, actor: UserDep
) -> ArticleOut:
    require(actor, *KB_EDITORS)
    article = _article(session, article_id)
    _check_category(session, body.category_id)
    for key, value in body.model_dump().items():
        setattr(article, key, value)
    session.commit()
    services.knowledge_changed()
    return ArticleOut.model_validate(article, from_attributes=True)


@router.delete("/knowledge/{article_id}", status_code=204, tags=["knowledge"])
def delete_article(article_id: IdPath, session: SessionDep, services: ServicesDep, actor: UserDep) -> Response:
    """Articles are retired, not erased: answers already given cite them."""
    require(actor, *KB_EDITORS)
    _article(session, article_id).active = False
    session.commit()
    services.knowledge_changed()
    return Response(status_code=204)
