"""knowledge_articles.valid_from / valid_to / owner_unit_id; office_hours: the city's working periods as data

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 09:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("knowledge_articles") as batch:
        batch.add_column(sa.Column("valid_from", sa.Date(), nullable=True))
        batch.add_column(sa.Column("valid_to", sa.Date(), nullable=True))
        batch.add_column(sa.Column("owner_unit_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_knowledge_articles_owner_unit", "units", ["owner_unit_id"], ["id"])
        batch.create_index("ix_knowledge_articles_owner_unit_id", ["owner_unit_id"])
    op.create_table(
        "office_hours",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("periods", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("id = 1", name="ck_office_hours_one_row"),
    )


def downgrade() -> None:
    op.drop_table("office_hours")
    with op.batch_alter_table("knowledge_articles") as batch:
        batch.drop_index("ix_knowledge_articles_owner_unit_id")
        batch.drop_constraint("fk_knowledge_articles_owner_unit", type_="foreignkey")
        batch.drop_column("owner_unit_id")
        batch.drop_column("valid_to")
        batch.drop_column("valid_from")
