"""A supervisor joins a chat: silently (sees every message live, nobody is told) or visibly
(customer and agent see "a supervisor joined" and the supervisor may write). Permission
``monitor.join``, the monitor's scope, and every join written to the audit log."""

from __future__ import annotations

import secrets
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from contactd.auth.audit import AuditLog
from contactd.auth.models import AuditContext, Principal
from contactd.errors import ContactdError, ErrorCode
from contactd.monitor.actions import require
from contactd.monitor.scope import scope_of
from contactd.sessions.models import (
    CLIENT_MSG_ID,
    Guard,
    Message,
    NewMessage,
    Sender,
    SessionRecord,
)
from contactd.sessions.service import SessionService
from contactd.settings import Settings

JoinMode = Literal["silent", "visible"]
_OPEN = ("queued", "offered", "active")


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JoinPayload(_Payload):
    session_id: str = Field(max_length=32)
    mode: JoinMode = "silent"


class LeavePayload(_Payload):
    session_id: str = Field(max_length=32)


class SayPayload(_Payload):
    session_id: str = Field(max_length=32)
    client_msg_id: str = Field(pattern=CLIENT_MSG_ID)
    text: str = Field(min_length=1, max_length=5000)


class SessionWatch:
    def __init__(self, settings: Settings, sessions: SessionService, audit: AuditLog) -> None:
        self.settings = settings
        self.sessions = sessions
        self.audit = audit

    async def _session(self, who: Principal, session_id: str) -> SessionRecord:
        require(who, "monitor.join")
        try:
            record = await self.sessions.get(session_id)
        except ContactdError as exc:
            raise ContactdError(ErrorCode.session_not_found, f"no session {session_id}") from exc
        scope = scope_of(self.settings, who)
        if not scope.sees_queue(record.queue_id) or (
            record.agent_id is not None and not scope.sees_agent(record.agent_id)
        ):  # outside the scope a session does not exist
            raise ContactdError(ErrorCode.session_not_found, f"no session {session_id}")
        return record

    async def join(
        self, ctx: AuditContext, session_id: str, mode: JoinMode
    ) -> tuple[SessionRecord, list[Message]]:
        who = _actor(ctx)
        record = await self._session(who, session_id)
        if record.state not in _OPEN:
            raise ContactdError(ErrorCode.invalid_state, f"session {session_id} has ended")
        if mode == "visible":
            await self.sessions.system_message(
                record,
                f"sup.join.{secrets.token_hex(6)}",
                f"主管 {who.name} 加入了会话 · supervisor {who.name} joined",
            )
        await self.audit.record(
            who,
            "monitor.session_joined",
            "session",
            session_id,
            after={"mode": mode, "agent_id": record.agent_id},
            ip=ctx.ip,
            request_id=ctx.request_id,
        )
        return record, await self.sessions.messages(session_id)

    async def leave(self, ctx: AuditContext, session_id: str, mode: JoinMode) -> None:
        who = _actor(ctx)
        record = await self._session(who, session_id)
        if mode == "visible" and record.state in _OPEN:
            await self.sessions.system_message(
                record,
                f"sup.leave.{secrets.token_hex(6)}",
                f"主管 {who.name} 离开了会话 · supervisor {who.name} left",
            )

    async def say(self, ctx: AuditContext, req: SayPayload) -> Message:
        """A visibly joined supervisor writes to the customer (as staff, named)."""
        who = _actor(ctx)
        record = await self._session(who, req.session_id)
        if record.state != "active":
            raise ContactdError(ErrorCode.invalid_state, "write once the chat is active")
        msg = NewMessage(
            session_id=record.id,
            client_msg_id=req.client_msg_id,
            sender=Sender(type="agent", id=who.name, name=f"{who.name} (主管 supervisor)"),
            kind="text",
            text=req.text,
        )
        return await self.sessions.post(msg, guard=Guard(active=True))


def _actor(ctx: AuditContext) -> Principal:
    if ctx.actor is None:
        raise ContactdError(ErrorCode.unauthenticated, "sign in first")
    return ctx.actor
