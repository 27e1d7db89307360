"""Staff accounts: who may have which role and unit. The API and the CLI create accounts through here."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints
from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline import auth
from hotline.errors import Invalid
from hotline.fields import Id, NoNul
from hotline.models import Role, Unit, User


class UserIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    username: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9_.\-]{2,64}$"), NoNul]
    display_name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), NoNul]
    password: Annotated[str, StringConstraints(min_length=8, max_length=200), NoNul]
    role: Role
    unit_id: Id | None = None


def create_account(session: Session, body: UserIn) -> User:
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
