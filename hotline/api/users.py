"""REST: users (admin)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import select

from hotline.accounts import UserIn, create_account
from hotline.api.deps import SessionDep, UserDep, require
from hotline.models import (
    Role,
    User,
)

router = APIRouter(prefix="/api")


class UserOut(BaseModel):
    id: int
    username: str
    display_name: str
    role: str
    unit_id: int | None
    active: bool




@router.get("/users", response_model=list[UserOut], tags=["admin"])
def list_users(session: SessionDep, actor: UserDep) -> list[UserOut]:
    require(actor, Role.admin)
    return [UserOut.model_validate(u, from_attributes=True) for u in session.scalars(select(User).order_by(User.id))]


@router.post("/users", response_model=UserOut, status_code=201, tags=["admin"])
def create_user(body: UserIn, session: SessionDep, actor: UserDep) -> UserOut:
    require(actor, Role.admin)
    user = create_account(session, body)
    session.commit()
    return UserOut.model_validate(user, from_attributes=True)


