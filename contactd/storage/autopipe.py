"""Auto-pipelining: Redis commands issued while a pipeline is on the wire go out together
in the next one — one write and one read for the lot instead of one each (what ioredis
calls auto-pipelining). A burst of webhooks or chat events then costs a few round trips;
a lone command goes out on the next turn of the event loop.

One pipeline is on the wire at a time, on a connection of the auto-pipeline's own (made
by the client's pool, with its settings), with one deadline for the whole round trip
rather than redis-py's timer per reply. Replies come as Redis sends them (no response
callbacks: ``SET`` answers ``b"OK"``, ``GET`` bytes). A connection that fails or times out
is closed, never reused half-read; the next pipeline opens a new one.

Each caller gets its own replies, or its own error raised; a caller's commands (``many``)
run in order, next to each other, in one pipeline (not atomically: use a script for that).
Everyone using one Redis client shares one :class:`AutoPipeline` (``auto_pipeline``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import weakref
from collections.abc import Sequence
from typing import Any

from redis._parsers import hiredis as _hiredis_parsers
from redis._parsers.hiredis import _AsyncHiredisParser
from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

Command = tuple[Any, ...]
_MAX_COMMANDS = 512  # per pipeline; the rest go in the next one
_DEFAULT_TIMEOUT_S = 5.0  # a round trip's deadline when the client sets none
# what redis-py's hiredis reader answers while a reply is incomplete (False before 7.x)
_NOT_ENOUGH: Any = getattr(_hiredis_parsers, "NOT_ENOUGH_DATA", False)
_Pending = tuple[Sequence[Command], "asyncio.Future[list[Any]]"]


class AutoPipeline:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._pending: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None
        self._conn: AbstractConnection | None = None
        timeout = redis.connection_pool.connection_kwargs.get("socket_timeout")
        self.timeout_s = float(timeout) if timeout else _DEFAULT_TIMEOUT_S

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
            self._fail(batch + self._pending, error)
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
        commands = [command for item, _ in batch for command in item]
        try:
            async with asyncio.timeout(self.timeout_s):
                replies = await self._round_trip(commands)
        except Exception as exc:
            await self._drop()  # maybe half-read: never reused
            error: Exception = exc
            if isinstance(exc, TimeoutError):
                error = RedisTimeoutError(f"no answer from Redis in {self.timeout_s} s")
            elif isinstance(exc, OSError):
                error = RedisConnectionError(f"Redis connection failed: {exc}")
            self._fail(batch, error)  # every caller of the batch hears of it
            return
        except BaseException:  # cancelled: shutdown
            await self._drop()
            self._fail(batch, RedisConnectionError("stopping"))
            raise
        at = 0
        for item, done in batch:
            n = len(item)
            if not done.done():
                done.set_result(replies[at : at + n])
            at += n

    @staticmethod
    def _fail(batch: list[_Pending], error: Exception) -> None:
        for _, done in batch:
            if not done.done():
                done.set_exception(error)

    async def _round_trip(self, commands: list[Command]) -> list[Any]:
        conn = self._conn
        if conn is None:
            conn = self._conn = self.redis.connection_pool.make_connection()  # type: ignore[no-untyped-call]
            # no timer of redis-py's own per write (a task each): the round trip has its
            # deadline (``_send``)
            conn.socket_timeout = None
        if not conn.is_connected:
            await conn.connect()
        await conn.send_packed_command(conn.pack_commands(commands), check_health=False)
        parser = getattr(conn, "_parser", None)
        if isinstance(parser, _AsyncHiredisParser) and parser._reader is not None:
            return await _read_replies(parser, len(commands))
        replies: list[Any] = []
        for _ in commands:
            try:  # (math.inf: no timer per reply; the round trip has its deadline)
                replies.append(await conn.read_response(timeout=math.inf))
            except ResponseError as exc:  # this command's error, read in full
                replies.append(exc)
        return replies

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                await conn.disconnect(nowait=True)
            except Exception:  # already broken
                log.debug("closing a failed auto-pipeline connection", exc_info=True)

    async def aclose(self) -> None:
        """Close the connection (pending commands are sent first)."""
        while self._flusher is not None:
            await asyncio.wait([self._flusher])
        await self._drop()


async def _read_replies(parser: _AsyncHiredisParser, n: int) -> list[Any]:
    """``n`` replies straight off hiredis's reader, reading the socket only when it runs
    dry: what ``read_response`` does per reply (its checks, a call chain, a task-switch
    guard) once per round trip instead. Errors come as their exception (hiredis makes
    them with redis-py's ``parse_error``: ``NoScriptError``...), as the slow path gives."""
    reader = parser._reader
    assert reader is not None
    replies: list[Any] = []
    while len(replies) < n:
        reply = reader.gets()
        if reply is _NOT_ENOUGH:
            await parser.read_from_socket()  # (raises when the connection closed)
            continue
        replies.append(reply)
    return replies


_PIPES: weakref.WeakKeyDictionary[Redis, AutoPipeline] = weakref.WeakKeyDictionary()


def auto_pipeline(redis: Redis) -> AutoPipeline:
    """The one auto-pipeline of this Redis client."""
    pipe = _PIPES.get(redis)
    if pipe is None:
        pipe = _PIPES[redis] = AutoPipeline(redis)
    return pipe


async def close_auto_pipeline(redis: Redis) -> None:
    """Close the auto-pipeline of ``redis`` (if it has one), before the client itself."""
    pipe = _PIPES.pop(redis, None)
    if pipe is not None:
        await pipe.aclose()
