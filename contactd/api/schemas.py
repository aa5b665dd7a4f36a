"""Request and response bodies of the REST API (every one forbids unknown fields)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from contactd.routing.models import ID_PATTERN
from contactd.settings import QUEUE_ID_PATTERN


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class LoginBody(Body):
    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)


class TokenOut(Body):
    token: str
    expires_at: datetime
    username: str
    role: str
    permissions: list[str]


class MeOut(Body):
    kind: Literal["staff", "api_key"]
    id: str
    name: str
    role: str | None
    permissions: list[str]


class Capacity(Body):
    chat: int | None = Field(default=None, ge=0, le=50)
    voice: int | None = Field(default=None, ge=0, le=1)


class AgentLoginBody(Body):
    queues: list[str] | None = Field(
        default=None, description="queue ids; all configured queues when omitted", max_length=200
    )
    capacity: Capacity = Capacity()
    state: Literal["available", "away"] = "available"
    reason: str = Field(default="", max_length=64)


class AgentStateBody(Body):
    state: Literal["available", "away", "offline"]
    reason: str = Field(default="", max_length=64)


class HeartbeatOut(Body):
    deadline: int = Field(description="ms since the epoch; send the next heartbeat before")


class EnqueueBody(Body):
    queue_id: str = Field(pattern=QUEUE_ID_PATTERN)
    priority: int = Field(default=0, ge=0, le=9, description="9 = most urgent (e.g. VIP)")
    contact_id: str | None = Field(
        default=None, pattern=ID_PATTERN, description="your id: a retry with it is harmless"
    )
    target_agent_id: str | None = Field(default=None, pattern=ID_PATTERN)
    customer: dict[str, Any] | None = Field(
        default=None, description="small JSON kept with the contact (customer id, entry point)"
    )


class CancelBody(Body):
    reason: Literal["customer_left", "abandoned", "duplicate", "supervisor"] = "customer_left"


class EndBody(Body):
    reason: Literal["resolved", "customer_left", "timeout", "transferred", "agent_ended"] = (
        "resolved"
    )
    disposition: str | None = Field(default=None, max_length=64)


class WrapOut(Body):
    done: bool
