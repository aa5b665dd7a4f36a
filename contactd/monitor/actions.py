"""Supervisor actions: each checks the permission and the supervisor's scope, makes one
atomic routing call and writes the audit log (who, what, before and after)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from contactd.auth.audit import AuditLog
from contactd.auth.models import AuditContext, Principal
from contactd.errors import ContactdError, ErrorCode
from contactd.monitor.scope import Scope, scope_of
from contactd.routing.models import ID_PATTERN, AgentView, ContactView
from contactd.routing.service import RoutingEngine
from contactd.settings import QUEUE_ID_PATTERN, Settings

ACT = "monitor.act"


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SetStateBody(_Body):
    state: Literal["available", "away", "offline"]
    reason: str = Field(default="supervisor", max_length=64)


class MoveBody(_Body):
    queue_id: str = Field(pattern=QUEUE_ID_PATTERN)


class ForceOfferBody(_Body):
    agent_id: str = Field(pattern=ID_PATTERN)


def require(who: Principal, permission: str) -> None:
    if not who.can(permission):
        raise ContactdError(ErrorCode.forbidden, f"this needs the permission {permission!r}")


class SupervisorActions:
    def __init__(self, settings: Settings, routing: RoutingEngine, audit: AuditLog) -> None:
        self.settings = settings
        self.routing = routing
        self.audit = audit

    def _scope(self, ctx: AuditContext) -> tuple[Principal, Scope]:
        who = ctx.actor
        if who is None:
            raise ContactdError(ErrorCode.unauthenticated, "sign in first")
        require(who, ACT)
        return who, scope_of(self.settings, who)

    async def _record(
        self, ctx: AuditContext, action: str, kind: str, target: str, before: Any, after: Any
    ) -> None:
        await self.audit.record(
            ctx.actor,
            action,
            kind,
            target,
            before=before,
            after=after,
            ip=ctx.ip,
            request_id=ctx.request_id,
        )

    async def _waiting_contact(self, contact_id: str, scope: Scope) -> ContactView:
        contact = await self.routing.contact(contact_id)
        if not scope.sees_queue(contact.queue_id):
            # outside the scope a contact does not exist (its id says nothing either)
            raise ContactdError(ErrorCode.contact_not_found, f"no contact {contact_id!r}")
        return contact

    async def set_agent_state(
        self, ctx: AuditContext, agent_id: str, body: SetStateBody
    ) -> AgentView:
        _, scope = self._scope(ctx)
        scope.check_agent(agent_id)
        before = await self.routing.agent(agent_id)
        after = await self.routing.set_state(agent_id, body.state, body.reason)
        await self._record(
            ctx,
            "monitor.agent_state_set",
            "agent",
            agent_id,
            {"state": before.state, "reason": before.reason},
            {"state": after.state, "reason": after.reason},
        )
        return after

    async def drain(self, ctx: AuditContext, agent_id: str) -> AgentView:
        _, scope = self._scope(ctx)
        scope.check_agent(agent_id)
        before = await self.routing.agent(agent_id)
        after = await self.routing.drain(agent_id)
        await self._record(
            ctx,
            "monitor.agent_drained",
            "agent",
            agent_id,
            {"state": before.state, "slots": len(before.slots)},
            {"state": after.state, "draining": after.draining},
        )
        return after

    async def move(self, ctx: AuditContext, contact_id: str, body: MoveBody) -> ContactView:
        _, scope = self._scope(ctx)
        before = await self._waiting_contact(contact_id, scope)
        scope.check_queue(body.queue_id)
        after = await self.routing.move_contact(contact_id, body.queue_id)
        await self._record(
            ctx,
            "monitor.contact_moved",
            "contact",
            contact_id,
            {"queue_id": before.queue_id, "state": before.state},
            {"queue_id": after.queue_id, "state": after.state},
        )
        return after

    async def force_offer(
        self, ctx: AuditContext, contact_id: str, body: ForceOfferBody
    ) -> ContactView:
        _, scope = self._scope(ctx)
        before = await self._waiting_contact(contact_id, scope)
        scope.check_agent(body.agent_id)
        after = await self.routing.force_offer(contact_id, body.agent_id)
        await self._record(
            ctx,
            "monitor.offer_forced",
            "contact",
            contact_id,
            {"queue_id": before.queue_id, "state": before.state},
            {"state": after.state, "agent_id": after.agent_id, "offer_id": after.offer_id},
        )
        return after
