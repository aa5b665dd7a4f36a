"""Bot knowledge base and bot conversations.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Reserved: the tables arrive with the feature (one revision per context keeps
    parallel work from forking the chain)."""


def downgrade() -> None:
    pass
