"""After-sales tickets (case module): tickets and their timeline.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_TYPE = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "tickets",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("type", sa.String(24), nullable=False),
        sa.Column("state", sa.String(24), nullable=False),
        sa.Column("priority", sa.SmallInteger, nullable=False),
        sa.Column("queue_id", sa.String(64), nullable=False),
        sa.Column("owner_id", sa.String(64), nullable=True),
        sa.Column("owner_name", sa.String(120), nullable=True),
        sa.Column("customer_id", sa.String(64), nullable=True),
        sa.Column("customer_name", sa.String(120), nullable=True),
        sa.Column("customer_phone", sa.String(32), nullable=True),
        sa.Column("visitor_id", sa.String(64), nullable=True),
        sa.Column("order_no", sa.String(64), nullable=True),
        sa.Column("session_id", sa.String(32), nullable=True),
        sa.Column("items", JSON_TYPE, nullable=False),
        sa.Column("attachments", JSON_TYPE, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.String(1000), nullable=False),
        sa.Column("auto_rule", sa.String(24), nullable=True),
        sa.Column("urges", sa.Integer, nullable=False),
        sa.Column("last_urged_at", sa.BigInteger, nullable=True),
        sa.Column("created_by", sa.String(120), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.Column("claimed_at", sa.BigInteger, nullable=True),
        sa.Column("first_action_at", sa.BigInteger, nullable=True),
        sa.Column("closed_at", sa.BigInteger, nullable=True),
        sa.Column("stall_warned_at", sa.BigInteger, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tickets")),
    )
    for cols in (
        ("queue_id", "owner_id", "closed_at"),
        ("owner_id", "closed_at"),
        ("customer_id",),
        ("visitor_id",),
        ("session_id",),
        ("created_at",),
    ):
        op.create_index(op.f("ix_tickets_" + "_".join(cols)), "tickets", list(cols))
    op.create_table(
        "ticket_events",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("ticket_id", sa.String(32), nullable=False),
        sa.Column("at", sa.BigInteger, nullable=False),
        sa.Column("action", sa.String(24), nullable=False),
        sa.Column("actor_type", sa.String(16), nullable=False),
        sa.Column("actor_id", sa.String(64), nullable=True),
        sa.Column("actor_name", sa.String(120), nullable=True),
        sa.Column("from_state", sa.String(24), nullable=True),
        sa.Column("to_state", sa.String(24), nullable=True),
        sa.Column("note", sa.String(1000), nullable=True),
        sa.Column("data", JSON_TYPE, nullable=True),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_ticket_events_ticket_id_tickets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_events")),
    )
    op.create_index(op.f("ix_ticket_events_ticket_id_id"), "ticket_events", ["ticket_id", "id"])


def downgrade() -> None:
    op.drop_table("ticket_events")
    op.drop_table("tickets")
