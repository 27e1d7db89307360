"""supervision orders, accountability cases, deadline policies, calendar years, area deactivation

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 08:30:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("areas", schema=None) as batch_op:
        batch_op.add_column(sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False))

    op.create_table(
        "deadline_policies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("scope_key", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=True),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("category_id", sa.Integer(), nullable=True),
        sa.Column("sign_minutes", sa.Integer(), nullable=False),
        sa.Column("sign_days", sa.Integer(), nullable=False),
        sa.Column("reply_minutes", sa.Integer(), nullable=False),
        sa.Column("reply_days", sa.Integer(), nullable=False),
        sa.Column("clock_time", sa.Boolean(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["category_id"], ["categories.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("scope_key"),
    )
    with op.batch_alter_table("deadline_policies", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deadline_policies_category_id"), ["category_id"], unique=False)

    op.create_table(
        "calendar_years",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("year"),
    )

    op.create_table(
        "supervision_orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issued_by", sa.Integer(), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("responded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("responded_by", sa.Integer(), nullable=True),
        sa.Column("response", sa.Text(), nullable=True),
        sa.Column("overdue_notified", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["issued_by"], ["users.id"]),
        sa.ForeignKeyConstraint(["responded_by"], ["users.id"]),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"]),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("supervision_orders", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_supervision_orders_ticket_id"), ["ticket_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_supervision_orders_unit_id"), ["unit_id"], unique=False)
        batch_op.create_index("ix_supervision_orders_state_due", ["state", "due_at"], unique=False)
        batch_op.create_index("ix_supervision_orders_sweep", ["due_at"], unique=False,
                              postgresql_where="state = 'open' AND NOT overdue_notified")

    op.create_table(
        "accountability_cases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("rule", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=128), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("opened_by", sa.Integer(), nullable=True),
        sa.Column("explained_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("explanation", sa.Text(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["decided_by"], ["users.id"]),
        sa.ForeignKeyConstraint(["opened_by"], ["users.id"]),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"]),
        sa.ForeignKeyConstraint(["unit_id"], ["units.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedupe_key"),
    )
    with op.batch_alter_table("accountability_cases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_accountability_cases_state"), ["state"], unique=False)
        batch_op.create_index(batch_op.f("ix_accountability_cases_ticket_id"), ["ticket_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_accountability_cases_unit_id"), ["unit_id"], unique=False)

    op.create_table(
        "sweep_cursors",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )

    with op.batch_alter_table("ticket_events", schema=None) as batch_op:
        batch_op.create_index("ix_ticket_events_type_created", ["type", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ticket_events", schema=None) as batch_op:
        batch_op.drop_index("ix_ticket_events_type_created")
    op.drop_table("sweep_cursors")
    with op.batch_alter_table("accountability_cases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_accountability_cases_unit_id"))
        batch_op.drop_index(batch_op.f("ix_accountability_cases_ticket_id"))
        batch_op.drop_index(batch_op.f("ix_accountability_cases_state"))
    op.drop_table("accountability_cases")
    with op.batch_alter_table("supervision_orders", schema=None) as batch_op:
        batch_op.drop_index("ix_supervision_orders_sweep", postgresql_where="state = 'open' AND NOT overdue_notified")
        batch_op.drop_index("ix_supervision_orders_state_due")
        batch_op.drop_index(batch_op.f("ix_supervision_orders_unit_id"))
        batch_op.drop_index(batch_op.f("ix_supervision_orders_ticket_id"))
    op.drop_table("supervision_orders")
    op.drop_table("calendar_years")
    with op.batch_alter_table("deadline_policies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deadline_policies_category_id"))
    op.drop_table("deadline_policies")
    with op.batch_alter_table("areas", schema=None) as batch_op:
        batch_op.drop_column("active")
