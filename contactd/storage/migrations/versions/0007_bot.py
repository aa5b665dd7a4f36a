"""Bot knowledge base and the self-service requests the bot records.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_TYPE = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    op.create_table(
        "bot_faqs",
        sa.Column("id", sa.Integer, autoincrement=True, nullable=False),
        sa.Column("question", sa.String(300), nullable=False),
        sa.Column("variants", JSON_TYPE, nullable=False),
        sa.Column("answer", sa.Text, nullable=False),
        sa.Column("tags", JSON_TYPE, nullable=False),
        sa.Column("lang", sa.String(8), nullable=False),
        sa.Column("suggested", sa.Boolean, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("hits", sa.Integer, nullable=False),
        sa.Column("helpful", sa.Integer, nullable=False),
        sa.Column("unhelpful", sa.Integer, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bot_faqs")),
    )
    op.create_table(
        "bot_requests",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("session_id", sa.String(32), nullable=False),
        sa.Column("order_no", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=True),
        sa.Column("details", JSON_TYPE, nullable=False),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("ticket_id", sa.String(64), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["service_sessions.id"],
            name=op.f("fk_bot_requests_session_id_service_sessions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bot_requests")),
    )
    op.create_index(op.f("ix_bot_requests_order_no_kind"), "bot_requests", ["order_no", "kind"])
    op.create_index(op.f("ix_bot_requests_session_id"), "bot_requests", ["session_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_bot_requests_session_id"), table_name="bot_requests")
    op.drop_index(op.f("ix_bot_requests_order_no_kind"), table_name="bot_requests")
    op.drop_table("bot_requests")
    op.drop_table("bot_faqs")
