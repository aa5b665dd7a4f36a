"""The routing operations as one Redis Functions library.

Each operation is a package file (``lua/<name>.lua``, with a header listing KEYS, ARGV and
returns); ``lua/_lib.lua`` holds the code they share. They are assembled into one library,
loaded once with FUNCTION LOAD, so the shared code is compiled and set up once instead of on
every call. The names carry a hash of the source, so nodes running different versions
during a rolling upgrade never call each other's code. Every key is still passed in (FCALL
with keys), so the library works on Redis Cluster with the site's hash tag.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib import resources

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from contactd.storage.autopipe import auto_pipeline

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
    # --- monitor: supervisor actions ---
    "move_contact",
    "force_offer",
    "agent_drain",
)


def _read(name: str) -> str:
    return (resources.files("contactd.routing") / "lua" / f"{name}.lua").read_text("utf-8")


@cache
def library() -> tuple[str, str]:
    """(library source, version) for FUNCTION LOAD."""
    parts = [_read("_lib")] + [_read(n) for n in SCRIPT_NAMES]
    version = hashlib.sha1("\n".join(parts).encode()).hexdigest()[:10]
    body = [f"#!lua name=contactd_routing_{version}", parts[0]]
    for name, src in zip(SCRIPT_NAMES, parts[1:], strict=True):
        body.append(f"-- ==== {name}.lua ====")
        body.append(
            f"redis.register_function('{function_name(name, version)}', "
            f"function(KEYS, ARGV)\nbegin(KEYS, ARGV)\n{src}\nend)"
        )
    return "\n".join(body), version


def function_name(name: str, version: str) -> str:
    return f"cd_routing_{version}_{name}"


class RoutingScripts:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self.pipe = auto_pipeline(redis)  # concurrent operations share round trips
        self.source, self.version = library()
        self._loaded = False

    async def load(self) -> None:
        await self.redis.function_load(self.source, replace=True)
        self._loaded = True

    async def call(self, name: str, keys: list[str], args: list[str | int]) -> str:
        if not self._loaded:
            await self.load()
        fname = function_name(name, self.version)
        try:
            reply = await self.pipe.execute("FCALL", fname, len(keys), *keys, *args)
        except ResponseError as exc:
            if "Function not found" not in str(exc):
                raise
            await self.load()  # Redis lost it (restart without persistence, failover)
            reply = await self.pipe.execute("FCALL", fname, len(keys), *keys, *args)
        return reply.decode() if isinstance(reply, bytes) else str(reply)
