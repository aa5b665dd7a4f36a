"""The Redis connection, and the private redis-server contactd runs when none is configured.

With no ``redis_url``, contactd starts ``redis-server`` on a unix socket under the data
directory (append-only file on, so a restart loses nothing), supervises it (restarts it if
it dies) and stops it on shutdown. A second contactd process on the same data directory
finds the socket answering and shares that server instead of starting another.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import hiredis
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.connection import (
    AbstractConnection,
    Connection,
    SSLConnection,
    UnixDomainSocketConnection,
)
from redis.driver_info import DriverInfo
from redis.exceptions import DataError
from redis.utils import get_lib_version

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "contactd needs Redis. Either set CONTACTD_REDIS_URL (or redis_url in the config file) "
    "to a running Redis >= 6.2, or install the server so contactd can start its own: "
    "`sudo apt-get install redis-server` (Debian/Ubuntu), `brew install redis` (macOS)."
)


class RedisUnavailable(Exception):
    pass


POOL_SIZE = 64


_SPECIAL = frozenset({bool, bytearray, memoryview})


class _HiredisPacking(AbstractConnection):
    """Packs each command with hiredis's C packer, as redis-py's synchronous client does by
    default; its asyncio connections pack argument by argument in Python (about 15 µs
    for a routing FCALL's 21 arguments against 1.5 µs). Same bytes for the same arguments
    (str as UTF-8, int and float by their repr); anything else is a DataError, as before."""

    def pack_command(self, *args: Any) -> list[bytes]:
        first = args[0]
        if (" " if isinstance(first, str) else b" ") in first:  # e.g. "SCRIPT LOAD"
            args = tuple(first.split()) + args[1:]
        if not _SPECIAL.isdisjoint(map(type, args)):  # (C speed: every command comes here)
            for a in args:
                if isinstance(a, bool):
                    raise DataError(f"Invalid input of type: 'bool'. Convert {a!r} first.")
            args = tuple(bytes(a) if isinstance(a, bytearray | memoryview) else a for a in args)
        try:
            return [hiredis.pack_command(args)]
        except TypeError as exc:
            raise DataError(str(exc)) from exc

    def pack_commands(self, commands: Iterable[Iterable[Any]]) -> list[bytes]:
        """A pipeline's commands as one buffer: each packs to one piece here, so
        redis-py's loop sorting pieces into buffers by size has nothing to do but cost."""
        return [b"".join([self.pack_command(*cmd)[0] for cmd in commands])]


class _TcpConnection(_HiredisPacking, Connection):
    pass


class _UnixConnection(_HiredisPacking, UnixDomainSocketConnection):
    pass


class _SslConnection(_HiredisPacking, SSLConnection):
    pass


_PACKING: dict[type[AbstractConnection], type[AbstractConnection]] = {
    Connection: _TcpConnection,
    UnixDomainSocketConnection: _UnixConnection,
    SSLConnection: _SslConnection,
}


@functools.cache
def _driver_info() -> DriverInfo:
    """What each connection tells Redis it is (``CLIENT SETINFO``), looked up once: redis-py
    otherwise reads its installed version from the package metadata for every new
    connection, a millisecond or more of the event loop each time a burst grows the pool."""
    return DriverInfo(name="redis-py", lib_version=get_lib_version())  # type: ignore[no-untyped-call]


def blocking_pool(url: str, size: int = POOL_SIZE) -> BlockingConnectionPool:
    """A pool that makes a burst wait for a free connection instead of failing (the default
    pool raises "Too many connections" once it is exhausted, losing the operation). Its
    connections pack commands with hiredis (see ``_HiredisPacking``)."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=size,
        timeout=20,
        health_check_interval=30,
        driver_info=_driver_info(),
    )
    pool.connection_class = _PACKING.get(pool.connection_class, pool.connection_class)
    return pool


def connect(url: str) -> Redis:
    return Redis(connection_pool=blocking_pool(url))


async def reachable(url: str, within_s: float = 1.0) -> bool:
    client = connect(url)
    try:
        async with asyncio.timeout(within_s):
            return bool(await client.ping())
    except Exception:
        return False
    finally:
        await client.aclose()


class EmbeddedRedis:
    """A supervised private redis-server under ``data_dir/redis``."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = (data_dir / "redis").resolve()
        self.socket = self.dir / "redis.sock"
        self.url = f"unix://{self.socket}"
        self._proc: asyncio.subprocess.Process | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self) -> str:
        self.dir.mkdir(parents=True, exist_ok=True)
        if self.socket.exists() and await reachable(self.url):
            log.info("using the embedded Redis already running at %s", self.socket)
            return self.url
        exe = shutil.which("redis-server")
        if exe is None:
            raise RedisUnavailable(INSTALL_HINT)
        await self._spawn(exe)
        self._supervisor = asyncio.create_task(self._supervise(exe), name="embedded-redis")
        log.info(
            "no redis_url configured: started a private redis-server (pid %s) on %s",
            self._proc.pid if self._proc else "?",
            self.socket,
        )
        return self.url

    async def _spawn(self, exe: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()
        self._proc = await asyncio.create_subprocess_exec(
            exe,
            "--port",
            "0",
            "--unixsocket",
            str(self.socket),
            "--unixsocketperm",
            "700",
            "--dir",
            str(self.dir),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
            "--logfile",
            str(self.dir / "redis.log"),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        for _ in range(250):
            if self._proc.returncode is not None:
                raise RedisUnavailable(
                    f"redis-server exited with code {self._proc.returncode}; see "
                    f"{self.dir / 'redis.log'}"
                )
            if self.socket.exists() and await reachable(self.url, within_s=0.2):
                return
            await asyncio.sleep(0.02)
        self._proc.kill()
        await self._proc.wait()
        raise RedisUnavailable(
            f"redis-server did not answer within 5 s on {self.socket}; see {self.dir / 'redis.log'}"
        )

    async def _supervise(self, exe: str) -> None:
        while not self._stopping and self._proc is not None:
            code = await self._proc.wait()
            if self._stopping:
                return
            log.error("embedded redis-server exited with code %s; restarting it", code)
            await asyncio.sleep(0.5)
            try:
                await self._spawn(exe)
            except RedisUnavailable as exc:
                log.error("could not restart the embedded redis-server: %s", exc)
                return

    async def stop(self) -> None:
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        if self._proc is not None and self._proc.returncode is None:
            self._proc.terminate()
            try:
                await asyncio.wait_for(self._proc.wait(), 10)
            except TimeoutError:
                self._proc.kill()
                await self._proc.wait()
            log.info("embedded redis-server stopped")
