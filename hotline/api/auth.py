"""REST: auth."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, StringConstraints

from hotline import accounts, auth
from hotline.api.deps import ServicesDep, SessionDep, UserDep
from hotline.fields import NoNul

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


@router.post("/auth/login", response_model=TokenOut, tags=["auth"])
def login(body: LoginIn, session: SessionDep, services: ServicesDep) -> TokenOut:
    user = auth.authenticate(session, body.username, body.password)
    accounts.touch(session, user)
    token, ttl = auth.issue_token(services.settings, user)
    return TokenOut(access_token=token, expires_in=ttl)


@router.get("/me", response_model=MeOut, tags=["auth"])
def me(actor: UserDep) -> MeOut:
    return MeOut(id=actor.user_id, username=actor.username, name=actor.name, role=actor.role, unit_id=actor.unit_id)
