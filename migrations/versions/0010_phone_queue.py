"""queued_calls: callers waiting in the phone queue for an agent (the desk's 来电排队); users.phone_device

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 15:30:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "queued_calls",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("call_sid", sa.String(64), nullable=False),
        sa.Column("from_number", sa.String(32), nullable=True),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ticket_id", sa.Integer(), sa.ForeignKey("tickets.id", name="fk_queued_calls_ticket"),
                  nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("taken_by", sa.Integer(), sa.ForeignKey("users.id", name="fk_queued_calls_taken_by"),
                  nullable=True),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("left_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("conference", sa.String(64), nullable=True),
        sa.UniqueConstraint("call_sid", name="uq_queued_calls_call_sid"),
        sa.CheckConstraint("status IN ('waiting', 'taken', 'abandoned', 'voicemail')",
                           name="ck_queued_calls_status"),
    )
    op.create_index("ix_queued_calls_waiting", "queued_calls", ["queued_at"],
                    postgresql_where=sa.text("status = 'waiting'"), sqlite_where=sa.text("status = 'waiting'"))
    op.create_index("ix_queued_calls_ticket_id", "queued_calls", ["ticket_id"])
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("phone_device", sa.String(128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("phone_device")
    op.drop_index("ix_queued_calls_ticket_id", table_name="queued_calls")
    op.drop_index("ix_queued_calls_waiting", table_name="queued_calls")
    op.drop_table("queued_calls")
