"""config_versions: a counter per kind of configuration, raised with every change (every process polls it)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 06:00:00
"""
from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "config_versions",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("version", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    )
    # One row per kind from the start, so concurrent first changes only ever UPDATE (no insert race).
    table = sa.table("config_versions", sa.column("name", sa.String), sa.column("version", sa.Integer),
                     sa.column("changed_at", sa.DateTime(timezone=True)))
    now = datetime.now(UTC)
    op.bulk_insert(table, [{"name": n, "version": 0, "changed_at": now} for n in ("directory", "timing", "knowledge")])


def downgrade() -> None:
    op.drop_table("config_versions")
