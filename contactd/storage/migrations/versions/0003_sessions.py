"""Service sessions, their messages and attachments.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_TYPE = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


def upgrade() -> None:
    op.create_table(
        "service_sessions",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("contact_id", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("entry_point", sa.String(64), nullable=False),
        sa.Column("queue_id", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("visitor_id", sa.String(64), nullable=True),
        sa.Column("customer_id", sa.String(64), nullable=True),
        sa.Column("customer_name", sa.String(120), nullable=True),
        sa.Column("customer_phone", sa.String(32), nullable=True),
        sa.Column("order_no", sa.String(64), nullable=True),
        sa.Column("agent_id", sa.String(64), nullable=True),
        sa.Column("agent_name", sa.String(120), nullable=True),
        sa.Column("agents", JSON_TYPE, nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("queued_at", sa.BigInteger, nullable=True),
        sa.Column("offered_at", sa.BigInteger, nullable=True),
        sa.Column("accepted_at", sa.BigInteger, nullable=True),
        sa.Column("first_response_at", sa.BigInteger, nullable=True),
        sa.Column("ended_at", sa.BigInteger, nullable=True),
        sa.Column("end_reason", sa.String(32), nullable=True),
        sa.Column("disposition", sa.String(64), nullable=True),
        sa.Column("rating", sa.SmallInteger, nullable=True),
        sa.Column("rating_comment", sa.String(1000), nullable=True),
        sa.Column("last_seq", sa.Integer, nullable=False),
        sa.Column("transfers", sa.Integer, nullable=False),
        sa.Column("awaiting_reply_since", sa.BigInteger, nullable=True),
        sa.Column("responses", sa.Integer, nullable=False),
        sa.Column("response_total_ms", sa.BigInteger, nullable=False),
        sa.Column("meta", JSON_TYPE, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_sessions")),
    )
    for cols in (
        ("created_at",),
        ("customer_id", "created_at"),
        ("visitor_id", "state"),
        ("customer_phone",),
        ("order_no",),
        ("agent_id", "created_at"),
    ):
        op.create_index(
            op.f("ix_service_sessions_" + "_".join(cols)), "service_sessions", list(cols)
        )
    op.create_table(
        "session_messages",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("session_id", sa.String(32), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("client_msg_id", sa.String(64), nullable=False),
        sa.Column("sender_type", sa.String(16), nullable=False),
        sa.Column("sender_id", sa.String(64), nullable=True),
        sa.Column("sender_name", sa.String(120), nullable=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("text", sa.Text, nullable=True),
        sa.Column("attachment", JSON_TYPE, nullable=True),
        sa.Column("order_card", JSON_TYPE, nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["service_sessions.id"],
            name=op.f("fk_session_messages_session_id_service_sessions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session_messages")),
        sa.UniqueConstraint("session_id", "seq", name=op.f("uq_session_messages_session_id_seq")),
        sa.UniqueConstraint(
            "session_id",
            "client_msg_id",
            name=op.f("uq_session_messages_session_id_client_msg_id"),
        ),
    )
    op.create_table(
        "attachments",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("session_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("path", sa.String(500), nullable=False),
        sa.Column("uploaded_by", sa.String(80), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["service_sessions.id"],
            name=op.f("fk_attachments_session_id_service_sessions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attachments")),
    )


def downgrade() -> None:
    op.drop_table("attachments")
    op.drop_table("session_messages")
    for cols in (
        ("created_at",),
        ("customer_id", "created_at"),
        ("visitor_id", "state"),
        ("customer_phone",),
        ("order_no",),
        ("agent_id", "created_at"),
    ):
        op.drop_index(op.f("ix_service_sessions_" + "_".join(cols)), "service_sessions")
    op.drop_table("service_sessions")
