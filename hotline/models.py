"""The tables. Relationships are ``lazy="raise"`` so an accidental N+1 query fails in tests, not in production.

Ticket history is append-only: ``ticket_events`` rows are inserted, never updated or deleted; the ticket row holds
the current state (for indexed queries) and a ``version`` counter for optimistic locking.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, Literal, get_args

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hotline.db import Base
from hotline.labels import CHANNEL_LABELS, KIND_LABELS, STATUS_LABELS  # re-exported: their home is hotline.labels


class Role(StrEnum):
    agent = "agent"
    dispatcher = "dispatcher"
    unit_handler = "unit_handler"
    supervisor = "supervisor"
    admin = "admin"


class Status(StrEnum):
    received = "received"  # 受理
    answered = "answered"  # 直接办结
    transferred = "transferred"  # 转110/119/120/122
    merged = "merged"  # 并案
    dispatched = "dispatched"  # 派单
    signed = "signed"  # 签收
    replied = "replied"  # 办结答复
    callback = "callback"  # 已回访
    closed = "closed"  # 归档
    returned = "returned"  # 退单
    reopened = "reopened"  # 重办
    awaiting_citizen = "awaiting_citizen"  # 待补充


class Kind(StrEnum):
    consultation = "consultation"
    help = "help"
    complaint = "complaint"
    report = "report"
    suggestion = "suggestion"
    praise = "praise"


#: area levels from the city down; ``nlp.places.LEVELS`` is the gazetteer's copy (a test keeps them equal)
AreaLevel = Literal["city", "district", "street", "community"]
AREA_LEVELS: tuple[str, ...] = get_args(AreaLevel)
UnitKind = Literal["government", "bureau", "street_office", "community", "enterprise", "hotline"]
UNIT_KINDS: tuple[str, ...] = get_args(UnitKind)


def _now() -> datetime:
    return datetime.now(UTC)


class TZDateTime(TypeDecorator[datetime]):
    """Timezone-aware timestamps on both databases: stored in UTC, read back aware.

    SQLite has no time zone type and would hand back naive datetimes, which then compare wrongly with deadlines.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a timezone-aware column")
        return value.astimezone(UTC) if dialect.name != "sqlite" else value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Area(Base):
    __tablename__ = "areas"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    level: Mapped[str] = mapped_column(String(16))  # city, district, street, community
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"), index=True)
    aliases: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Deactivated areas stay for the tickets that name them; admins hide them instead of deleting (0002).
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())


class Unit(Base):
    __tablename__ = "units"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    short_name: Mapped[str | None] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(32))
    area_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    phone: Mapped[str | None] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(32))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=_now)
    last_active_at: Mapped[datetime | None] = mapped_column(TZDateTime())  # login or request, to a few minutes
    # where a queued call is put through to this agent (migration 0010): a phone number or a ``sip:`` address
    phone_device: Mapped[str | None] = mapped_column(String(128))


class Citizen(Base):
    __tablename__ = "citizens"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(32), index=True)
    wechat_openid: Mapped[str | None] = mapped_column(String(128), index=True)
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=_now)


class Category(Base):
    __tablename__ = "categories"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"), index=True)
    level: Mapped[int] = mapped_column(Integer, default=1)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class CatalogueRule(Base):
    """派单目录: category (any level) × area → lead unit (+ co-units). Editable at run time, no code change."""

    __tablename__ = "catalogue_rules"
    id: Mapped[int] = mapped_column(primary_key=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"), index=True)
    area_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), index=True)
    lead_unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    co_unit_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    note: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class KnowledgeArticle(Base):
    __tablename__ = "knowledge_articles"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    category_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"), index=True)
    keywords: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    #: the days (city calendar, both included) the article may be offered; None = open-ended (migration 0009)
    valid_from: Mapped[date | None] = mapped_column(Date)
    valid_to: Mapped[date | None] = mapped_column(Date)
    #: the unit that keeps the article correct (answers its questions, renews it)
    owner_unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=_now)
    updated_at: Mapped[datetime] = mapped_column(TZDateTime(), default=_now, onupdate=_now)


class CalendarOverride(Base):
    """An admin's correction of the working calendar (a local holiday, next year's schedule)."""

    __tablename__ = "calendar_overrides"
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    working: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[str] = mapped_column(Text, default="")


class TicketSequence(Base):
    """Per-day counter behind human-readable ticket numbers (20261122000123)."""

    __tablename__ = "ticket_sequences"
    day: Mapped[str] = mapped_column(String(8), primary_key=True)
    last: Mapped[int] = mapped_column(Integer)


class Ticket(Base):
    __tablename__ = "tickets"
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    channel: Mapped[str] = mapped_column(String(16), index=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    text: Mapped[str] = mapped_column(Text)
    location: Mapped[str | None] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(16), default=Kind.help)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    urgency_reason: Mapped[str | None] = mapped_column(String(100))
    emergency_line: Mapped[str | None] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(20), default=Status.received, index=True)
    resume_status: Mapped[str | None] = mapped_column(String(20))  # where 待补充 returns to
    category_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"), index=True)
    area_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"), index=True)
    citizen_id: Mapped[int | None] = mapped_column(ForeignKey("citizens.id"), index=True)
    confidential: Mapped[bool] = mapped_column(Boolean, default=False)
    lead_unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # 首接负责 until dispatched
    analysis: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    received_at: Mapped[datetime] = mapped_column(TZDateTime(), default=_now, index=True)
    dispatched_at: Mapped[datetime | None] = mapped_column(TZDateTime())
    sign_due: Mapped[datetime | None] = mapped_column(TZDateTime())
    reply_due: Mapped[datetime | None] = mapped_column(TZDateTime(), index=True)
    # Precomputed sweep thresholds (working-time arithmetic can't run in SQL): 75 % of the reply time, and the
    # moment overdue becomes an escalation. notice_level: 0 none, 1 reminded, 2 overdue, 3 escalated,
    # 9 out of the sweep (workflow.NOTICES_DONE: the ticket left the states with a running deadline).
    reply_warn_at: Mapped[datetime | None] = mapped_column(TZDateTime())
    escalate_at: Mapped[datetime | None] = mapped_column(TZDateTime())
    notice_level: Mapped[int] = mapped_column(Integer, default=0)
    signed_at: Mapped[datetime | None] = mapped_column(TZDateTime())
    replied_at: Mapped[datetime | None] = mapped_column(TZDateTime())
    callback_due: Mapped[datetime | None] = mapped_column(TZDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(TZDateTime())
    paused_at: Mapped[datetime | None] = mapped_column(TZDateTime())
    reply_text: Mapped[str | None] = mapped_column(Text)
    satisfaction: Mapped[str | None] = mapped_column(String(24))
    solved: Mapped[bool | None] = mapped_column(Boolean)
    extension_pending: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(TZDateTime(), default=_now, onupdate=_now)

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012
    __table_args__ = (
        Index("ix_tickets_status_reply_due", "status", "reply_due"),
        Index("ix_tickets_lead_status", "lead_unit_id", "status"),
        Index("ix_tickets_sweep_warn", "reply_warn_at", postgresql_where="notice_level < 1"),
        Index("ix_tickets_sweep_due", "reply_due", postgresql_where="notice_level < 2"),
        Index("ix_tickets_sweep_escalate", "escalate_at", postgresql_where="notice_level < 3"),
    )

    category: Mapped[Category | None] = relationship(lazy="raise")
    area: Mapped[Area | None] = relationship(lazy="raise")
    citizen: Mapped[Citizen | None] = relationship(lazy="raise")
    lead_unit: Mapped[Unit | None] = relationship(lazy="raise")
    co_units: Mapped[list[TicketCoUnit]] = relationship(lazy="raise", cascade="all, delete-orphan")
    parent: Mapped[Ticket | None] = relationship(remote_side=[id], lazy="raise", viewonly=True)
    events: Mapped[list[TicketEvent]] = relationship(
        lazy="raise", order_by="TicketEvent.id", back_populates="ticket"
    )


class TicketCoUnit(Base):
    """协办单位: they see the ticket and contribute, the lead unit answers for it."""

    __tablename__ = "ticket_co_units"
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), primary_key=True, index=True)


class TicketEvent(Base):
    """One row per change or notice: who, when, from-state, to-state, note. Never updated, never deleted."""

    __tablename__ = "ticket_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    type: Mapped[str] = mapped_column(String(32), index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor_name: Mapped[str] = mapped_column(String(100), default="")
    actor_role: Mapped[str | None] = mapped_column(String(32))
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str | None] = mapped_column(String(20))
    note: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=_now, index=True)

    ticket: Mapped[Ticket] = relationship(lazy="raise", back_populates="events")


#: the inbound messages still to process, as the partial indexes and the worker's claim spell it (word for word:
#: SQLite uses a partial index only for a WHERE that contains its condition)
INBOUND_PENDING = "state IN ('accepted', 'processing')"


class InboundMessage(Base):
    """Every raw message a channel delivers, committed before any processing (``hotline.inbound.accept``); retries
    hit the unique key. The worker turns it into a ticket (``state``: accepted → processing → done, or failed with
    ``last_error`` after its attempts); the raw payload is never changed, so a failed message can be replayed."""

    __tablename__ = "inbound_messages"
    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(128))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    received_at: Mapped[datetime] = mapped_column(TZDateTime(), default=_now)
    state: Mapped[str] = mapped_column(String(16), default="accepted")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(TZDateTime())
    lease_until: Mapped[datetime | None] = mapped_column(TZDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    processed_at: Mapped[datetime | None] = mapped_column(TZDateTime())

    __table_args__ = (
        UniqueConstraint("channel", "external_id", name="uq_inbound_channel_external_id"),
        Index("ix_inbound_pending", "next_attempt_at", postgresql_where=text(INBOUND_PENDING),
              sqlite_where=text(INBOUND_PENDING)),
        Index("ix_inbound_state", "state", "id"),
        # the claim's ORDER BY id over the pending rows only (else it walks every message ever done: migration 0011)
        Index("ix_inbound_pending_id", "id", postgresql_where=text(INBOUND_PENDING),
              sqlite_where=text(INBOUND_PENDING)),
    )


class OutboxMessage(Base):
    """Whatever goes to a citizen or an outside system (SMS, WeChat message, forum reply, outbound call): written in
    the transaction of the change that causes it, sent by the worker with retries; ``idempotency_key`` travels to
    the receiver, so a resend after a crash between sending and marking is recognised there."""

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    channel: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(32))
    recipient: Mapped[str] = mapped_column(String(200), default="")
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    idempotency_key: Mapped[str] = mapped_column(String(80), unique=True)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(TZDateTime(), default=_now)
    lease_until: Mapped[datetime | None] = mapped_column(TZDateTime())
    last_error: Mapped[str | None] = mapped_column(Text)
    provider_id: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=_now)
    sent_at: Mapped[datetime | None] = mapped_column(TZDateTime())

    __table_args__ = (
        Index("ix_outbox_pending", "next_attempt_at", postgresql_where=text("state = 'pending'"),
              sqlite_where=text("state = 'pending'")),
    )


__all__ = [
    "AREA_LEVELS",
    "CHANNEL_LABELS",
    "KIND_LABELS",
    "STATUS_LABELS",
    "UNIT_KINDS",
    "Area",
    "CalendarOverride",
    "CatalogueRule",
    "Category",
    "Citizen",
    "InboundMessage",
    "Kind",
    "KnowledgeArticle",
    "Role",
    "Status",
    "Ticket",
    "TicketCoUnit",
    "TicketEvent",
    "TicketSequence",
    "Unit",
    "User",
]


# --- routing: policies, calendar years, supervision, accountability (migration 0002) ---------------------------


class DeadlinePolicyRow(Base):
    """An admin's deadline policy (时限); rows override ``routing.deadlines.DEFAULT_POLICIES``.

    ``scope_key`` makes each scope unique on both databases (NULLs are never equal in a UNIQUE constraint):
    ``kind:<kind>`` (non-urgent default of a kind), ``urgent:*`` (urgent, any kind), ``urgent:<kind>`` (urgent,
    one kind) or ``category:<category id>`` (non-urgent tickets of that category subtree, any kind).
    """

    __tablename__ = "deadline_policies"
    id: Mapped[int] = mapped_column(primary_key=True)
    scope_key: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str | None] = mapped_column(String(16))
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    category_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"), index=True)
    sign_minutes: Mapped[int] = mapped_column(Integer, default=0)
    sign_days: Mapped[int] = mapped_column(Integer, default=0)
    reply_minutes: Mapped[int] = mapped_column(Integer, default=0)
    reply_days: Mapped[int] = mapped_column(Integer, default=0)
    clock_time: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(TZDateTime(), default=_now, onupdate=_now)


class CalendarYear(Base):
    """A year whose full holiday schedule an admin entered as overrides (silences "schedule not loaded")."""

    __tablename__ = "calendar_years"
    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    note: Mapped[str] = mapped_column(Text, default="")
    loaded_at: Mapped[datetime] = mapped_column(TZDateTime(), default=_now)


class SupervisionOrder(Base):
    """督办: a supervisor's formal order to a unit, with its own due date and a required written response.

    A projection of the ``supervise``/``respond_supervision`` events (the history stays the truth) so supervisors
    can list the open ones without replaying every ticket.
    """

    __tablename__ = "supervision_orders"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    state: Mapped[str] = mapped_column(String(16), default="open")  # open, responded
    note: Mapped[str] = mapped_column(Text, default="")
    issued_at: Mapped[datetime] = mapped_column(TZDateTime(), default=_now)
    issued_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    due_at: Mapped[datetime] = mapped_column(TZDateTime())
    responded_at: Mapped[datetime | None] = mapped_column(TZDateTime())
    responded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    response: Mapped[str | None] = mapped_column(Text)
    overdue_notified: Mapped[bool] = mapped_column(Boolean, default=False)

    __table_args__ = (
        Index("ix_supervision_orders_state_due", "state", "due_at"),
        Index("ix_supervision_orders_sweep", "due_at", postgresql_where="state = 'open' AND NOT overdue_notified"),
    )


class AccountabilityCase(Base):
    """问责: opened (by a supervisor or a sweep rule) → explained by the unit → upheld or dismissed.

    ``dedupe_key`` is set for automatic rules (``rule:ticket:unit``) so a rule opens its case exactly once, even
    with several workers (INSERT … ON CONFLICT DO NOTHING); manual cases leave it NULL.
    """

    __tablename__ = "accountability_cases"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    state: Mapped[str] = mapped_column(String(16), default="opened", index=True)  # opened explained upheld dismissed
    rule: Mapped[str] = mapped_column(String(32), default="manual")  # manual overdue refused_returns closed_unsolved
    reason: Mapped[str] = mapped_column(Text, default="")
    dedupe_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    opened_at: Mapped[datetime] = mapped_column(TZDateTime(), default=_now)
    opened_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    explained_at: Mapped[datetime | None] = mapped_column(TZDateTime())
    explanation: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime | None] = mapped_column(TZDateTime())
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decision_note: Mapped[str | None] = mapped_column(Text)


class SweepCursor(Base):
    """How far the accountability rules have read the event log (each sweep re-reads a short overlap)."""

    __tablename__ = "sweep_cursors"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    at: Mapped[datetime] = mapped_column(TZDateTime())


# Scorecards and the rule sweep read events of one type in a time window.
Index("ix_ticket_events_type_created", TicketEvent.type, TicketEvent.created_at)

__all__ += [
    "AccountabilityCase",
    "CalendarYear",
    "DeadlinePolicyRow",
    "SupervisionOrder",
    "SweepCursor",
]


class ConfigVersion(Base):
    """A counter per kind of configuration (directory, timing, knowledge), raised in the transaction of every change.

    Why a row and not only a bus notice: a change made where no bus reaches (the CLI on the embedded SQLite
    default, a process that was restarting) must still reach every process; each one polls these few rows.
    """

    __tablename__ = "config_versions"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)
    changed_at: Mapped[datetime] = mapped_column(TZDateTime(), default=_now)


class ChannelCursor(Base):
    """What a channel's poller remembers between passes, one row a feed (``forum:<board>``): its state as JSON
    (validators, keys seen, back-off) and when it is next due. A worker claims a due row by moving ``due_at`` on in
    one UPDATE, so two workers never poll the same feed at once."""

    __tablename__ = "channel_cursors"
    name: Mapped[str] = mapped_column(String(120), primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    due_at: Mapped[datetime] = mapped_column(TZDateTime(), default=_now)
    updated_at: Mapped[datetime] = mapped_column(TZDateTime(), default=_now)


__all__ += ["ChannelCursor"]

class AuditEvent(Base):
    """An admin's change to the city's configuration (users, directory, catalogue, knowledge, calendar, policies,
    channels): who, when, what, the row before and after. Written by ``hotline.audit.record`` in the transaction of
    the change itself, so a change without its audit event cannot commit. Append-only."""

    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(TZDateTime(), default=_now, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor_name: Mapped[str] = mapped_column(String(100), default="")
    action: Mapped[str] = mapped_column(String(32))  # create, update, deactivate, delete, import, reset_password …
    entity: Mapped[str] = mapped_column(String(32), index=True)  # user, unit, area, rule, article, …
    entity_id: Mapped[str] = mapped_column(String(64), default="")
    summary: Mapped[str] = mapped_column(Text, default="")
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)


__all__ += ["AuditEvent"]


class TicketAttachment(Base):
    """A file that came with a citizen's message (a WeChat photo or voice message, a voicemail recording), kept
    in the database itself so a ``pg_dump`` keeps it with its ticket (``hotline.attachments``).

    ``source`` is where it came from (a WeChat media_id, a recording or image URL). ``state``: ``pending`` (to be
    fetched by the worker), ``fetching`` (leased), ``stored`` (``content`` holds the bytes with their size and
    sha256), ``refused`` (not fetched; ``reason`` says why in Chinese: too large, expired at WeChat …) or
    ``linked`` (a public link kept as it came: the hotline fetches no address a stranger names). ``content`` is
    deferred: lists never load the bytes."""

    __tablename__ = "attachments"
    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    inbound_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_messages.id"))
    position: Mapped[int] = mapped_column(Integer, default=0)  # its place among its message's attachments
    channel: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))  # image | audio | recording | document
    source: Mapped[str] = mapped_column(Text, default="")
    state: Mapped[str] = mapped_column(String(16), default="pending")
    content_type: Mapped[str | None] = mapped_column(String(100))
    size: Mapped[int | None] = mapped_column(Integer)
    sha256: Mapped[str | None] = mapped_column(String(64))
    content: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    reason: Mapped[str | None] = mapped_column(Text)
    last_error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(TZDateTime(), default=_now)
    lease_until: Mapped[datetime | None] = mapped_column(TZDateTime())
    created_at: Mapped[datetime] = mapped_column(TZDateTime(), default=_now)
    stored_at: Mapped[datetime | None] = mapped_column(TZDateTime())

    __table_args__ = (
        UniqueConstraint("inbound_id", "position", name="uq_attachments_inbound_position"),
        Index("ix_attachments_pending", "next_attempt_at", postgresql_where=text("state IN ('pending', 'fetching')"),
              sqlite_where=text("state IN ('pending', 'fetching')")),
    )


__all__ += ["TicketAttachment"]


class OfficeHoursRow(Base):
    """The city's office hours as admins set them (migration 0009): one row, ``periods`` = [["08:30", "12:00"], …].
    No row: the setting ``HOTLINE_OFFICE_HOURS`` (``hotline.timing.Timing.reload`` reads both)."""

    __tablename__ = "office_hours"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False, default=1)
    periods: Mapped[list[list[str]]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(TZDateTime(), default=_now, onupdate=_now)

    __table_args__ = (CheckConstraint("id = 1", name="ck_office_hours_one_row"),)


__all__ += ["OfficeHoursRow"]


class QueuedCall(Base):
    """A caller waiting in the phone queue (``<Enqueue>``) for an agent (migration 0010; ``channels.phone.queue``).

    ``ticket_id`` is the draft the caller's transcript made (set by the worker when it made it). ``status``:
    ``waiting`` → ``taken`` (an agent claimed it: ``taken_by``/``taken_at``), ``abandoned`` (hung up while waiting)
    or ``voicemail`` (nobody free: the caller was offered voicemail). ``conference`` names the three-party room once
    the agent adds an emergency line."""

    __tablename__ = "queued_calls"
    id: Mapped[int] = mapped_column(primary_key=True)
    call_sid: Mapped[str] = mapped_column(String(64))
    from_number: Mapped[str | None] = mapped_column(String(32))
    queued_at: Mapped[datetime] = mapped_column(TZDateTime(), default=_now)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="waiting")
    taken_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    taken_at: Mapped[datetime | None] = mapped_column(TZDateTime())
    left_at: Mapped[datetime | None] = mapped_column(TZDateTime())
    conference: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        UniqueConstraint("call_sid", name="uq_queued_calls_call_sid"),
        CheckConstraint("status IN ('waiting', 'taken', 'abandoned', 'voicemail')", name="ck_queued_calls_status"),
        Index("ix_queued_calls_waiting", "queued_at", postgresql_where=text("status = 'waiting'"),
              sqlite_where=text("status = 'waiting'")),
    )


__all__ += ["QueuedCall"]
