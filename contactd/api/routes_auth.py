"""Sign in and out; staff accounts, API keys and the audit log for admins."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from aiohttp import web
from pydantic import Field

from contactd.api.edge import audit_context, bearer, json_model, paging, principal, read_body
from contactd.api.registry import api
from contactd.api.schemas import Body, LoginBody, MeOut, TokenOut
from contactd.auth.models import ApiKeyId, StaffId
from contactd.errors import ErrorCode
from contactd.keys import AUDIT, AUTH, SETTINGS

E = ErrorCode
AUTH_ERRORS = (E.unauthenticated, E.token_expired, E.forbidden)


@api.route(
    "POST",
    "/api/v1/auth/login",
    summary="Sign in with username and password",
    tag="auth",
    body=LoginBody,
    response=TokenOut,
    auth=False,
    errors=(E.invalid_credentials, E.user_disabled, E.validation_failed),
    example={"username": "agent1", "password": "********"},
)
async def login(request: web.Request) -> web.Response:
    body = await read_body(request, LoginBody)
    token, expires, staff = await request.app[AUTH].login(
        body.username, body.password, ctx=audit_context(request, None)
    )
    perms = sorted(request.app[SETTINGS].permissions_of(staff.role))
    return json_model(
        TokenOut(
            token=token,
            expires_at=expires,
            username=staff.username,
            role=staff.role,
            permissions=perms,
        )
    )


@api.route(
    "POST",
    "/api/v1/auth/logout",
    summary="Revoke this token",
    tag="auth",
    errors=AUTH_ERRORS,
    status=204,
)
async def logout(request: web.Request) -> web.Response:
    who = await principal(request)
    await request.app[AUTH].logout(bearer(request), ctx=audit_context(request, who))
    return web.Response(status=204)


@api.route(
    "GET",
    "/api/v1/auth/me",
    summary="Who am I, and what may I do",
    tag="auth",
    response=MeOut,
    errors=AUTH_ERRORS,
)
async def me(request: web.Request) -> web.Response:
    who = await principal(request)
    return json_model(
        MeOut(
            kind=who.kind,
            id=who.id,
            name=who.name,
            role=who.role,
            permissions=sorted(who.permissions),
        )
    )


class StaffBody(Body):
    username: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{1,31}$")
    password: str = Field(min_length=8, max_length=256)
    role: str = Field(min_length=1, max_length=32)
    display_name: str | None = Field(default=None, max_length=120)


class StaffOut(Body):
    id: int
    username: str
    display_name: str
    role: str
    active: bool
    created_at: datetime


class StaffActiveBody(Body):
    active: bool


class ApiKeyBody(Body):
    name: str = Field(min_length=1, max_length=80)
    scopes: list[str] = Field(min_length=1, max_length=50)


class ApiKeyOut(Body):
    id: str
    name: str
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None = None
    secret: str | None = Field(default=None, description="shown once, at creation")


class AuditOut(Body):
    id: int
    at: datetime
    actor_type: Literal["staff", "api_key", "system"]
    actor_id: str | None
    actor_name: str | None
    action: str
    target_type: str
    target_id: str
    before: dict[str, object] | list[object] | None
    after: dict[str, object] | list[object] | None
    ip: str | None


def _staff_out(s: object) -> StaffOut:
    return StaffOut.model_validate(s, from_attributes=True)


@api.route(
    "POST",
    "/api/v1/staff",
    summary="Create a staff account",
    tag="admin",
    body=StaffBody,
    response=StaffOut,
    status=201,
    permission="staff.manage",
    errors=(*AUTH_ERRORS, E.user_exists, E.unknown_role, E.validation_failed),
)
async def staff_create(request: web.Request) -> web.Response:
    who = await principal(request, "staff.manage")
    body = await read_body(request, StaffBody)
    staff = await request.app[AUTH].create_user(
        body.username,
        body.password,
        body.role,
        body.display_name,
        ctx=audit_context(request, who),
    )
    return json_model(_staff_out(staff), status=201)


@api.route(
    "GET",
    "/api/v1/staff",
    summary="List staff accounts",
    tag="admin",
    response=StaffOut,
    response_list=True,
    permission="staff.manage",
    errors=AUTH_ERRORS,
)
async def staff_list(request: web.Request) -> web.Response:
    await principal(request, "staff.manage")
    return json_model([_staff_out(s) for s in await request.app[AUTH].list_users()])


@api.route(
    "PUT",
    "/api/v1/staff/{staff_id}/active",
    summary="Enable or disable an account",
    tag="admin",
    body=StaffActiveBody,
    response=StaffOut,
    permission="staff.manage",
    errors=(*AUTH_ERRORS, E.not_found),
)
async def staff_active(request: web.Request) -> web.Response:
    who = await principal(request, "staff.manage")
    body = await read_body(request, StaffActiveBody)
    try:
        staff_id = int(request.match_info["staff_id"])
    except ValueError:
        staff_id = -1
    staff = await request.app[AUTH].set_active(
        StaffId(staff_id), body.active, ctx=audit_context(request, who)
    )
    return json_model(_staff_out(staff))


@api.route(
    "POST",
    "/api/v1/api-keys",
    summary="Create an API key for another system",
    tag="admin",
    body=ApiKeyBody,
    response=ApiKeyOut,
    status=201,
    permission="apikeys.manage",
    errors=(*AUTH_ERRORS, E.validation_failed),
)
async def api_key_create(request: web.Request) -> web.Response:
    who = await principal(request, "apikeys.manage")
    body = await read_body(request, ApiKeyBody)
    info, secret = await request.app[AUTH].create_api_key(
        body.name, body.scopes, who.staff_id, ctx=audit_context(request, who)
    )
    out = ApiKeyOut.model_validate(info, from_attributes=True).model_copy(update={"secret": secret})
    return json_model(out, status=201)


@api.route(
    "GET",
    "/api/v1/api-keys",
    summary="List API keys (secrets are never shown again)",
    tag="admin",
    response=ApiKeyOut,
    response_list=True,
    permission="apikeys.manage",
    errors=AUTH_ERRORS,
)
async def api_key_list(request: web.Request) -> web.Response:
    await principal(request, "apikeys.manage")
    keys = await request.app[AUTH].list_api_keys()
    return json_model([ApiKeyOut.model_validate(k, from_attributes=True) for k in keys])


@api.route(
    "DELETE",
    "/api/v1/api-keys/{key_id}",
    summary="Revoke an API key",
    tag="admin",
    status=204,
    permission="apikeys.manage",
    errors=(*AUTH_ERRORS, E.not_found),
)
async def api_key_revoke(request: web.Request) -> web.Response:
    who = await principal(request, "apikeys.manage")
    await request.app[AUTH].revoke_api_key(
        ApiKeyId(request.match_info["key_id"]), ctx=audit_context(request, who)
    )
    return web.Response(status=204)


@api.route(
    "GET",
    "/api/v1/audit",
    summary="Read the audit log (newest first)",
    tag="admin",
    response=AuditOut,
    response_list=True,
    permission="audit.view",
    errors=AUTH_ERRORS,
    query={
        "actor_id": "string",
        "target_type": "string",
        "target_id": "string",
        "action": "string",
        "limit": "integer",
        "offset": "integer",
    },
)
async def audit_list(request: web.Request) -> web.Response:
    await principal(request, "audit.view")
    q = request.query
    limit, offset = paging(request, 100, 1000)
    entries = await request.app[AUDIT].query(
        actor_id=q.get("actor_id"),
        target_type=q.get("target_type"),
        target_id=q.get("target_id"),
        action=q.get("action"),
        limit=limit,
        offset=offset,
    )
    return json_model([AuditOut.model_validate(e, from_attributes=True) for e in entries])
