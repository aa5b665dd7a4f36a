"""Admin API of the case module's configuration: the compensation policy (scenes, review
rules, approval flows, calculator, reviewer limits). Versioned like the orders."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from contactd.api.edge import audit_context, json_model, principal, read_body
from contactd.api.registry import api
from contactd.cases.compensation_config import CompensationPolicy
from contactd.errors import ErrorCode
from contactd.keys import COMPENSATION

E = ErrorCode
AUTH_ERRORS = (E.unauthenticated, E.token_expired, E.forbidden)


class PolicyOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(description="0 = as in the configuration file")
    policy: CompensationPolicy


class PolicyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=0, description="the version you edited (optimistic lock)")
    policy: CompensationPolicy


@api.route(
    "GET",
    "/api/v1/case-config/compensation",
    summary="The compensation policy in force",
    tag="case-config",
    response=PolicyOut,
    permission="compensation.view",
    errors=AUTH_ERRORS,
)
async def policy_get(request: web.Request) -> web.Response:
    await principal(request, "compensation.view")
    policy, version = await request.app[COMPENSATION].service.policy()
    return json_model(PolicyOut(version=version, policy=policy))


@api.route(
    "PUT",
    "/api/v1/case-config/compensation",
    summary="Replace the compensation policy (applies to orders from now on)",
    tag="case-config",
    body=PolicyBody,
    response=PolicyOut,
    permission="compensation.configure",
    errors=(*AUTH_ERRORS, E.version_conflict),
)
async def policy_put(request: web.Request) -> web.Response:
    who = await principal(request, "compensation.configure")
    body = await read_body(request, PolicyBody)
    policy, version = await request.app[COMPENSATION].service.set_policy(
        body.policy, body.version, audit_context(request, who)
    )
    return json_model(PolicyOut(version=version, policy=policy))
