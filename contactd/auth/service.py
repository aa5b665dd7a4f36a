"""Staff accounts, sign-in tokens and API keys.

Tokens and API key secrets are shown once and stored only as SHA-256 hashes (they are
long random strings, so a fast hash is enough); passwords are argon2id. Every change is
written to the audit log in the same transaction. Nobody grants what they do not hold:
when the acting principal is known, a new user's role and a new key's scopes must be
within its own permissions.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contactd.auth import repository as repo
from contactd.auth.audit import AuditLog
from contactd.auth.models import ApiKeyId, ApiKeyInfo, AuditContext, Principal, Staff, StaffId
from contactd.auth.passwords import Passwords
from contactd.clock import Clock, to_datetime
from contactd.errors import ContactdError, ErrorCode
from contactd.settings import ALL_PERMISSIONS, Settings
from contactd.storage.db import write_transaction

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,31}$")
MIN_PASSWORD_LEN = 8
MAX_PASSWORD_LEN = 1024
MAX_NAME_LEN = 120
MAX_CREDENTIAL_LEN = 512
API_KEY_PREFIX = "ck_"
KEY_ID_PREFIX = "ak_"
KEY_ID_HEX_BYTES = 8
LAST_USED_EVERY_MS = 60_000
BAD_CREDENTIALS = "wrong username or password"
NO_CONTEXT = AuditContext()


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _normalize(username: str) -> str:
    return username.strip().lower()


def _key_id_of(secret: str) -> str | None:
    """The key id inside ``ck_ak_<hex>_<random>``; None when the secret is malformed."""
    if not secret.startswith(API_KEY_PREFIX + KEY_ID_PREFIX) or len(secret) > MAX_CREDENTIAL_LEN:
        return None
    parts = secret[len(API_KEY_PREFIX) :].split("_", 2)
    if len(parts) != 3 or not parts[2]:
        return None
    return f"{parts[0]}_{parts[1]}"


def _invalid(message: str) -> ContactdError:
    return ContactdError(ErrorCode.validation_failed, message)


def _check_new_user(username: str, password: str, display_name: str) -> None:
    if not USERNAME_RE.fullmatch(username):
        raise _invalid(
            "username must be 2 to 32 characters: lowercase letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    if not MIN_PASSWORD_LEN <= len(password) <= MAX_PASSWORD_LEN:
        raise _invalid(f"password must be {MIN_PASSWORD_LEN} to {MAX_PASSWORD_LEN} characters")
    if len(display_name) > MAX_NAME_LEN:
        raise _invalid(f"display name must be at most {MAX_NAME_LEN} characters")


class AuthService:
    """Accounts and credentials. Mutating methods take an ``AuditContext`` (who acts, from
    which address, in which request); without one the system is the actor."""

    def __init__(
        self,
        engine: AsyncEngine,
        settings: Settings,
        clock: Clock,
        *,
        audit: AuditLog | None = None,
        passwords: Passwords | None = None,
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._clock = clock
        self._audit = audit or AuditLog(engine, clock)
        self._passwords = passwords or Passwords()

    def staff_principal(self, user: Staff) -> Principal:
        return Principal(
            kind="staff",
            id=str(user.id),
            name=user.username,
            role=user.role,
            permissions=self._settings.permissions_of(user.role),
        )

    def _check_grant(self, ctx: AuditContext, wanted: Iterable[str]) -> None:
        missing = sorted(set(wanted) - ctx.actor.permissions) if ctx.actor else []
        if missing:
            raise ContactdError(
                ErrorCode.forbidden,
                f"you cannot grant permissions you do not hold: {', '.join(missing)}",
            )

    async def _record(
        self,
        conn: AsyncConnection | None,
        ctx: AuditContext,
        action: str,
        target: tuple[str, str],
        *,
        actor: Principal | None = None,
        before: Mapping[str, Any] | None = None,
        after: Mapping[str, Any] | None = None,
    ) -> None:
        await self._audit.record(
            actor or ctx.actor,
            action,
            *target,
            before=before,
            after=after,
            ip=ctx.ip,
            request_id=ctx.request_id,
            conn=conn,
        )

    # staff --------------------------------------------------------------------------
    async def create_user(
        self,
        username: str,
        password: str,
        role: str,
        display_name: str | None = None,
        *,
        ctx: AuditContext = NO_CONTEXT,
    ) -> Staff:
        username = _normalize(username)
        display = (display_name or "").strip() or username
        _check_new_user(username, password, display)
        if role not in self._settings.roles:
            raise ContactdError(ErrorCode.unknown_role, f"unknown role {role!r}")
        self._check_grant(ctx, self._settings.permissions_of(role))
        password_hash = await self._passwords.hash(password)
        now = self._clock.now_ms()
        try:
            async with write_transaction(self._engine) as conn:
                user = await repo.insert_staff(
                    conn,
                    username=username,
                    display_name=display,
                    password_hash=password_hash,
                    role=role,
                    now_ms=now,
                )
                after = user.model_dump(include={"username", "display_name", "role", "active"})
                await self._record(conn, ctx, "staff.created", ("staff", str(user.id)), after=after)
        except IntegrityError as exc:
            raise ContactdError(ErrorCode.user_exists, f"user {username!r} already exists") from exc
        return user

    async def get_user(self, staff_id: StaffId) -> Staff:
        async with self._engine.connect() as conn:
            row = await repo.staff_row(conn, staff_id)
        if row is None:
            raise ContactdError(ErrorCode.not_found, f"no user with id {staff_id}")
        return repo.to_staff(row)

    async def get_user_by_username(self, username: str) -> Staff:
        async with self._engine.connect() as conn:
            row = await repo.staff_row_by_username(conn, _normalize(username))
        if row is None:
            raise ContactdError(ErrorCode.not_found, f"no user named {username!r}")
        return repo.to_staff(row)

    async def list_users(self) -> list[Staff]:
        async with self._engine.connect() as conn:
            return await repo.all_staff(conn)

    async def set_active(
        self, staff_id: StaffId, active: bool, *, ctx: AuditContext = NO_CONTEXT
    ) -> Staff:
        """Enable or disable an account; disabling also ends all its sessions.
        Setting the state it already has changes nothing and records nothing."""
        now = self._clock.now_ms()
        async with write_transaction(self._engine) as conn:
            row = await repo.staff_row(conn, staff_id)
            if row is None:
                raise ContactdError(ErrorCode.not_found, f"no user with id {staff_id}")
            user = repo.to_staff(row)
            if user.active == active:
                return user
            await repo.update_staff(conn, staff_id, now, active=active)
            if not active:
                await repo.revoke_tokens_of(conn, staff_id, now)
            await self._record(
                conn,
                ctx,
                "staff.activated" if active else "staff.deactivated",
                ("staff", str(staff_id)),
                before={"active": user.active},
                after={"active": active},
            )
        return user.model_copy(update={"active": active})

    # sessions -----------------------------------------------------------------------
    async def login(
        self, username: str, password: str, *, ctx: AuditContext = NO_CONTEXT
    ) -> tuple[str, datetime, Staff]:
        """Check the password and open a session: (token, expires at, user). An unknown
        user and a wrong password get the same answer, after the same work."""
        username = _normalize(username)
        password = password[: MAX_PASSWORD_LEN + 1]  # an over-long one never matches
        row = None
        if USERNAME_RE.fullmatch(username):
            async with self._engine.connect() as conn:
                row = await repo.staff_row_by_username(conn, username)
        if row is None:
            await self._passwords.burn(password)
            ok = False
        else:
            ok = len(password) <= MAX_PASSWORD_LEN and await self._passwords.verify(
                row["password_hash"], password
            )
        if row is None or not ok:
            reason = "unknown_user" if row is None else "wrong_password"
            await self._login_failed(ctx, username, reason)
            raise ContactdError(ErrorCode.invalid_credentials, BAD_CREDENTIALS)
        user = repo.to_staff(row)
        if not user.active:
            await self._login_failed(ctx, username, "disabled")
            raise ContactdError(ErrorCode.user_disabled, "this account is disabled")
        new_hash = None
        if self._passwords.needs_rehash(row["password_hash"]):
            new_hash = await self._passwords.hash(password)
        token = secrets.token_urlsafe(32)
        now = self._clock.now_ms()
        expires = now + self._settings.token_ttl_s * 1000
        async with write_transaction(self._engine) as conn:
            if new_hash is not None:
                await repo.update_staff(conn, user.id, now, password_hash=new_hash)
            await repo.insert_token(conn, _sha256(token), user.id, now, expires)
            await self._record(
                conn,
                ctx,
                "auth.logged_in",
                ("staff", str(user.id)),
                actor=self.staff_principal(user),
            )
        return token, to_datetime(expires), user

    async def _login_failed(self, ctx: AuditContext, username: str, reason: str) -> None:
        failed = ctx.model_copy(update={"actor": None})
        await self._record(
            None, failed, "auth.login_failed", ("staff", username), after={"reason": reason}
        )

    async def resolve_token(self, token: str) -> Principal:
        """Who holds this session token; refused when unknown, revoked or expired."""
        if not token or len(token) > MAX_CREDENTIAL_LEN:
            raise ContactdError(ErrorCode.unauthenticated, "sign in first")
        async with self._engine.connect() as conn:
            row = await repo.token_row(conn, _sha256(token))
        if row is None or row["revoked_at"] is not None:
            raise ContactdError(ErrorCode.unauthenticated, "sign in first")
        if self._clock.now_ms() >= row["expires_at"]:
            raise ContactdError(ErrorCode.token_expired, "your session has expired; sign in again")
        user = repo.to_staff(row)
        if not user.active:
            raise ContactdError(ErrorCode.user_disabled, "this account is disabled")
        return self.staff_principal(user)

    async def logout(self, token: str, *, ctx: AuditContext = NO_CONTEXT) -> None:
        """End the session of ``token``; nothing happens if it is already over."""
        if not token or len(token) > MAX_CREDENTIAL_LEN:
            return
        async with write_transaction(self._engine) as conn:
            staff_id = await repo.revoke_token(conn, _sha256(token), self._clock.now_ms())
            row = None if staff_id is None else await repo.staff_row(conn, staff_id)
            if row is None:
                return
            user = repo.to_staff(row)
            await self._record(
                conn,
                ctx,
                "auth.logged_out",
                ("staff", str(user.id)),
                actor=self.staff_principal(user),
            )

    # API keys -----------------------------------------------------------------------
    async def create_api_key(
        self,
        name: str,
        scopes: Iterable[str],
        created_by: StaffId | None,
        *,
        ctx: AuditContext = NO_CONTEXT,
    ) -> tuple[ApiKeyInfo, str]:
        """Make a key; the returned secret ``ck_<key id>_<random>`` is never shown again."""
        name = name.strip()
        if not 1 <= len(name) <= MAX_NAME_LEN:
            raise _invalid(f"key name must be 1 to {MAX_NAME_LEN} characters")
        wanted = sorted(set(scopes))
        unknown = [s for s in wanted if s not in ALL_PERMISSIONS]
        if unknown:
            raise _invalid(f"unknown scopes: {', '.join(unknown)}")
        if not wanted:
            raise _invalid("an API key needs at least one scope")
        self._check_grant(ctx, wanted)
        key_id = ApiKeyId(KEY_ID_PREFIX + secrets.token_hex(KEY_ID_HEX_BYTES))
        secret = f"{API_KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        now = self._clock.now_ms()
        info = ApiKeyInfo(
            id=key_id,
            name=name,
            scopes=tuple(wanted),
            created_by=created_by,
            created_at=to_datetime(now),
        )
        async with write_transaction(self._engine) as conn:
            await repo.insert_api_key(
                conn,
                key_id=key_id,
                name=name,
                secret_hash=_sha256(secret),
                scopes=wanted,
                created_by=created_by,
                now_ms=now,
            )
            after = {"name": name, "scopes": wanted, "created_by": created_by}
            await self._record(conn, ctx, "api_key.created", ("api_key", key_id), after=after)
        return info, secret

    async def resolve_api_key(self, secret: str) -> Principal:
        """Who holds this API key; refused when unknown, wrong or revoked."""
        key_id = _key_id_of(secret)
        if key_id is None:
            raise ContactdError(ErrorCode.unauthenticated, "invalid API key")
        async with self._engine.connect() as conn:
            row = await repo.api_key_row(conn, key_id)
        if row is None or not hmac.compare_digest(row["secret_hash"], _sha256(secret)):
            raise ContactdError(ErrorCode.unauthenticated, "invalid API key")
        if row["revoked_at"] is not None:
            raise ContactdError(ErrorCode.unauthenticated, "this API key has been revoked")
        now = self._clock.now_ms()
        last_used = row["last_used_at"]
        if last_used is None or now - last_used >= LAST_USED_EVERY_MS:
            async with write_transaction(self._engine) as conn:
                await repo.touch_api_key(conn, key_id, now, LAST_USED_EVERY_MS)
        return Principal(
            kind="api_key", id=key_id, name=row["name"], permissions=frozenset(row["scopes"])
        )

    async def authenticate(self, credential: str) -> Principal:
        """Resolve a bearer credential: an API key (``ck_...``) or a session token."""
        if credential.startswith(API_KEY_PREFIX):
            return await self.resolve_api_key(credential)
        return await self.resolve_token(credential)

    async def revoke_api_key(
        self, key_id: ApiKeyId, *, ctx: AuditContext = NO_CONTEXT
    ) -> ApiKeyInfo:
        """Revoke a key at once; revoking a revoked key changes nothing."""
        now = self._clock.now_ms()
        async with write_transaction(self._engine) as conn:
            row = await repo.api_key_row(conn, key_id)
            if row is None:
                raise ContactdError(ErrorCode.not_found, f"no API key {key_id!r}")
            info = repo.to_key_info(row)
            if not info.active:
                return info
            await repo.revoke_api_key(conn, key_id, now)
            await self._record(
                conn,
                ctx,
                "api_key.revoked",
                ("api_key", key_id),
                before={"revoked": False},
                after={"revoked": True},
            )
        return info.model_copy(update={"revoked_at": to_datetime(now)})

    async def list_api_keys(self) -> list[ApiKeyInfo]:
        async with self._engine.connect() as conn:
            return await repo.all_api_keys(conn)
