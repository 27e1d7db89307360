"""The admin audit trail: every change an admin makes to the city's configuration is one ``audit_events`` row
(who, when, what, the row before and after), added by ``record`` to the session of the change itself, so the two
commit together or not at all. ``row_dict`` is how a changed row is written down: its columns as JSON values,
secrets (password hashes) left out."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import inspect
from sqlalchemy.orm import Session

from hotline.auth import Actor
from hotline.models import AuditEvent

#: columns never written into the trail
SECRET_COLUMNS = frozenset({"password_hash"})


def _json(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    return value


def row_dict(row: object) -> dict[str, Any]:
    """A mapped row's columns (not its relationships) as JSON-ready values."""
    mapper = inspect(row).mapper
    return {c.key: _json(getattr(row, c.key)) for c in mapper.column_attrs if c.key not in SECRET_COLUMNS}


def record(session: Session, actor: Actor, action: str, entity: str, entity_id: object = "", *,
           before: dict[str, Any] | None = None, after: dict[str, Any] | None = None, summary: str = "") -> None:
    """Add one audit event to ``session`` (the caller commits it with the change). Fields equal before and after
    are kept: the trail shows the whole row as it was and as it became."""
    session.add(AuditEvent(actor_id=actor.user_id, actor_name=actor.name or actor.username, action=action,
                           entity=entity, entity_id=str(entity_id), summary=summary[:2000],
                           before=_json(before) if before is not None else None,
                           after=_json(after) if after is not None else None))
