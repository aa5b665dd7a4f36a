"""Supervisor monitor: persisted routing events for reports.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "monitor_events",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("queue_id", sa.String(64), nullable=True),
        sa.Column("agent_id", sa.String(64), nullable=True),
        sa.Column("contact_id", sa.String(64), nullable=True),
        sa.Column("value_ms", sa.BigInteger, nullable=True),
        sa.Column("detail", sa.String(64), nullable=True),
        sa.Column("previous", sa.String(16), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitor_events")),
    )
    op.create_index(op.f("ix_monitor_events_at"), "monitor_events", ["at"])
    op.create_index(op.f("ix_monitor_events_agent_id_at"), "monitor_events", ["agent_id", "at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_monitor_events_agent_id_at"), table_name="monitor_events")
    op.drop_index(op.f("ix_monitor_events_at"), table_name="monitor_events")
    op.drop_table("monitor_events")
