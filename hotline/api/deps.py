"""What every REST module shares: the request's services and session, the authenticated actor, role checks,
bounded path and query types."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import StringConstraints
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from hotline import accounts, auth
from hotline.errors import Forbidden, Unauthorized
from hotline.fields import MAX_ID, NoNul
from hotline.models import Role
from hotline.services import Services

IdPath = Annotated[int, Path(ge=1, le=MAX_ID)]
IdQuery = Annotated[int | None, Query(ge=1, le=MAX_ID)]
_bearer = HTTPBearer(auto_error=False)


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def _services(request: Request) -> Services:
    return get_services(request)  # async: a plain ``def`` dependency would cost a trip through the threadpool


ServicesDep = Annotated[Services, Depends(_services)]


def get_session(services: ServicesDep) -> Iterator[Session]:
    session = services.sessions()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


SessionDep = Annotated[Session, Depends(get_session)]


def _token(credentials: HTTPAuthorizationCredentials | None) -> str:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise Unauthorized("请先登录 (missing bearer token)")
    return credentials.credentials


def _resolve(session: Session, services: Services, token: str) -> auth.Actor:
    actor, user = auth.resolve_token(session, services.settings, token)
    if user is not None:
        accounts.touch(session, user)
    return actor


def get_actor(
    services: ServicesDep,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> auth.Actor:
    return _resolve(session, services, _token(credentials))


ActorDep = Annotated[auth.Actor, Depends(get_actor)]


async def channel_actor(services: Services, authorization: str | None) -> auth.Actor:
    """For the endpoint channels call on every message (``POST /api/inbound``), from its ``Authorization`` header: a
    channel's key is recognised without the database or the threadpool; any other token is resolved as ``get_actor``
    does (so it gets the same 401 or the endpoint's 403)."""
    scheme, credentials = get_authorization_scheme_param(authorization)
    return await _token_actor(
        services, _token(HTTPAuthorizationCredentials(scheme=scheme, credentials=credentials) if scheme else None))


async def get_channel_actor(
    services: ServicesDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> auth.Actor:
    """``channel_actor`` as a dependency, for the agents' synchronous intake (``POST /api/intake``, async: it holds
    no session while it waits for its batch, the user's token resolved in a short session of its own)."""
    return await _token_actor(services, _token(credentials))


ChannelActorDep = Annotated[auth.Actor, Depends(get_channel_actor)]


async def _token_actor(services: Services, token: str) -> auth.Actor:
    channel = auth.channel_of_key(services.settings, token)
    if channel is not None:
        return channel

    def resolve() -> auth.Actor:
        with services.sessions() as session:
            return _resolve(session, services, token)

    return await run_in_threadpool(resolve)


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


