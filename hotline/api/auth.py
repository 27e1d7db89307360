"""REST: auth."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, StringConstraints

from hotline import accounts, auth
from hotline.api.deps import ServicesDep, SessionDep, UserDep
from hotline.errors import ErrorOut, TooMany, Unauthorized
from hotline.fields import NoNul
from hotline.login_guard import LoginGuard

router = APIRouter(prefix="/api")


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


def get_login_guard(services: ServicesDep) -> LoginGuard:
    """The process's guard (its counts shared through Redis when the city has Redis)."""
    return services.login_guard


@router.post("/auth/login", response_model=TokenOut, tags=["auth"], responses={
    401: {"model": ErrorOut, "description": "用户名或密码错误"},
    429: {"model": ErrorOut, "description": "登录失败次数过多；Retry-After 秒后再试"},
})
def login(body: LoginIn, request: Request, session: SessionDep, services: ServicesDep,
          guard: Annotated[LoginGuard, Depends(get_login_guard)]) -> TokenOut:
    """Failed logins are throttled per account and per client address (``hotline.login_guard``)."""
    address = request.client.host if request.client else None
    wait = guard.retry_after(body.username, address)
    if wait > 0:
        raise TooMany(f"登录失败次数过多，请 {wait} 秒后再试 (too many failed logins; retry in {wait} s)", wait)
    try:
        user = auth.authenticate(session, body.username, body.password)
    except Unauthorized:
        guard.failed(body.username, address)
        raise
    guard.succeeded(body.username)
    accounts.touch(session, user)
    token, ttl = auth.issue_token(services.settings, user)
    return TokenOut(access_token=token, expires_in=ttl)


@router.get("/me", response_model=MeOut, tags=["auth"])
def me(actor: UserDep) -> MeOut:
    return MeOut(id=actor.user_id, username=actor.username, name=actor.name, role=actor.role, unit_id=actor.unit_id)
