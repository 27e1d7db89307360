"""Staff accounts: who may have which role and unit. The API and the CLI create and change accounts through here."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from hotline import auth
from hotline.errors import Invalid, NotFound
from hotline.fields import Id, NoNul
from hotline.models import Role, Unit, User

Username = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9_.\-]{2,64}$"), NoNul]
DisplayName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), NoNul]
Password = Annotated[str, StringConstraints(min_length=8, max_length=200), NoNul]
#: how stale ``last_active_at`` may get before a request refreshes it (one write per user per interval)
ACTIVITY_RESOLUTION = timedelta(minutes=5)


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: Username
    display_name: DisplayName
    password: Password
    role: Role
    unit_id: Id | None = None


#: where an agent takes phone calls (``users.phone_device``): a number or a SIP address; "" clears it
PhoneDevice = Annotated[str, StringConstraints(strip_whitespace=True, max_length=128,
                                               pattern=r"^(|sip:[^@\s]+@[^@\s]+|\+?[0-9]{5,20})$"), NoNul]


class UserPatch(BaseModel):
    """The fields an admin changes on an existing account; those left out stay as they are."""

    model_config = ConfigDict(extra="forbid")
    display_name: DisplayName | None = None
    role: Role | None = None
    unit_id: Id | None = None
    active: bool | None = None
    phone_device: PhoneDevice | None = None


def _check_role_unit(session: Session, role: str, unit_id: int | None) -> None:
    if role == Role.unit_handler:
        unit = session.get(Unit, unit_id) if unit_id is not None else None
        if unit is None or not unit.active:
            raise Invalid("a unit_handler needs an existing, active unit_id", field="unit_id")
    elif unit_id is not None:
        raise Invalid("only unit handlers belong to a unit", field="unit_id")


def create_account(session: Session, body: UserIn) -> User:
    """Shared by the API and the CLI: a unit handler needs a unit, nobody else has one."""
    _check_role_unit(session, body.role, body.unit_id)
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


def get_account(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found")
    return user


def change_account(session: Session, user: User, patch: UserPatch, *, acting_user_id: int | None) -> User:
    """Role and unit change together (moving a handler to another unit, making a handler an agent clears the unit).
    An admin cannot disable or demote their own account: the city would be left without anyone to undo it."""
    fields = patch.model_fields_set
    role = patch.role if "role" in fields and patch.role is not None else Role(user.role)
    unit_id = patch.unit_id if "unit_id" in fields else user.unit_id
    if "role" in fields and role != Role.unit_handler and "unit_id" not in fields:
        unit_id = None
    _check_role_unit(session, role, unit_id)
    if user.id == acting_user_id and (role != user.role or patch.active is False):
        raise Invalid("you cannot disable or change the role of your own account", field="role")
    if patch.display_name is not None:
        user.display_name = patch.display_name
    if patch.active is not None:
        user.active = patch.active
    if "phone_device" in fields:
        user.phone_device = patch.phone_device or None
    user.role, user.unit_id = role, unit_id
    session.flush()
    return user


def new_password() -> str:
    """A temporary password an admin reads out or sends: 12 characters without look-alikes (0/O, 1/l/I)."""
    alphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "".join(secrets.choice(alphabet) for _ in range(12))


def set_password(user: User, password: str) -> None:
    user.password_hash = auth.hash_password(password)


def unit_handler_name(session: Session, unit: Unit) -> str:
    """The next free username for a handler of ``unit``: its code, then code-2, code-3 …"""
    taken = set(session.scalars(select(User.username).where(User.username.like(f"{unit.code}%"))))
    if unit.code not in taken:
        return unit.code
    n = 2
    while f"{unit.code}-{n}" in taken:
        n += 1
    return f"{unit.code}-{n}"


def touch(session: Session, user: User, now: datetime | None = None) -> None:
    """Record that the user is active, at most once per ``ACTIVITY_RESOLUTION``. Commits ``session`` when it writes
    (so a read-only request counts too): call it before the request's own work begins."""
    now = now or datetime.now(UTC)
    seen = user.last_active_at
    if seen is not None and now - seen < ACTIVITY_RESOLUTION:
        return
    session.execute(update(User).where(User.id == user.id).values(last_active_at=now))
    session.commit()
