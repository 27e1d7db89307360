"""Passwords (argon2 via argon2-cffi), bearer tokens (JWT via PyJWT) and the acting identity.

Tokens are short-lived (one shift by default) and carry only the user id; role and unit are read from the database
on each request so that disabling a user or moving them to another unit takes effect at once.
"""

from __future__ import annotations

import functools
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline.errors import Unauthorized
from hotline.fields import id_in_range
from hotline.models import Role, User
from hotline.settings import Settings

_hasher = PasswordHasher()
_ALGORITHM = "HS256"


@dataclass(frozen=True)
class Actor:
    """Whoever performs an action: a user, a channel (service key) or the system (worker, auto-dispatch)."""

    user_id: int | None
    username: str
    name: str
    role: str | None
    unit_id: int | None = None
    channel: str | None = None

    @property
    def is_unit(self) -> bool:
        return self.role == Role.unit_handler

    @property
    def sees_everything(self) -> bool:
        return self.role in (Role.agent, Role.dispatcher, Role.supervisor, Role.admin) or self.is_system

    @property
    def is_system(self) -> bool:
        return self.user_id is None and self.channel is None and self.role is None


SYSTEM = Actor(user_id=None, username="system", name="系统", role=None)


def channel_actor(channel: str) -> Actor:
    return Actor(user_id=None, username=f"channel:{channel}", name=f"{channel}渠道", role=None, channel=channel)


def actor_for(user: User) -> Actor:
    return Actor(user.id, user.username, user.display_name, user.role, user.unit_id)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@functools.cache
def _dummy_hash() -> str:
    """A hash no password matches, verified for unknown users so that they cost the same time as known ones."""
    return _hasher.hash(secrets.token_urlsafe(16))


def authenticate(session: Session, username: str, password: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    matches = verify_password(user.password_hash if user is not None else _dummy_hash(), password)
    if user is None or not user.active or not matches:
        raise Unauthorized("用户名或密码错误 (wrong username or password)")
    return user


def issue_token(settings: Settings, user: User, now: datetime | None = None) -> tuple[str, int]:
    now = now or datetime.now(UTC)
    ttl = timedelta(minutes=settings.token_ttl_minutes)
    payload = {"sub": str(user.id), "iat": int(now.timestamp()), "exp": int((now + ttl).timestamp())}
    return jwt.encode(payload, settings.secret_key, algorithm=_ALGORITHM), int(ttl.total_seconds())


def channel_of_key(settings: Settings, token: str) -> Actor | None:
    """The channel whose service key ``token`` is (compared in constant time), else None; needs no database."""
    for channel, key in settings.channel_keys.items():
        if hmac.compare_digest(token.encode(), key.encode()):
            return channel_actor(channel)
    return None


def actor_from_token(session: Session, settings: Settings, token: str) -> Actor:
    """Resolve a bearer token: a user's JWT, or a channel's service key."""
    return resolve_token(session, settings, token)[0]


def resolve_token(session: Session, settings: Settings, token: str) -> tuple[Actor, User | None]:
    """The token's actor and, for a user's JWT, the user row it was read from (None for a channel's key), so that
    the caller can use the row without reading it again."""
    channel = channel_of_key(settings, token)
    if channel is not None:
        return channel, None
    try:
        payload = jwt.decode(token, settings.secret_key, algorithms=[_ALGORITHM], options={"require": ["exp"]})
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("登录已过期，请重新登录 (token expired)") from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized("无效的访问令牌 (invalid token)") from exc
    try:
        user = session.get(User, id_in_range(payload["sub"]))
    except (KeyError, ValueError) as exc:
        raise Unauthorized("无效的访问令牌 (invalid token)") from exc
    if user is None or not user.active:
        raise Unauthorized("用户不存在或已停用 (user unknown or disabled)")
    return actor_for(user), user
