"""Bot self-service requests a person dealt with: who, when and what they did (the
``handled`` status of a request the bot recorded or could not open a ticket for).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("bot_requests") as batch:
        batch.add_column(sa.Column("handled_by", sa.String(120), nullable=True))
        batch.add_column(sa.Column("handled_at", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("handled_note", sa.String(1000), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("bot_requests") as batch:
        batch.drop_column("handled_note")
        batch.drop_column("handled_at")
        batch.drop_column("handled_by")
