"""SQL tables (SQLAlchemy Core). One code path for SQLite and PostgreSQL.

Every timestamp is an integer of milliseconds since the epoch (UTC), the same unit as
``Clock.now_ms()``; models turn them into tz-aware datetimes. JSON columns are ``JSON``
on SQLite and ``JSONB`` on PostgreSQL. The schema itself is created by the alembic
migrations in ``contactd/storage/migrations``; ``tests/test_migrations.py`` checks
that the two agree.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

Millis = sa.BigInteger
Json = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
# SQLite only auto-increments an INTEGER PRIMARY KEY, so BIGINT ids need a variant
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

staff = sa.Table(
    "staff",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(32), nullable=False, unique=True),
    sa.Column("display_name", sa.String(120), nullable=False),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("role", sa.String(64), nullable=False),
    sa.Column("active", sa.Boolean, nullable=False),
    sa.Column("created_at", Millis, nullable=False),
    sa.Column("updated_at", Millis, nullable=False),
)

auth_tokens = sa.Table(
    "auth_tokens",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column(
        "staff_id",
        sa.Integer,
        sa.ForeignKey("staff.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("created_at", Millis, nullable=False),
    sa.Column("expires_at", Millis, nullable=False),
    sa.Column("revoked_at", Millis, nullable=True),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(120), nullable=False),
    sa.Column("secret_hash", sa.String(64), nullable=False),
    sa.Column("scopes", Json, nullable=False),
    sa.Column(
        "created_by", sa.Integer, sa.ForeignKey("staff.id", ondelete="SET NULL"), nullable=True
    ),
    sa.Column("created_at", Millis, nullable=False),
    sa.Column("revoked_at", Millis, nullable=True),
    sa.Column("last_used_at", Millis, nullable=True),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("at", Millis, nullable=False, index=True),
    sa.Column("actor_type", sa.String(16), nullable=False),
    sa.Column("actor_id", sa.String(64), nullable=True, index=True),
    sa.Column("actor_name", sa.String(120), nullable=True),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("target_type", sa.String(32), nullable=False),
    sa.Column("target_id", sa.String(128), nullable=False),
    sa.Column("before", Json, nullable=True),
    sa.Column("after", Json, nullable=True),
    sa.Column("ip", sa.String(64), nullable=True),
    sa.Column("request_id", sa.String(128), nullable=True),
    sa.Index(None, "target_type", "target_id"),
)
