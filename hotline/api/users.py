"""REST: staff accounts (admin): list and search, create, change role / unit / name, disable, reset a password,
and a unit's handler account in one call. Every change is an audit event in the same transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict
from sqlalchemy import or_, select

from hotline import accounts, audit
from hotline.accounts import Password, UserIn, UserPatch, create_account
from hotline.api.deps import IdPath, SessionDep, UserDep, require
from hotline.errors import Conflict, Invalid
from hotline.fields import Id
from hotline.models import Role, Unit, User

router = APIRouter(prefix="/api")


class UserOut(BaseModel):
    id: int
    username: str
    display_name: str
    role: str
    unit_id: int | None
    active: bool
    phone_device: str | None = None
    created_at: datetime | None = None
    last_active_at: datetime | None = None


class PasswordOut(BaseModel):
    """A password the server chose: shown once to the admin, never stored in clear."""

    user: UserOut
    password: str


class PasswordIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: Password | None = None  # none: the server picks one


class HandlerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    unit_id: Id


def _out(user: User) -> UserOut:
    return UserOut.model_validate(user, from_attributes=True)


@router.get("/users", response_model=list[UserOut], tags=["admin"])
def list_users(
    session: SessionDep, actor: UserDep,
    q: Annotated[str | None, Query(max_length=100)] = None,
    role: Role | None = None, unit_id: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
    active: bool | None = None,
) -> list[UserOut]:
    """Everyone, or those matching: ``q`` in the username or the name, a role, a unit, active or not."""
    require(actor, Role.admin)
    stmt = select(User).order_by(User.id)
    if q and q.strip():
        pattern = f"%{q.strip()}%"
        stmt = stmt.where(or_(User.username.ilike(pattern), User.display_name.ilike(pattern)))
    if role is not None:
        stmt = stmt.where(User.role == role)
    if unit_id is not None:
        stmt = stmt.where(User.unit_id == unit_id)
    if active is not None:
        stmt = stmt.where(User.active == active)
    return [_out(u) for u in session.scalars(stmt)]


@router.post("/users", response_model=UserOut, status_code=201, tags=["admin"])
def create_user(body: UserIn, session: SessionDep, actor: UserDep) -> UserOut:
    require(actor, Role.admin)
    user = create_account(session, body)
    audit.record(session, actor, "create", "user", user.id, after=audit.row_dict(user),
                 summary=f"新建账号 {user.username}")
    session.commit()
    return _out(user)


@router.post("/users/unit-handler", response_model=PasswordOut, status_code=201, tags=["admin"])
def create_unit_handler(body: HandlerIn, session: SessionDep, actor: UserDep) -> PasswordOut:
    """A handler account for a unit in one step: named after the unit's code (code-2 … if taken), the unit's name
    as display name, a generated password returned once."""
    require(actor, Role.admin)
    unit = session.get(Unit, body.unit_id)
    if unit is None or not unit.active:
        raise Invalid(f"unknown or inactive unit {body.unit_id}", field="unit_id")
    password = accounts.new_password()
    user = create_account(session, UserIn(
        username=accounts.unit_handler_name(session, unit), display_name=f"{unit.short_name or unit.name}经办人",
        password=password, role=Role.unit_handler, unit_id=unit.id))
    audit.record(session, actor, "create", "user", user.id, after=audit.row_dict(user),
                 summary=f"为{unit.name}新建承办账号 {user.username}")
    session.commit()
    return PasswordOut(user=_out(user), password=password)


@router.get("/users/{user_id}", response_model=UserOut, tags=["admin"])
def get_user(user_id: IdPath, session: SessionDep, actor: UserDep) -> UserOut:
    require(actor, Role.admin)
    return _out(accounts.get_account(session, user_id))


@router.patch("/users/{user_id}", response_model=UserOut, tags=["admin"])
def change_user(user_id: IdPath, body: UserPatch, session: SessionDep, actor: UserDep) -> UserOut:
    """Change the name, role, unit or the active flag (false disables the account at its next request)."""
    require(actor, Role.admin)
    user = accounts.get_account(session, user_id)
    before = audit.row_dict(user)
    accounts.change_account(session, user, body, acting_user_id=actor.user_id)
    after = audit.row_dict(user)
    if after != before:
        action = "disable" if before["active"] and not after["active"] else (
            "enable" if after["active"] and not before["active"] else "update")
        audit.record(session, actor, action, "user", user.id, before=before, after=after,
                     summary=f"修改账号 {user.username}")
    session.commit()
    return _out(user)


@router.post("/users/{user_id}/password", response_model=PasswordOut, tags=["admin"])
def reset_password(user_id: IdPath, session: SessionDep, actor: UserDep,
                   body: PasswordIn | None = None) -> PasswordOut:
    """Set a new password (the given one, or a generated one returned once); the old password stops working."""
    require(actor, Role.admin)
    user = accounts.get_account(session, user_id)
    if not user.active:
        raise Conflict(f"user {user_id} is disabled; enable the account first")
    password = (body.password if body and body.password else None) or accounts.new_password()
    accounts.set_password(user, password)
    audit.record(session, actor, "reset_password", "user", user.id, summary=f"重置 {user.username} 的密码")
    session.commit()
    return PasswordOut(user=_out(user), password=password)
