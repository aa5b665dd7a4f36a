"""Accounts, sessions, API keys and the audit log, through AuthService and AuditLog.

Runs on SQLite always and on PostgreSQL when CONTACTD_TEST_POSTGRES_URL is set (each test
in a schema of its own, dropped afterwards)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from sqlalchemy.ext.asyncio import AsyncEngine

from contactd.auth.audit import AuditLog
from contactd.auth.models import AuditContext, Principal, StaffId
from contactd.auth.passwords import Passwords
from contactd.auth.service import AuthService
from contactd.clock import ManualClock, to_datetime
from contactd.errors import ContactdError, ErrorCode
from contactd.settings import ALL_PERMISSIONS, Settings

TTL_S = 3600
PASSWORD = "correct horse battery"


def cheap_passwords() -> Passwords:
    return Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def audit(db: AsyncEngine, clock: ManualClock) -> AuditLog:
    return AuditLog(db, clock)


@pytest.fixture
def auth(db: AsyncEngine, clock: ManualClock, audit: AuditLog) -> AuthService:
    settings = Settings(token_ttl_s=TTL_S)
    return AuthService(db, settings, clock, audit=audit, passwords=cheap_passwords())


async def refused(code: ErrorCode, awaitable: object) -> ContactdError:
    with pytest.raises(ContactdError) as info:
        await awaitable  # type: ignore[misc]
    assert info.value.code == code, info.value.message
    return info.value


# accounts and sessions --------------------------------------------------------------
async def test_login_gives_a_token_that_resolves_to_the_role_permissions(
    auth: AuthService, clock: ManualClock
) -> None:
    alice = await auth.create_user("Alice", PASSWORD, "team_lead", "Alice Liu")
    assert (alice.username, alice.display_name, alice.active) == ("alice", "Alice Liu", True)

    token, expires, user = await auth.login("alice", PASSWORD)
    assert user == alice
    assert expires == to_datetime(clock.now_ms()) + timedelta(seconds=TTL_S)

    who = await auth.resolve_token(token)
    assert (who.kind, who.id, who.name, who.role) == ("staff", str(alice.id), "alice", "team_lead")
    assert who.permissions == Settings().permissions_of("team_lead")
    assert who.can("monitor.view") and not who.can("staff.manage")
    assert await auth.authenticate(token) == who


async def test_wrong_password_and_unknown_user_get_the_same_answer(auth: AuthService) -> None:
    await auth.create_user("bob", PASSWORD, "agent")
    wrong = await refused(ErrorCode.invalid_credentials, auth.login("bob", "not the password"))
    unknown = await refused(ErrorCode.invalid_credentials, auth.login("nobody", PASSWORD))
    invalid = await refused(ErrorCode.invalid_credentials, auth.login("!!", PASSWORD))
    assert wrong.message == unknown.message == invalid.message
    assert wrong.status == 401


async def test_new_users_are_validated(auth: AuthService) -> None:
    await refused(ErrorCode.validation_failed, auth.create_user("a", PASSWORD, "agent"))
    await refused(ErrorCode.validation_failed, auth.create_user("has space", PASSWORD, "agent"))
    await refused(ErrorCode.validation_failed, auth.create_user("carol", "short", "agent"))
    await refused(ErrorCode.unknown_role, auth.create_user("carol", PASSWORD, "emperor"))
    await auth.create_user("carol", PASSWORD, "agent")
    await refused(ErrorCode.user_exists, auth.create_user("CAROL", PASSWORD, "agent"))
    assert [u.username for u in await auth.list_users()] == ["carol"]


async def test_lookups(auth: AuthService) -> None:
    dave = await auth.create_user("dave", PASSWORD, "agent")
    assert await auth.get_user(dave.id) == dave
    assert await auth.get_user_by_username("Dave") == dave
    await refused(ErrorCode.not_found, auth.get_user(StaffId(dave.id + 1000)))
    await refused(ErrorCode.not_found, auth.get_user_by_username("erin"))


async def test_token_expires_after_its_ttl(auth: AuthService, clock: ManualClock) -> None:
    await auth.create_user("erin", PASSWORD, "agent")
    token, _, _ = await auth.login("erin", PASSWORD)
    clock.advance(TTL_S - 1)
    assert (await auth.resolve_token(token)).name == "erin"
    clock.advance(1)
    await refused(ErrorCode.token_expired, auth.resolve_token(token))


async def test_logged_out_and_unknown_tokens_are_refused(auth: AuthService) -> None:
    await auth.create_user("frank", PASSWORD, "agent")
    token, _, _ = await auth.login("frank", PASSWORD)
    other, _, _ = await auth.login("frank", PASSWORD)
    await auth.logout(token)
    await auth.logout(token)  # a second logout is harmless
    await refused(ErrorCode.unauthenticated, auth.resolve_token(token))
    await refused(ErrorCode.unauthenticated, auth.resolve_token("made-up"))
    await refused(ErrorCode.unauthenticated, auth.resolve_token(""))
    assert (await auth.resolve_token(other)).name == "frank"  # other sessions live on


async def test_disabling_a_user_ends_sessions_and_blocks_login(auth: AuthService) -> None:
    gina = await auth.create_user("gina", PASSWORD, "agent")
    token, _, _ = await auth.login("gina", PASSWORD)
    assert (await auth.set_active(gina.id, False)).active is False
    await refused(ErrorCode.unauthenticated, auth.resolve_token(token))
    await refused(ErrorCode.user_disabled, auth.login("gina", PASSWORD))
    await refused(ErrorCode.invalid_credentials, auth.login("gina", "wrong password"))
    assert (await auth.set_active(gina.id, True)).active is True
    token, _, _ = await auth.login("gina", PASSWORD)
    assert (await auth.resolve_token(token)).name == "gina"
    await refused(ErrorCode.not_found, auth.set_active(StaffId(gina.id + 1000), False))


async def test_password_is_rehashed_when_the_cost_changes(
    db: AsyncEngine, auth: AuthService, clock: ManualClock
) -> None:
    await auth.create_user("hank", PASSWORD, "agent")

    async def stored_hash() -> str:
        async with db.connect() as conn:
            query = sa.text("SELECT password_hash FROM staff WHERE username = 'hank'")
            return str((await conn.execute(query)).scalar_one())

    old = await stored_hash()
    assert old.startswith("$argon2id$")
    stronger = Passwords(PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1))
    upgraded = AuthService(db, Settings(token_ttl_s=TTL_S), clock, passwords=stronger)
    await upgraded.login("hank", PASSWORD)
    new = await stored_hash()
    assert new != old and "m=2048,t=2" in new
    await upgraded.login("hank", PASSWORD)
    assert await stored_hash() == new


# API keys ---------------------------------------------------------------------------
async def test_api_key_round_trip_and_revocation(auth: AuthService, clock: ManualClock) -> None:
    admin = await auth.create_user("root", PASSWORD, "admin")
    info, secret = await auth.create_api_key(
        " crm bridge ", ["contacts.create", "queues.view"], admin.id
    )
    assert secret.startswith(f"ck_{info.id}_") and info.id.startswith("ak_")
    assert (info.name, info.scopes, info.created_by) == (
        "crm bridge",
        ("contacts.create", "queues.view"),
        admin.id,
    )

    who = await auth.resolve_api_key(secret)
    assert (who.kind, who.id, who.name, who.role) == ("api_key", info.id, "crm bridge", None)
    assert who.permissions == {"contacts.create", "queues.view"}
    assert who.can("contacts.create") and not who.can("staff.manage")
    assert await auth.authenticate(secret) == who

    tampered = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    await refused(ErrorCode.unauthenticated, auth.resolve_api_key(tampered))
    await refused(ErrorCode.unauthenticated, auth.resolve_api_key("ck_ak_nothing_here"))
    await refused(ErrorCode.unauthenticated, auth.resolve_api_key("garbage"))

    revoked = await auth.revoke_api_key(info.id)
    assert revoked.revoked_at == to_datetime(clock.now_ms()) and not revoked.active
    await refused(ErrorCode.unauthenticated, auth.resolve_api_key(secret))
    assert (await auth.revoke_api_key(info.id)).revoked_at == revoked.revoked_at
    [listed] = await auth.list_api_keys()
    assert listed.id == info.id and listed.revoked_at is not None
    await refused(ErrorCode.not_found, auth.revoke_api_key(info.id.replace("ak_", "ak_0")))


async def test_api_key_scopes_are_checked(auth: AuthService) -> None:
    await refused(ErrorCode.validation_failed, auth.create_api_key("k", ["launch.missiles"], None))
    await refused(ErrorCode.validation_failed, auth.create_api_key("k", [], None))
    await refused(ErrorCode.validation_failed, auth.create_api_key("  ", ["queues.view"], None))
    info, _ = await auth.create_api_key("all", sorted(ALL_PERMISSIONS), None)
    assert set(info.scopes) == ALL_PERMISSIONS and info.created_by is None


async def test_last_used_is_written_at_most_once_a_minute(
    auth: AuthService, clock: ManualClock
) -> None:
    info, secret = await auth.create_api_key("poller", ["queues.view"], None)
    assert info.last_used_at is None
    first = to_datetime(clock.now_ms())
    await auth.resolve_api_key(secret)
    clock.advance(30)
    await auth.resolve_api_key(secret)
    assert (await auth.list_api_keys())[0].last_used_at == first
    clock.advance(31)
    await auth.resolve_api_key(secret)
    assert (await auth.list_api_keys())[0].last_used_at == to_datetime(clock.now_ms())


async def test_nobody_grants_what_they_do_not_hold(auth: AuthService) -> None:
    await auth.create_user("lead", PASSWORD, "team_lead")
    token, _, _ = await auth.login("lead", PASSWORD)
    ctx = AuditContext(actor=await auth.resolve_token(token))
    await refused(ErrorCode.forbidden, auth.create_user("boss", PASSWORD, "admin", ctx=ctx))
    await refused(ErrorCode.forbidden, auth.create_api_key("k", ["pii.view"], None, ctx=ctx))
    assert (await auth.create_user("newbie", PASSWORD, "agent", ctx=ctx)).role == "agent"


# audit ------------------------------------------------------------------------------
async def test_changes_are_audited_with_actor_and_before_after(
    auth: AuthService, audit: AuditLog, clock: ManualClock
) -> None:
    root = await auth.create_user("root", PASSWORD, "admin")
    token, _, _ = await auth.login("root", PASSWORD, ctx=AuditContext(ip="192.0.2.7"))
    me = await auth.resolve_token(token)
    ctx = AuditContext(actor=me, ip="192.0.2.7", request_id="req-1")
    clock.advance(1)
    ivy = await auth.create_user("ivy", PASSWORD, "agent", ctx=ctx)
    clock.advance(1)
    await auth.set_active(ivy.id, False, ctx=ctx)
    await auth.set_active(ivy.id, False, ctx=ctx)  # no change, no entry
    clock.advance(1)
    key, _ = await auth.create_api_key("bot", ["queues.view"], root.id, ctx=ctx)
    await auth.revoke_api_key(key.id, ctx=ctx)
    await refused(ErrorCode.invalid_credentials, auth.login("ghost", PASSWORD))
    await auth.logout(token)

    entries = await audit.query(limit=20)
    assert [e.action for e in entries] == [
        "auth.logged_out",
        "auth.login_failed",
        "api_key.revoked",
        "api_key.created",
        "staff.deactivated",
        "staff.created",
        "auth.logged_in",
        "staff.created",
    ]
    logged_out, failed, revoked, created_key, deactivated, created, logged_in, first = entries
    assert (first.actor_type, first.actor_id, first.target_id) == ("system", None, str(root.id))
    assert "password" not in str(first.after)
    assert (logged_in.actor_type, logged_in.actor_name, logged_in.ip) == (
        "staff",
        "root",
        "192.0.2.7",
    )
    assert (created.actor_id, created.request_id) == (me.id, "req-1")
    assert created.after == {
        "username": "ivy",
        "display_name": "ivy",
        "role": "agent",
        "active": True,
    }
    assert (deactivated.target_type, deactivated.target_id) == ("staff", str(ivy.id))
    assert (deactivated.before, deactivated.after) == ({"active": True}, {"active": False})
    assert created_key.after == {"name": "bot", "scopes": ["queues.view"], "created_by": root.id}
    assert (revoked.before, revoked.after) == ({"revoked": False}, {"revoked": True})
    assert (failed.actor_type, failed.target_id, failed.after) == (
        "system",
        "ghost",
        {"reason": "unknown_user"},
    )
    assert logged_out.actor_id == str(root.id)
    assert logged_out.at > first.at

    about_ivy = await audit.query(target_type="staff", target_id=str(ivy.id))
    assert [e.action for e in about_ivy] == ["staff.deactivated", "staff.created"]
    by_root = await audit.query(actor_id=me.id, action="staff.created")
    assert [e.target_id for e in by_root] == [str(ivy.id)]
    window = await audit.query(since=created.at, until=deactivated.at)
    assert [e.action for e in window] == ["staff.created"]
    assert [e.action for e in await audit.query(limit=2, offset=1)] == [
        "auth.login_failed",
        "api_key.revoked",
    ]
    await refused(ErrorCode.validation_failed, audit.query(limit=0))


async def test_audit_log_refuses_update_and_delete(db: AsyncEngine, audit: AuditLog) -> None:
    actor = Principal(kind="api_key", id="ak_1", name="ci", permissions=frozenset())
    await audit.record(actor, "queue.paused", "queue", "sales", before={"paused": False})
    for statement in (
        "UPDATE audit_log SET action = 'queue.resumed'",
        "DELETE FROM audit_log",
    ):
        with pytest.raises(sa.exc.DBAPIError, match="append-only"):
            async with db.begin() as conn:
                await conn.execute(sa.text(statement))
    [entry] = await audit.query()
    assert (entry.actor_type, entry.action, entry.before) == (
        "api_key",
        "queue.paused",
        {"paused": False},
    )


async def test_concurrent_changes_all_succeed(auth: AuthService) -> None:
    users = [await auth.create_user(f"user{i}", PASSWORD, "agent") for i in range(4)]
    flips = [auth.set_active(u.id, bool(n % 2)) for n in range(6) for u in users]
    keys = [auth.create_api_key(f"k{n}", ["queues.view"], None) for n in range(6)]
    await asyncio.gather(*flips, *keys)
    assert len(await auth.list_api_keys()) == 6
