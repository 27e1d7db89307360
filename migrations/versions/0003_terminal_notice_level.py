"""tickets outside the deadline states leave the sweep indexes (notice_level 9); reopened tickets lose old deadlines

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 09:00:00

A data migration, the same on SQLite and PostgreSQL (plain UPDATEs), doing to existing rows what the workflow now
does on every transition (``hotline.workflow``, frozen here as literals so later code changes cannot change what
this revision did):

- a ticket in a state where no reply clock runs (anything but dispatched, signed, returned) gets
  ``notice_level = 9``, above every sweep threshold, so it leaves the partial indexes ``ix_tickets_sweep_*``
  (``postgresql_where notice_level < n``). Tickets waiting for the citizen (awaiting_citizen) keep their level: it is
  the only record of which notices their paused round already had, and ``provide_info`` resumes from it.
- a reopened ticket (重办, waiting for its re-dispatch) loses the previous round's deadlines and thresholds.
- a pending extension request on a ticket that was replied, sent back or closed meanwhile lapses.

The ticket's ``version`` is left alone (like the sweep), so no open page gets a 409 for it. Downgrade changes
nothing: the old code treats level 9 as "every notice sent", which is right for these tickets.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

NOTICES_DONE = 9
DEADLINE_STATES = ("dispatched", "signed", "returned")
KEEPS_LEVEL = ("awaiting_citizen",)
EXTENSION_STATES = ("dispatched", "signed", "awaiting_citizen")

tickets = sa.table(
    "tickets",
    sa.column("status", sa.String),
    sa.column("notice_level", sa.Integer),
    sa.column("sign_due", sa.DateTime(timezone=True)),
    sa.column("reply_due", sa.DateTime(timezone=True)),
    sa.column("reply_warn_at", sa.DateTime(timezone=True)),
    sa.column("escalate_at", sa.DateTime(timezone=True)),
    sa.column("callback_due", sa.DateTime(timezone=True)),
    sa.column("extension_pending", sa.Boolean),
)


def upgrade() -> None:
    op.execute(
        tickets.update()
        .where(
            tickets.c.status.not_in(DEADLINE_STATES + KEEPS_LEVEL),
            tickets.c.notice_level < NOTICES_DONE,
        )
        .values(notice_level=NOTICES_DONE)
    )
    op.execute(
        tickets.update()
        .where(tickets.c.status == "reopened")
        .values(sign_due=None, reply_due=None, reply_warn_at=None, escalate_at=None, callback_due=None)
    )
    op.execute(
        tickets.update()
        .where(tickets.c.extension_pending == sa.true(), tickets.c.status.not_in(EXTENSION_STATES))
        .values(extension_pending=False)
    )


def downgrade() -> None:
    pass
