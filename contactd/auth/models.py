"""Accounts, principals, API keys and audit entries (no I/O)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, NewType

from pydantic import BaseModel, ConfigDict

StaffId = NewType("StaffId", int)
ApiKeyId = NewType("ApiKeyId", str)
ActorType = Literal["staff", "api_key", "system"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Staff(_Model):
    """A staff account as shown to callers (never with its password hash)."""

    id: StaffId
    username: str
    display_name: str
    role: str
    active: bool
    created_at: datetime


class Principal(_Model):
    """Who is calling: a signed-in staff member or an API key, with what it may do."""

    kind: Literal["staff", "api_key"]
    id: str
    name: str
    role: str | None = None
    permissions: frozenset[str] = frozenset()

    def can(self, perm: str) -> bool:
        return perm in self.permissions

    @property
    def staff_id(self) -> StaffId | None:
        return StaffId(int(self.id)) if self.kind == "staff" else None


class ApiKeyInfo(_Model):
    """An API key without its secret."""

    id: ApiKeyId
    name: str
    scopes: tuple[str, ...]
    created_by: StaffId | None
    created_at: datetime
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class AuditContext(_Model):
    """Who is acting and from where; the edges build one per request.

    ``actor`` None means the system itself (a CLI command, a background task, or a
    caller not signed in yet, as at login).
    """

    actor: Principal | None = None
    ip: str | None = None
    request_id: str | None = None


class AuditEntry(_Model):
    id: int
    at: datetime
    actor_type: ActorType
    actor_id: str | None
    actor_name: str | None
    action: str
    target_type: str
    target_id: str
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    ip: str | None = None
    request_id: str | None = None
