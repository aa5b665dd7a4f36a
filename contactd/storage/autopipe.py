"""Auto-pipelining: Redis commands issued while a pipeline is on the wire go out together
in the next one — one connection checkout, one write and one read for the lot instead of
one each (what ioredis calls auto-pipelining). A burst of webhooks or chat events then
costs a few round trips; a lone command goes out on the next turn of the event loop.

Each caller gets its own replies, or its own error raised; a caller's commands (``many``)
run in order, next to each other, in one pipeline (not atomically: use a script for that).
Everyone using one Redis client shares one :class:`AutoPipeline` (``auto_pipeline``).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError

log = logging.getLogger(__name__)

Command = tuple[Any, ...]
_MAX_COMMANDS = 512  # per pipeline; the rest go in the next one
_Pending = tuple[Sequence[Command], "asyncio.Future[list[Any]]"]


class AutoPipeline:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._pending: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None

    async def execute(self, *args: Any) -> Any:
        """One command's reply (raises its error)."""
        return (await self.many([args]))[0]

    async def many(self, commands: Sequence[Command]) -> list[Any]:
        """The replies of ``commands``, run in order; the first error among them is raised
        (after all of them ran)."""
        done: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._pending.append((commands, done))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush(), name="redis-auto-pipeline")
        replies = await done
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return replies

    async def evalsha(self, script: AsyncScript, keys: Sequence[Any], args: Sequence[Any]) -> Any:
        """Run a registered script by its SHA, loading it once when Redis does not have it
        (a restart without persistence, a failover)."""
        assert script.sha is not None and script.sha != ""
        command = ("EVALSHA", script.sha, len(keys), *keys, *args)
        try:
            return await self.execute(*command)
        except NoScriptError:
            await self.redis.script_load(script.script)
            return await self.execute(*command)

    async def _flush(self) -> None:
        batch: list[_Pending] = []
        try:
            while self._pending:
                batch, self._pending = self._take_slice()
                await self._send(batch)
        except BaseException as exc:  # cancelled (shutdown): nobody is left waiting forever
            error = exc if isinstance(exc, Exception) else RedisConnectionError("stopping")
            for _, done in batch + self._pending:
                if not done.done():
                    done.set_exception(error)
            self._pending = []
            raise
        finally:
            self._flusher = None

    def _take_slice(self) -> tuple[list[_Pending], list[_Pending]]:
        """The next pipeline's callers (at least one; at most ``_MAX_COMMANDS`` commands
        unless one caller has more), and the rest."""
        size = 0
        for i, (commands, _) in enumerate(self._pending):
            size += len(commands)
            if size > _MAX_COMMANDS and i > 0:
                return self._pending[:i], self._pending[i:]
        return self._pending, []

    async def _send(self, batch: list[_Pending]) -> None:
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for commands, _ in batch:
                    for command in commands:
                        pipe.execute_command(*command)
                replies = await pipe.execute(raise_on_error=False)
        except Exception as exc:  # the connection failed: every caller of the batch hears it
            for _, done in batch:
                if not done.done():
                    done.set_exception(exc)
            return
        at = 0
        for commands, done in batch:
            n = len(commands)
            if not done.done():
                done.set_result(replies[at : at + n])
            at += n


_PIPES: weakref.WeakKeyDictionary[Redis, AutoPipeline] = weakref.WeakKeyDictionary()


def auto_pipeline(redis: Redis) -> AutoPipeline:
    """The one auto-pipeline of this Redis client."""
    pipe = _PIPES.get(redis)
    if pipe is None:
        pipe = _PIPES[redis] = AutoPipeline(redis)
    return pipe
