"""What a supervisor may see and act on: the queues and teams their role allows
(``monitor.scopes`` in the config; a role not listed there sees everything)."""

from __future__ import annotations

from dataclasses import dataclass

from contactd.auth.models import Principal
from contactd.errors import ContactdError, ErrorCode
from contactd.settings import Settings


@dataclass(frozen=True)
class Scope:
    queues: frozenset[str] | None  # None = every queue
    agents: frozenset[str] | None  # None = every agent

    def sees_queue(self, queue_id: str) -> bool:
        return self.queues is None or queue_id in self.queues

    def sees_agent(self, agent_id: str) -> bool:
        return self.agents is None or agent_id in self.agents

    def check_queue(self, queue_id: str) -> None:
        if not self.sees_queue(queue_id):
            raise ContactdError(ErrorCode.out_of_scope, f"queue {queue_id!r} is not yours to run")

    def check_agent(self, agent_id: str) -> None:
        if not self.sees_agent(agent_id):
            raise ContactdError(ErrorCode.out_of_scope, f"agent {agent_id!r} is not in your teams")


EVERYTHING = Scope(None, None)


def scope_of_role(settings: Settings, role: str | None) -> Scope:
    rule = settings.monitor.scopes.get(role or "")
    if rule is None:
        return EVERYTHING
    queues = None if "*" in rule.queues else frozenset(rule.queues)
    agents = None
    if "*" not in rule.teams:
        agents = frozenset(a for t in rule.teams for a in settings.monitor.teams.get(t, []))
    return Scope(queues, agents)


def scope_of(settings: Settings, who: Principal) -> Scope:
    """API keys (systems) are not scoped by team: their scopes are their permissions."""
    return scope_of_role(settings, who.role) if who.kind == "staff" else EVERYTHING


def team_of(settings: Settings, agent_id: str) -> str | None:
    return next((t for t, ids in settings.monitor.teams.items() if agent_id in ids), None)
