"""SQL for staff, sign-in tokens and API keys. Each function runs on the caller's
connection, so the service decides what shares a transaction. No policy here."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from contactd.auth.models import ApiKeyId, ApiKeyInfo, Staff, StaffId
from contactd.clock import to_datetime
from contactd.storage.tables import api_keys, auth_tokens, staff


def _ms_to_datetime(value: int | None) -> datetime | None:
    return None if value is None else to_datetime(value)


def to_staff(row: RowMapping) -> Staff:
    return Staff(
        id=StaffId(row["id"]),
        username=row["username"],
        display_name=row["display_name"],
        role=row["role"],
        active=bool(row["active"]),
        created_at=to_datetime(row["created_at"]),
    )


def to_key_info(row: RowMapping) -> ApiKeyInfo:
    return ApiKeyInfo(
        id=ApiKeyId(row["id"]),
        name=row["name"],
        scopes=tuple(row["scopes"]),
        created_by=row["created_by"],
        created_at=to_datetime(row["created_at"]),
        revoked_at=_ms_to_datetime(row["revoked_at"]),
        last_used_at=_ms_to_datetime(row["last_used_at"]),
    )


# staff ------------------------------------------------------------------------------
async def staff_row(conn: AsyncConnection, staff_id: int) -> RowMapping | None:
    result = await conn.execute(sa.select(staff).where(staff.c.id == staff_id))
    return result.mappings().first()


async def staff_row_by_username(conn: AsyncConnection, username: str) -> RowMapping | None:
    result = await conn.execute(sa.select(staff).where(staff.c.username == username))
    return result.mappings().first()


async def all_staff(conn: AsyncConnection) -> list[Staff]:
    result = await conn.execute(sa.select(staff).order_by(staff.c.id))
    return [to_staff(row) for row in result.mappings()]


async def insert_staff(
    conn: AsyncConnection,
    *,
    username: str,
    display_name: str,
    password_hash: str,
    role: str,
    now_ms: int,
) -> Staff:
    """The new account. Raises ``IntegrityError`` when the username is taken."""
    result = await conn.execute(
        sa.insert(staff)
        .values(
            username=username,
            display_name=display_name,
            password_hash=password_hash,
            role=role,
            active=True,
            created_at=now_ms,
            updated_at=now_ms,
        )
        .returning(*staff.c)
    )
    return to_staff(result.mappings().one())


async def update_staff(conn: AsyncConnection, staff_id: int, now_ms: int, **values: object) -> None:
    await conn.execute(
        sa.update(staff).where(staff.c.id == staff_id).values(updated_at=now_ms, **values)
    )


# sign-in tokens ---------------------------------------------------------------------
async def insert_token(
    conn: AsyncConnection, token_hash: str, staff_id: int, now_ms: int, expires_ms: int
) -> None:
    await conn.execute(
        sa.insert(auth_tokens).values(
            token_hash=token_hash, staff_id=staff_id, created_at=now_ms, expires_at=expires_ms
        )
    )


async def token_row(conn: AsyncConnection, token_hash: str) -> RowMapping | None:
    """The token's ``expires_at`` and ``revoked_at`` with every column of its staff row."""
    stmt = (
        sa.select(auth_tokens.c.expires_at, auth_tokens.c.revoked_at, staff)
        .join(staff, staff.c.id == auth_tokens.c.staff_id)
        .where(auth_tokens.c.token_hash == token_hash)
    )
    return (await conn.execute(stmt)).mappings().first()


async def revoke_token(conn: AsyncConnection, token_hash: str, now_ms: int) -> StaffId | None:
    """Revoke one live token; its staff id, or None when it was unknown or already over."""
    result = await conn.execute(
        sa.update(auth_tokens)
        .where(auth_tokens.c.token_hash == token_hash, auth_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now_ms)
        .returning(auth_tokens.c.staff_id)
    )
    staff_id = result.scalar_one_or_none()
    return None if staff_id is None else StaffId(staff_id)


async def revoke_tokens_of(conn: AsyncConnection, staff_id: int, now_ms: int) -> None:
    await conn.execute(
        sa.update(auth_tokens)
        .where(auth_tokens.c.staff_id == staff_id, auth_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now_ms)
    )


# API keys ---------------------------------------------------------------------------
async def insert_api_key(
    conn: AsyncConnection,
    *,
    key_id: str,
    name: str,
    secret_hash: str,
    scopes: Sequence[str],
    created_by: int | None,
    now_ms: int,
) -> None:
    await conn.execute(
        sa.insert(api_keys).values(
            id=key_id,
            name=name,
            secret_hash=secret_hash,
            scopes=list(scopes),
            created_by=created_by,
            created_at=now_ms,
        )
    )


async def api_key_row(conn: AsyncConnection, key_id: str) -> RowMapping | None:
    result = await conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id))
    return result.mappings().first()


async def touch_api_key(conn: AsyncConnection, key_id: str, now_ms: int, every_ms: int) -> None:
    """Set ``last_used_at`` unless it was set less than ``every_ms`` ago."""
    await conn.execute(
        sa.update(api_keys)
        .where(
            api_keys.c.id == key_id,
            sa.or_(
                api_keys.c.last_used_at.is_(None),
                api_keys.c.last_used_at <= now_ms - every_ms,
            ),
        )
        .values(last_used_at=now_ms)
    )


async def revoke_api_key(conn: AsyncConnection, key_id: str, now_ms: int) -> None:
    await conn.execute(sa.update(api_keys).where(api_keys.c.id == key_id).values(revoked_at=now_ms))


async def all_api_keys(conn: AsyncConnection) -> list[ApiKeyInfo]:
    result = await conn.execute(sa.select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id))
    return [to_key_info(row) for row in result.mappings()]
