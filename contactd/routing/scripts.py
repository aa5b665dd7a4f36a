"""The routing Lua scripts: package files, each prefixed with ``_lib.lua`` and loaded once
per connection pool (EVALSHA, reloaded automatically after a SCRIPT FLUSH or failover)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

SCRIPT_NAMES = (
    "enqueue",
    "cancel",
    "accept",
    "decline",
    "end_contact",
    "complete_wrap",
    "agent_login",
    "agent_state",
    "heartbeat",
    "agent_lost",
    "overflow",
    "fallback",
    "reoffer",
    "dispatch",
    "purge",
)


def script_source(name: str) -> str:
    lua = resources.files("contactd.routing") / "lua"
    lib = (lua / "_lib.lua").read_text(encoding="utf-8")
    body = (lua / f"{name}.lua").read_text(encoding="utf-8")
    return f"{lib}\n-- ==== {name}.lua ====\n{body}"


@dataclass(frozen=True)
class RoutingScripts:
    by_name: dict[str, AsyncScript]

    @classmethod
    def register(cls, redis: Redis) -> RoutingScripts:
        return cls({n: redis.register_script(script_source(n)) for n in SCRIPT_NAMES})

    def __getitem__(self, name: str) -> AsyncScript:
        return self.by_name[name]
