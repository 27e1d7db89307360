"""What every REST module shares: the request's services and session, the authenticated actor, role checks,
bounded path and query types."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import StringConstraints
from sqlalchemy.orm import Session

from hotline import accounts, auth
from hotline.errors import Forbidden, Unauthorized
from hotline.fields import MAX_ID, NoNul
from hotline.models import Role, User
from hotline.services import Services

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
    actor = auth.actor_from_token(session, services.settings, credentials.credentials)
    if actor.user_id is not None:
        user = session.get(User, actor.user_id)
        if user is not None:
            accounts.touch(session, user)
    return actor


ActorDep = Annotated[auth.Actor, Depends(get_actor)]


def get_user_actor(actor: ActorDep) -> auth.Actor:
    if actor.user_id is None:
        raise Forbidden("channel keys may only submit to /api/intake")
    return actor


UserDep = Annotated[auth.Actor, Depends(get_user_actor)]


def require(actor: auth.Actor, *roles: str) -> None:
    if actor.role not in roles:
        raise Forbidden(f"this needs one of the roles: {', '.join(roles)}")


ADMIN = (Role.admin,)
DESK = (Role.agent, Role.dispatcher, Role.supervisor, Role.admin)
OVERSIGHT = (Role.supervisor, Role.dispatcher, Role.admin)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), NoNul]
Code = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9_.\-]{1,64}$"), NoNul]
Note = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000), NoNul]


