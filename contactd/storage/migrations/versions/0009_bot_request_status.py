"""Bot self-service requests by status: the pass that retries the after-sales tickets of
refund requests still ``ticket_pending`` reads them by status every minute.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        op.f("ix_bot_requests_status_created_at"), "bot_requests", ["status", "created_at"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_bot_requests_status_created_at"), table_name="bot_requests")
