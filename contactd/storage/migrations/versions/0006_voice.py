"""Voice calls and IVR webhook events: the record of every call the IVR handled and the
callback requests (voicemails) callers left.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON_TYPE = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ivr_calls",
        sa.Column("call_id", sa.String(64), nullable=False),
        sa.Column("caller", sa.String(32), nullable=False),
        sa.Column("dialled", sa.String(32), nullable=False),
        sa.Column("ivr_path", sa.String(64), nullable=True),
        sa.Column("customer_id", sa.String(64), nullable=True),
        sa.Column("session_id", sa.String(32), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("menu_log", JSON_TYPE, nullable=False),
        sa.Column("started_at", sa.BigInteger, nullable=False),
        sa.Column("ended_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("call_id", name=op.f("pk_ivr_calls")),
    )
    op.create_index(op.f("ix_ivr_calls_started_at"), "ivr_calls", ["started_at"])
    op.create_index(op.f("ix_ivr_calls_caller_started_at"), "ivr_calls", ["caller", "started_at"])
    op.create_table(
        "ivr_callbacks",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("call_id", sa.String(64), nullable=False),
        sa.Column("caller", sa.String(32), nullable=False),
        sa.Column("customer_id", sa.String(64), nullable=True),
        sa.Column("session_id", sa.String(32), nullable=True),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("recording_url", sa.String(500), nullable=True),
        sa.Column("recording_s", sa.Integer, nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("ticket_id", sa.String(64), nullable=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ivr_callbacks")),
        sa.UniqueConstraint("call_id", name=op.f("uq_ivr_callbacks_call_id")),
    )
    op.create_index(
        op.f("ix_ivr_callbacks_state_created_at"), "ivr_callbacks", ["state", "created_at"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_ivr_callbacks_state_created_at"), table_name="ivr_callbacks")
    op.drop_table("ivr_callbacks")
    op.drop_index(op.f("ix_ivr_calls_caller_started_at"), table_name="ivr_calls")
    op.drop_index(op.f("ix_ivr_calls_started_at"), table_name="ivr_calls")
    op.drop_table("ivr_calls")
