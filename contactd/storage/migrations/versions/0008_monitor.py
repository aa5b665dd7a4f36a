"""Supervisor monitor: persisted routing events for reports.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Reserved: the tables arrive with the feature (one revision per context keeps
    parallel work from forking the chain)."""


def downgrade() -> None:
    pass
